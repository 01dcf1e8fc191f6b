"""What a use case refuses, as one tree of exceptions.

Every refusal a service raises to its caller is a ``ServiceError`` of one of five kinds; the
caller translates the kind, in one place each: the API to a problem document and a status,
the dashboard to its error page, the command line to a line on stderr and an exit status.
The message is written for the person who asked and says what to do about it.

```
ServiceError
 ├── NotFound        what the request names is not there (an unknown meter, edit, key...)
 │    └── UnknownMeter
 ├── Conflict        the stored state does not allow it now (a name taken, a race lost)
 ├── Invalid         the request is wrong; ``field`` names the part at fault, ``errors``
 │                   lists each problem when there are several (the rows of a file)
 ├── Refused         the actor may not do this
 └── RateLimited     too many requests for now; ``retry_after_s`` says when to come back
```

The services' own refusals are subclasses of these kinds: ``UnknownEdit`` and
``UnknownFinding`` are ``NotFound``; ``EditError``, ``ReportError``, ``PeriodError``,
``PlanError`` and ``RegistryImportError`` are ``Invalid``; ``EditConflict`` is an
``EditError`` that is also a ``Conflict``, and the conflict is what callers answer. A
``NotFound`` is also a ``LookupError`` and an ``Invalid`` a ``ValueError``, so code that
catches those catches them too. Internal problems (the collection runner's
``ConfigurationProblem``, a failed read's ``ProtocolError``) are not refusals and stay out
of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class FieldProblem(Protocol):
    """One problem of an ``Invalid`` request: the field at fault and what is wrong with it."""

    @property
    def field(self) -> str: ...

    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ServiceError(Exception):
    """A use case refused what it was asked; ``str(exc)`` says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError, LookupError):
    """What the request names is not there."""


class Conflict(ServiceError):
    """The stored state does not allow the change now; nothing was stored."""


class Invalid(ServiceError, ValueError):
    """The request is wrong. ``field`` names the request field at fault, if one is;
    ``errors`` lists each problem (a field and a message) when there are several;
    ``source`` names the file they are in, if they came from one."""

    def __init__(
        self,
        message: str,
        field: str | None = None,
        *,
        errors: Sequence[FieldProblem] = (),
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.errors = list(errors)
        self.source = source


class Refused(ServiceError):
    """The actor may not do this."""


class RateLimited(ServiceError):
    """Too many requests for now; try again after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnknownMeter(NotFound):
    """The registry has no meter with (one of) these ids."""

    def __init__(self, meter_ids: Sequence[str]) -> None:
        super().__init__(f"no meter with id {', '.join(sorted(meter_ids))} in the registry")
        self.meter_ids = list(meter_ids)
