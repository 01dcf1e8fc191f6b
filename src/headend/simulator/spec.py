"""What a simulated meter is: its identity, addressing, secrets, data seed and faults.

A fleet file is a list of ``MeterSpec``; every part of the simulator reads from these records,
so a saved fleet serves the same meters with the same data every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from headend.domain.enums import AuthLevel, Transport


class FaultKind(StrEnum):
    # on the link (transport layer)
    NO_ANSWER = "no_answer"  # accepts the connection / frame, never answers
    SLOW = "slow"  # answers after ``delay_s`` seconds (past a client's timeout)
    DROP = "drop"  # closes the connection after ``after_requests`` requests
    BAD_FCS = "bad_fcs"  # corrupts the frame check sequence of its answers (HDLC)
    # in the association (DLMS layer)
    REJECT = "reject"  # association rejected (authentication failure) whatever the secret
    WRONG_IC = "wrong_ic"  # HLS: answers with an invocation counter lower than one already used
    # in the data (consumption model)
    CLOCK_DRIFT = "clock_drift"  # clock off by ``seconds``
    OUTAGE = "outage"  # load-profile gap of ``hours`` with power-down status bits
    SPIKE = "spike"  # one interval ``factor`` times its normal value
    BACKWARDS = "backwards"  # the import register steps back by ``wh``
    ROLLOVER = "rollover"  # the import register starts near its maximum and wraps
    EXCHANGE = "exchange"  # the meter was exchanged: new serial number, registers from zero


class Quirk(StrEnum):
    """A way a real meter departs from the standard, played by a simulated one."""

    # a GET-with-list answer declares all N results and carries only those before the first
    # item that failed
    SHORT_LIST_AFTER_FAILURE = "short_list_after_failure"
    # a GET answered with a data-access-result carries another invoke id
    WRONG_INVOKE_ID_ON_ERROR = "wrong_invoke_id_on_error"
    # an object the meter does not have answers hardware-fault instead of object-undefined
    HARDWARE_FAULT_FOR_MISSING = "hardware_fault_for_missing"
    # a release request is never answered (the meter drops the association silently)
    RELEASE_NEVER_ANSWERED = "release_never_answered"
    # the release response's BER length is one more than its content
    RLRE_WRONG_LENGTH = "rlre_wrong_length"
    # answers run past the PDU size the client proposed, by at most ``PDU_OVERRUN`` bytes
    PDU_IGNORED = "pdu_ignored"
    # every date-time (clock, buffers) carries deviation 0x8000 (not specified): local time
    DEVIATION_UNSPECIFIED = "deviation_unspecified"
    # profile buffers refuse range and entry access (data-access-result other-reason); only
    # the whole buffer can be read
    NO_SELECTIVE_ACCESS = "no_selective_access"
    # a GET of the association's object list (class 15, attribute 2) is answered with a
    # data-access error (read-write-denied)
    OBJECT_LIST_REFUSED = "object_list_refused"


# bytes by which a meter with the ``pdu_ignored`` quirk overruns the negotiated PDU size
PDU_OVERRUN = 64


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    # parameters by kind, e.g. {"seconds": 300} for clock_drift, {"hours": 6} for outage,
    # {"delay_s": 30} for slow, {"after_requests": 2} for drop; ``days_ago`` places a data
    # fault in the meter's history.
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MeterSpec:
    meter_id: str  # the serial number the meter reports (0.0.96.1.0.255)
    seed: int
    profile: str  # device profile name, a file protocols/<profile>.yaml
    transport: Transport
    port: int  # TCP port it is served on (shared by the meters of a bus or a wrapper gateway)
    host: str = "127.0.0.1"
    serial_device: str | None = None  # pty path when served on a serial line
    client_sap: int = 16
    server_logical: int = 1
    server_physical: int = 17  # HDLC physical address (multi-drop bus address)
    auth: AuthLevel = AuthLevel.NONE
    password: str | None = None  # LLS
    encryption_key: str | None = None  # HLS-GMAC, 32 hex digits
    authentication_key: str | None = None  # HLS-GMAC, 32 hex digits
    system_title: str = "4d4d4d0000000001"  # the meter's 8-byte system title, hex
    capture_period_s: int = 900
    history_days: int = 40
    shape: str = "household"  # or "business"
    latency_s: float = 0.0  # added to every answer (round trip)
    baud_rate: int | None = None  # limit throughput to this serial speed
    faults: tuple[Fault, ...] = ()
    quirks: tuple[Quirk, ...] = ()
    # OBIS codes of objects the device profile declares but this meter does not have (a
    # model without maximum demand: ("1.0.1.6.0.255",))
    missing_objects: tuple[str, ...] = ()
    epoch: datetime | None = None  # when the meter's history starts; None: now - history_days
    firmware: str = "1.0.0"  # the active firmware identifier it reports (1.0.0.2.0.255)

    def has(self, quirk: Quirk) -> bool:
        return quirk in self.quirks

    def fault(self, kind: FaultKind) -> Fault | None:
        for f in self.faults:
            if f.kind is kind:
                return f
        return None
