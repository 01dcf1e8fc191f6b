"""The "NEM12 profile" export: a period's validated intervals in the NEM12 layout (AEMO MDFF).

One file has one 100 header and one 900 footer. Per meter and channel a 200 record, then one
300 record per local day with the day's interval values, its quality method and the time of
the newest version used; a day whose intervals do not all share one quality method says V and
is followed by 400 records, one per run of intervals with the same quality method.

Deviations from NEM12, because the meters are EVN's and not in the NEM:

* NMI is the head-end's ``meter_id``: EVN customer codes (about 13 characters) do not fit the
  NEM's 10; MeterSerialNumber is the same ``meter_id``.
* Days and times are the utility's local time (ICT, UTC+7, no daylight saving), not the NEM's
  AEST; a day is 24 hours. The creation time of the 100 record is local time too.
* Channels: import A+ (1.0.1.8.0.255) is suffix E1, data stream N1; export A- (1.0.2.8.0.255)
  is suffix B1, data stream N2. RegisterID is the OBIS code's C.D.E ("1.8.0", "2.8.0").
* Values are kWh after the CT/VT multiplier, interval-ending (value 1 of a day covers 00:00 to
  00:15 at 15 minutes), as many as the capture period gives (96 at 15 min, 48 at 30 min).
* Quality methods follow section (c) of the VEE reference: VALID and VERIFIED are A; estimates
  are S with the method of the table below; an operator edit is S16 (agreed); a forward
  estimate is E with its method. NEM12 has no "suspect": a suspect or not yet validated value
  is held, written as N (null, value 0) with reason code 0 and a free-text description, as is
  a missing interval (N, no reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.billing import plain
from headend.domain.obis import Obis
from headend.domain.quality import Quality
from headend.services.billing.meters import (
    MeterModel,
    MeterRow,
    Span,
    meter_page,
    meters_named,
    models_of,
)
from headend.services.errors import UnknownMeter
from headend.store.queries.intervals import current_rows
from headend.vee.codes import METHOD_QUALITY

# NEM12 method digits of each substituted quality (reference section (c)).
SUBSTITUTE_METHOD: dict[Quality, str] = {
    Quality.EST_LINEAR: "17",
    Quality.EST_LIKEDAY: "14",
    Quality.EST_AVG_LIKEDAY: "15",
    Quality.EST_SCALED_TO_REGISTER: "24",
    Quality.EST_PREV_YEAR: "23",
    Quality.EST_PROFILE: "25",
    Quality.EST_ZERO: "19",
    Quality.EDITED: "16",
}
FORWARD_DEFAULT_METHOD = "52"
FREE_TEXT = "0"  # NEM12 reason code for a free-text reason description
HELD: dict[Quality, str] = {
    Quality.SUSPECT: "suspect, held for review",
    Quality.RAW: "not yet validated",
}


class TextSink(Protocol):
    """Where the file goes: an open text file, a ``StringIO``, a spooled temporary file."""

    def write(self, text: str, /) -> object: ...


QualityMethod = tuple[str, str, str]  # QualityMethod, ReasonCode, ReasonDescription
NULL: QualityMethod = ("N", "", "")


def quality_method(quality: Quality | None, method: str | None = None) -> QualityMethod:
    """The NEM12 quality method, reason code and description of one interval value."""
    if quality is None or quality is Quality.MISSING:
        return NULL
    if quality in (Quality.VALID, Quality.VERIFIED):
        return ("A", "", "")
    if quality in HELD:
        return ("N", FREE_TEXT, HELD[quality])
    if quality is Quality.FORWARD_EST:
        estimated = METHOD_QUALITY.get(method or "")
        digits = SUBSTITUTE_METHOD.get(estimated) if estimated else None
        return ("E" + (digits or FORWARD_DEFAULT_METHOD), "", "")
    return ("S" + SUBSTITUTE_METHOD.get(quality, SUBSTITUTE_METHOD[Quality.EDITED]), "", "")


@dataclass(frozen=True)
class _Channel:
    obis: str
    suffix: str  # NMISuffix
    stream: str  # MDMDataStreamIdentifier


@dataclass
class _Day:
    values: list[int | None]  # micro-kWh per interval, None where there is none
    methods: list[QualityMethod]
    updated: datetime | None = None


class Nem12Writer:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        tz: ZoneInfo,
        *,
        from_participant: str = "HEADEND",
        to_participant: str = "EVN",
        page_size: int = 25,  # a month of 15-minute data is about 6,000 rows a meter
        profiles_dir: Path | None = None,
    ) -> None:
        """``profiles_dir``: the folder of device profiles (None: the shipped one)."""
        self.session_factory = session_factory
        self.profiles_dir = profiles_dir
        self.tz = tz
        self.participants = (from_participant, to_participant)
        self.page_size = page_size

    def write(
        self,
        period: Span,
        out: TextSink,
        meter_ids: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Write the file for every local day the period touches; returns the 300 records."""
        first = period.start.astimezone(self.tz).date()
        last = (period.end - timedelta(microseconds=1)).astimezone(self.tz).date()
        days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
        created = (now or datetime.now(UTC)).astimezone(self.tz)
        out.write(_line("100", "NEM12", created.strftime("%Y%m%d%H%M"), *self.participants))
        count = 0
        if meter_ids is not None:
            named = self._named(meter_ids)
            for k in range(0, len(named), self.page_size):
                count += self._page(named[k : k + self.page_size], days, out)
        else:
            after: str | None = None
            while True:
                with self.session_factory() as session:
                    page = meter_page(session, after, self.page_size)
                if not page:
                    break
                count += self._page(page, days, out)
                after = page[-1].meter_id
        out.write(_line("900"))
        return count

    def _named(self, meter_ids: Sequence[str]) -> list[MeterRow]:
        with self.session_factory() as session:
            found = meters_named(session, list(dict.fromkeys(meter_ids)))
        missing = set(meter_ids) - {m.meter_id for m in found}
        if missing:
            raise UnknownMeter(sorted(missing))
        return found

    def _page(self, meters: Sequence[MeterRow], days: list[date], out: TextSink) -> int:
        models = models_of(meters, self.profiles_dir)
        midnights = [datetime.combine(d, time(), self.tz).astimezone(UTC) for d in days]
        span_end = datetime.combine(days[-1] + timedelta(days=1), time(), self.tz)
        channels = sorted({c for m in models.values() for c in m.channels()})
        series: dict[tuple[int, str], dict[int, _Day]] = {}
        if channels:
            with self.session_factory() as session:
                rows = current_rows(
                    session,
                    [m.pk for m in meters],
                    channels,
                    midnights[0],
                    span_end,
                )
            period_of = {m.pk: models[m.device_profile].period_s for m in meters}
            for row in rows:
                self._place(row, series, days[0], midnights, period_of[row.meter_id])
        count = 0
        for meter in meters:
            model = models[meter.device_profile]
            wanted = _channels(model)
            configuration = "".join(c.suffix for c in wanted)
            for channel in wanted:
                out.write(_header(meter, model, channel, configuration))
                found = series.get((meter.pk, channel.obis), {})
                multiplier, slots = meter.ct_ratio * meter.vt_ratio, 86400 // model.period_s
                for index, day in enumerate(days):
                    blank = _Day([None] * slots, [NULL] * slots)
                    out.write(self._day(day, found.get(index, blank), multiplier))
                    count += 1
        return count

    def _place(
        self,
        row: Any,
        series: dict[tuple[int, str], dict[int, _Day]],
        first: date,
        midnights: list[datetime],
        period_s: int,
    ) -> None:
        end: datetime = row.interval_end
        index = ((end - timedelta(seconds=1)).astimezone(self.tz).date() - first).days
        if not 0 <= index < len(midnights):
            return
        slots = 86400 // period_s
        slot, rest = divmod(int((end - midnights[index]).total_seconds()), period_s)
        if rest or not 1 <= slot <= slots:
            return  # not on the capture period's grid: not representable in NEM12
        days = series.setdefault((row.meter_id, row.channel), {})
        day = days.get(index)
        if day is None:
            day = days[index] = _Day([None] * slots, [NULL] * slots)
        quality = Quality(row.quality)
        held = quality in HELD or row.value is None
        day.values[slot - 1] = None if held else int(row.value)
        day.methods[slot - 1] = quality_method(quality, row.method)
        created: datetime = row.created_at
        day.updated = created if day.updated is None else max(day.updated, created)

    def _day(self, day: date, data: _Day, multiplier: Decimal) -> str:
        values = [_kwh(v, multiplier) for v in data.values]
        updated = data.updated.astimezone(self.tz).strftime("%Y%m%d%H%M%S") if data.updated else ""
        kinds = set(data.methods)
        if len(kinds) == 1:
            method, reason, description = data.methods[0]
            return _line(
                "300", day.strftime("%Y%m%d"), *values, method, reason, description, updated, ""
            )
        lines = [_line("300", day.strftime("%Y%m%d"), *values, "V", "", "", updated, "")]
        run_start = 0
        for k in range(1, len(data.methods) + 1):
            if k == len(data.methods) or data.methods[k] != data.methods[run_start]:
                method, reason, description = data.methods[run_start]
                lines.append(_line("400", str(run_start + 1), str(k), method, reason, description))
                run_start = k
        return "".join(lines)


def _channels(model: MeterModel) -> list[_Channel]:
    found = []
    for obis in model.channels():
        if obis == model.import_obis:
            found.append(_Channel(obis, "E1", "N1"))
        elif obis == model.export_obis:
            found.append(_Channel(obis, "B1", "N2"))
    return found


def _header(meter: MeterRow, model: MeterModel, channel: _Channel, configuration: str) -> str:
    code = Obis.parse(channel.obis)
    register = f"{code.c}.{code.d}.{code.e}"
    minutes = str(model.period_s // 60)
    return _line(
        "200",
        meter.meter_id,
        configuration,
        register,
        channel.suffix,
        channel.stream,
        meter.meter_id,
        "KWH",
        minutes,
        "",
    )


def _kwh(micro: int | None, multiplier: Decimal) -> str:
    if micro is None:
        return "0"
    return format(plain(Decimal(micro).scaleb(-6) * multiplier), "f")


def _line(*fields: str) -> str:
    return ",".join(fields) + "\n"
