"""Structured logging with structlog; secrets never reach a log line."""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is when a line is logged, not the stream it was when
    logging was configured (a command run in-process, as the tests run them, swaps it for a
    while and closes its own)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _CurrentStderr()


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Route structlog (ours and dlms-cosem's) to stderr at ``level``."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    # Tracebacks are plain: a rich traceback with local variables can print megabytes (and
    # whatever secrets a frame held) for one failed request.
    renderers: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json
        else [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *renderers,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=numeric,
        stream=_STDERR,
        format="%(levelname)s %(name)s %(message)s",
    )
    # Libraries that narrate routine work at INFO speak here only at WARNING and above.
    for name in ("alembic", "apscheduler"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
