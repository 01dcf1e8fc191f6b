"""The job queue as the dispatcher sees it: a due job (``DueJob``), and ``StoreBatch``, which
records many sessions' ends in one transaction. The scheduling layer imports these from here,
not from the store."""

from __future__ import annotations

from headend.store.batch import StoreBatch
from headend.store.repositories.jobs import DueJob

__all__ = ["DueJob", "StoreBatch"]
