"""Why a meter session failed: one exception tree, one failure category per leaf.

Every failure leaving ``headend.protocol`` is a ``ProtocolError`` carrying a
``headend.domain.enums.FailureCategory``. The tree splits *our* fault (do not retry: the
registry, the profile or our code is wrong) from the fault of the meter or of the link
(retried by category)::

    ProtocolError
    ├── LocalError                    our fault, retrying will not help
    │   ├── ConfigurationError        CONFIGURATION (bad address, missing secret, bad profile)
    │   └── ClientStateError          INTERNAL (a session used out of order: a bug of ours)
    └── RemoteError                   the meter's or the link's fault
        ├── LinkError
        │   ├── UnreachableError      UNREACHABLE (refused, no route, no such port)
        │   ├── ConnectTimeoutError   CONNECT_TIMEOUT
        │   ├── LinkSetupError        LINK_SETUP_FAILED (HDLC SNRM/UA)
        │   ├── ResponseTimeoutError  RESPONSE_TIMEOUT
        │   ├── SessionDroppedError   SESSION_DROPPED (peer closed the connection)
        │   └── MalformedFrameError   MALFORMED_FRAME (bad FCS/HCS, bad wrapper, bad format)
        ├── AssociationError
        │   ├── AssociationRejectedError   ASSOCIATION_REJECTED (with the meter's diagnostic)
        │   ├── AuthenticationFailedError  AUTHENTICATION_FAILED (password, key, HLS proof)
        │   └── InvocationCounterError     INVOCATION_COUNTER
        ├── DataAccessError           an object could not be read or written
        │   ├── ObjectUnavailableError     OBJECT_UNAVAILABLE
        │   └── AccessDeniedError          ACCESS_DENIED
        └── DecodeError               DECODE_ERROR (an APDU or a value we cannot decode)

Whether and when a failed read is tried again is decided per failure category, in one table:
``headend.domain.jobs.RETRY_RULES``; the exceptions carry no retry flag of their own. Two
categories are never raised here: ``INTERNAL`` for any other exception escaping a session (a bug
of ours, filed by the caller with its traceback in the log) and ``STORE_REFUSED`` for a read the
store would not land. Exceptions of the
standard library and of dlms-cosem are turned into these in one place, :func:`translate`,
always chained with ``from``.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from headend.domain.enums import FailureCategory


class ProtocolError(Exception):
    """Base of every failure of a meter session."""

    category: ClassVar[FailureCategory] = FailureCategory.DECODE_ERROR

    def __init__(self, message: str = "", *, detail: str | None = None) -> None:
        super().__init__(message or self.category.value.replace("_", " "))
        self.detail = detail

    def one_line(self) -> str:
        """``category: message`` on one line, for a failed-read report or the probe."""
        text = " ".join(str(self).split())
        return f"{self.category.value}: {text}"


class LocalError(ProtocolError):
    pass


class ConfigurationError(LocalError):
    category = FailureCategory.CONFIGURATION


class ClientStateError(LocalError):
    category = FailureCategory.INTERNAL


class RemoteError(ProtocolError):
    pass


class LinkError(RemoteError):
    pass


class UnreachableError(LinkError):
    category = FailureCategory.UNREACHABLE


class ConnectTimeoutError(LinkError):
    category = FailureCategory.CONNECT_TIMEOUT


class LinkSetupError(LinkError):
    category = FailureCategory.LINK_SETUP_FAILED


class ResponseTimeoutError(LinkError):
    category = FailureCategory.RESPONSE_TIMEOUT


class SessionDroppedError(LinkError):
    category = FailureCategory.SESSION_DROPPED


class MalformedFrameError(LinkError):
    category = FailureCategory.MALFORMED_FRAME


class AssociationError(RemoteError):
    category = FailureCategory.ASSOCIATION_REJECTED


class AssociationRejectedError(AssociationError):
    category = FailureCategory.ASSOCIATION_REJECTED

    def __init__(self, message: str = "", *, diagnostic: str | None = None) -> None:
        super().__init__(message, detail=diagnostic)
        self.diagnostic = diagnostic


class AuthenticationFailedError(AssociationError):
    category = FailureCategory.AUTHENTICATION_FAILED


class InvocationCounterError(AssociationError):
    category = FailureCategory.INVOCATION_COUNTER


class DataAccessError(RemoteError):
    category = FailureCategory.OBJECT_UNAVAILABLE

    def __init__(self, message: str = "", *, result: int | None = None) -> None:
        super().__init__(message)
        self.result = result


class ObjectUnavailableError(DataAccessError):
    category = FailureCategory.OBJECT_UNAVAILABLE


class AccessDeniedError(DataAccessError):
    category = FailureCategory.ACCESS_DENIED


class DecodeError(RemoteError):
    category = FailureCategory.DECODE_ERROR


# data-access-result codes (IEC 62056-5-3) that mean "you may not", the rest "it is not here"
_DENIED_RESULTS = frozenset({3, 13})  # read-write-denied, scope-of-access-violated
DATA_ACCESS_RESULTS: dict[int, str] = {
    0: "success",
    1: "hardware-fault",
    2: "temporary-failure",
    3: "read-write-denied",
    4: "object-undefined",
    9: "object-class-inconsistent",
    11: "object-unavailable",
    12: "type-unmatched",
    13: "scope-of-access-violated",
    14: "data-block-unavailable",
    15: "long-get-aborted",
    16: "no-long-get-in-progress",
    17: "long-set-aborted",
    18: "no-long-set-in-progress",
    19: "data-block-number-invalid",
    250: "other-reason",
}


def data_access_error(result: int, what: str) -> DataAccessError:
    """The exception for a data-access-result code other than success."""
    name = DATA_ACCESS_RESULTS.get(result, f"result {result}")
    if result in _DENIED_RESULTS:
        return AccessDeniedError(f"{what}: {name}", result=result)
    return ObjectUnavailableError(f"{what}: {name}", result=result)


_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENOENT,
        errno.ENODEV,
        errno.ENXIO,
        errno.EACCES,
        errno.EBUSY,
        errno.EADDRNOTAVAIL,
    }
)
_DROPPED_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.EIO})


def translate(exc: BaseException, *, stage: str) -> ProtocolError:
    """Turn a foreign exception into ours. ``stage`` says what was being done."""
    if isinstance(exc, ProtocolError):
        return exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        if stage == "connect":
            return ConnectTimeoutError(f"no connection within the timeout ({stage})")
        if stage == "link":
            return LinkSetupError("no answer to the link setup within the timeout")
        return ResponseTimeoutError(f"no answer within the timeout ({stage})")
    if isinstance(exc, ConnectionError | OSError):
        code = getattr(exc, "errno", None)
        if stage == "connect" or code in _UNREACHABLE_ERRNOS:
            return UnreachableError(f"{stage}: {exc}")
        if isinstance(exc, ConnectionResetError | BrokenPipeError) or code in _DROPPED_ERRNOS:
            return SessionDroppedError(f"{stage}: {exc}")
        return SessionDroppedError(f"{stage}: {exc}")
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("dlms_cosem"):
        if "Decryption" in name or "Cipher" in name or "Cryptography" in name:
            return AuthenticationFailedError(f"{stage}: cannot decipher the meter's answer")
        if "Hdlc" in name or "MissingHdlcFlags" in name:
            return MalformedFrameError(f"{stage}: {exc}")
        return DecodeError(f"{stage}: {name}: {exc}")
    if isinstance(exc, ValueError | KeyError | IndexError | TypeError | OverflowError):
        return DecodeError(f"{stage}: {name}: {exc}")
    return DecodeError(f"{stage}: unexpected {name}: {exc}")


@contextmanager
def translating(stage: str) -> Iterator[None]:
    """Within this block, any foreign exception leaves as a ``ProtocolError``."""
    try:
        yield
    except ProtocolError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise translate(exc, stage=stage) from exc
