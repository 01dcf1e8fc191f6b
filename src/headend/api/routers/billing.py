"""Billing records: one meter's determinants for a period, every meter's as a stream, and
the NEM12 profile export."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from headend.api.auth import Billing
from headend.api.deps import Ctx, in_bounds
from headend.api.problems import PROBLEM_RESPONSES, invalid
from headend.domain.billing import BillingRecord
from headend.services.billing.service import BillingPeriod, parse_period

router = APIRouter(tags=["billing"], responses=PROBLEM_RESPONSES)
CHUNK = 200  # records per chunk written to the socket

PeriodQ = Annotated[
    str | None,
    Query(
        description="A month (2026-11) or a day (2026-11-05) in the utility's time zone",
        examples=["2026-11"],
    ),
]
StartQ = Annotated[
    str | None,
    Query(
        description="Instead of period: start, with an offset", examples=["2026-11-01T00:00+07:00"]
    ),
]
EndQ = Annotated[
    str | None,
    Query(
        description="Instead of period: end, with an offset", examples=["2026-12-01T00:00+07:00"]
    ),
]


def _period(ctx: Ctx, period: str | None, start: str | None, end: str | None) -> BillingPeriod:
    field = "period" if period is not None else "start"
    try:
        span = parse_period(period, start, end, ctx.settings.tz, ctx.settings.api_max_range_days)
    except OverflowError as exc:  # a date-time near year 1 or 9999 in some offset
        raise invalid(field, "is out of range") from exc
    in_bounds(field, span.start)
    in_bounds("end" if period is None else field, span.end)
    return span


@router.get("/meters/{meter_id}/billing", response_model=BillingRecord)
def billing_record(
    meter_id: str,
    ctx: Ctx,
    _: Billing,
    period: PeriodQ = None,
    start: StartQ = None,
    end: EndQ = None,
) -> Response:
    """One meter's billing determinants for a period: opening and closing reads, consumption
    after the CT/VT multiplier, the time-of-use split, maximum demand, interval completeness,
    quality, whether it is billable and why not, and a version that changes with late data."""
    # the record's own JSON, written once when it was built: not validated and encoded again
    text = ctx.billing.record_json(meter_id, _period(ctx, period, start, end))
    return Response(text, media_type="application/json")


def _ndjson(records: Iterator[str]) -> Iterator[bytes]:
    chunk: list[str] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= CHUNK:
            yield ("\n".join(chunk) + "\n").encode()
            chunk = []
    if chunk:
        yield ("\n".join(chunk) + "\n").encode()


def _csv(rows: Iterator[list[str]]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BillingRecord.csv_header())
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % CHUNK == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


@router.get(
    "/billing",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def billing_records(
    ctx: Ctx,
    _: Billing,
    period: PeriodQ = None,
    start: StartQ = None,
    end: EndQ = None,
    format: Literal["ndjson", "csv"] = "ndjson",
    after: Annotated[
        str | None, Query(description="Cursor: resume after this meter id (the last one received)")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="Stop after this many records")] = None,
) -> StreamingResponse:
    """Every meter's billing record for a period, ordered by meter id and streamed as it is
    computed. A client that is cut off resumes with ``after`` set to the last meter id it got."""
    span = _period(ctx, period, start, end)
    if format == "csv":
        rows = ctx.billing.csv_rows(span, after=after, limit=limit)
        return StreamingResponse(_csv(rows), media_type="text/csv")
    texts = ctx.billing.records_json(span, after=after, limit=limit)
    return StreamingResponse(_ndjson(texts), media_type="application/x-ndjson")


@router.get(
    "/billing/nem12",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def billing_nem12(
    ctx: Ctx,
    _: Billing,
    period: PeriodQ = None,
    start: StartQ = None,
    end: EndQ = None,
) -> StreamingResponse:
    """The interval data of a period in the NEM12 layout (one 300 record per channel and local
    day, with quality and method), for systems that take it."""
    span = _period(ctx, period, start, end)
    # spilled to disk past 8 MB; closed by the stream once sent
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8")  # noqa: SIM115
    try:
        ctx.billing.nem12(span, spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(1 << 16):
                yield block.encode()

    name = f"headend-{span.label.replace('/', '_').replace(':', '')}.nem12.csv"
    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
