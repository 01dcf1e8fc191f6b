"""All tables of the store. Importing this package registers every model on ``Base.metadata``."""

from headend.store.models.access import ApiKey, AuditEvent
from headend.store.models.collection import (
    RawRead,
    ReadAttempt,
    ReadJob,
    ReadJobTransition,
    ReadPlan,
    Worker,
)
from headend.store.models.quirks import LearnedQuirk
from headend.store.models.readings import (
    Channel,
    Edit,
    IntervalBlock,
    IntervalDay,
    IntervalDayEnd,
    MeterEvent,
    RegisterReading,
    RollupBasis,
    VeeFinding,
)
from headend.store.models.registry import Gateway, Meter, MeterSecret

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Channel",
    "Edit",
    "Gateway",
    "IntervalBlock",
    "IntervalDay",
    "IntervalDayEnd",
    "LearnedQuirk",
    "Meter",
    "MeterEvent",
    "MeterSecret",
    "RawRead",
    "ReadAttempt",
    "ReadJob",
    "ReadJobTransition",
    "ReadPlan",
    "RegisterReading",
    "RollupBasis",
    "VeeFinding",
    "Worker",
]
