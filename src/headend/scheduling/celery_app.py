"""The Celery application that carries read jobs from the coordinator to the workers.

Work travels as batches: one message holds due jobs of one gateway, so a bus or a serial port
is only ever used by one worker at a time. Each site has two queues, one for on-demand reads
and one for bulk collection; a worker consumes both queues of each of its sites, so an
on-demand read waits for no bulk batch already queued. A message is acknowledged after the
outcomes of its jobs are stored (``acks_late``), and redelivered to another worker if its
worker dies first; a job in it that a worker already holds is skipped (see ``JobService.claim``).

Nothing is configured at import: ``make_celery`` builds the application from the broker URL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery

from headend.domain.registry_format import SITE_NAME

READ_BATCH = "headend.read_batch"  # the task: run a gateway's batch of read jobs
PREFIX = "headend"
__all__ = ["READ_BATCH", "SITE_NAME", "make_celery", "queue_of", "queues_of", "sender"]
# (queue, jobs) pairs: one message each
Messages = Sequence[tuple[str, list[dict[str, Any]]]]


def queue_of(site: str | None, on_demand: bool) -> str:
    """The queue that carries a site's batches (site None: gateways of no site)."""
    base = PREFIX if site is None else f"{PREFIX}.site.{site}"
    return f"{base}.{'now' if on_demand else 'bulk'}"


def queues_of(sites: tuple[str, ...]) -> list[str]:
    """The queues a worker serving ``sites`` consumes, on-demand first."""
    chosen: tuple[str | None, ...] = sites or (None,)
    return [queue_of(site, on_demand) for on_demand in (True, False) for site in chosen]


def make_celery(broker_url: str) -> Celery:
    app = Celery("headend", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # outcomes are stored in the database, not sent back
        task_acks_late=True,  # acknowledged once the batch's outcomes are stored
        task_reject_on_worker_lost=True,  # a worker that dies leaves its batch to another
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queue_of(None, False),
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    return app


def sender(broker_url: str) -> Callable[[Messages], None]:
    """What the coordinator sends batches with: each pair one message to its queue, all of a
    dispatch pass through one producer (one connection taken from the pool)."""
    app = make_celery(broker_url)

    def send_all(messages: Messages) -> None:
        with app.producer_or_acquire() as producer:
            for queue, batch in messages:
                app.send_task(READ_BATCH, args=[batch], queue=queue, producer=producer)

    return send_all
