"""The closed vocabularies of the registry and of collection.

Every enumeration is a ``StrEnum`` so that its value is what a CSV file, the store and the API
carry.
"""

from __future__ import annotations

from enum import StrEnum


class GatewayKind(StrEnum):
    """How the head-end reaches the meters behind a gateway."""

    TCP = "tcp"  # a TCP endpoint straight to a meter or its GPRS modem
    TCP_SERIAL = "tcp_serial"  # a TCP-to-RS485 converter fronting a multi-drop HDLC bus
    SERIAL = "serial"  # a local serial port (optical probe, RS485 adapter)


class Transport(StrEnum):
    """How DLMS APDUs are framed on the link."""

    WRAPPER = "wrapper"  # IEC 62056-47 TCP wrapper
    HDLC = "hdlc"  # IEC 62056-46 HDLC


class AuthLevel(StrEnum):
    """Authentication mechanism of the association."""

    NONE = "none"
    LLS = "lls"
    HLS_GMAC = "hls_gmac"


class MeterStatus(StrEnum):
    """Lifecycle of a meter in the registry."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    REMOVED = "removed"


class SerialFraming(StrEnum):
    """Character framing of a serial line: data bits, parity, stop bits."""

    F8N1 = "8N1"
    F7E1 = "7E1"


class ReadKind(StrEnum):
    """What a read job asks of a meter."""

    REGISTERS = "registers"
    LOAD_PROFILE = "load_profile"
    BILLING_PROFILE = "billing_profile"
    EVENTS = "events"
    CLOCK = "clock"
    FULL = "full"


class JobState(StrEnum):
    """States of a read job; the allowed transitions live in ``headend.domain.jobs``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY_WAIT = "retry_wait"
    CANCELLED = "cancelled"


class FailureCategory(StrEnum):
    """Why a read attempt failed, by layer from the link upwards."""

    UNREACHABLE = "unreachable"  # gateway or port refused / no route / no such device
    CONNECT_TIMEOUT = "connect_timeout"
    LINK_SETUP_FAILED = "link_setup_failed"  # HDLC SNRM/UA failed
    ASSOCIATION_REJECTED = "association_rejected"
    AUTHENTICATION_FAILED = "authentication_failed"
    INVOCATION_COUNTER = "invocation_counter"
    RESPONSE_TIMEOUT = "response_timeout"
    MALFORMED_FRAME = "malformed_frame"
    OBJECT_UNAVAILABLE = "object_unavailable"
    ACCESS_DENIED = "access_denied"
    DECODE_ERROR = "decode_error"
    SESSION_DROPPED = "session_dropped"
    CONFIGURATION = "configuration"  # the registry's or a profile's mistake, missing secret
    INTERNAL = "internal"  # a bug of ours: not retried, reported apart from the rest
    STORE_REFUSED = "store_refused"  # the read came off the meter but the store refused it


class Role(StrEnum):
    """API key roles, each including the rights of the one before it."""

    BILLING = "billing"
    TECHNICIAN = "technician"
    OPERATOR = "operator"
    ADMIN = "admin"
