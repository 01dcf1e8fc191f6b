"""Read plans on APScheduler: each active plan fires on its cron in the utility's time zone.

After downtime a plan that missed one or more of its times fires once at start-up, not once
per missed slot (the store remembers when each plan last fired).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from headend.services.collection.plans import PlanService, trigger_for

log = structlog.get_logger(__name__)


class PlanScheduler:
    def __init__(self, plans: PlanService, on_queued: Callable[[], None]) -> None:
        self.plans = plans
        self.on_queued = on_queued
        self.scheduler = AsyncIOScheduler(timezone=plans.tz)

    async def _fire(self, plan_id: int) -> None:
        ids = await asyncio.to_thread(self.plans.fire, plan_id)
        log.info("read plan fired", plan_id=plan_id, jobs=len(ids))
        if ids:
            self.on_queued()

    async def start(self) -> int:
        """Schedule every active plan and fire the ones that missed a slot; returns the count
        of plans that caught up."""
        now = self.plans.jobs.clock()
        caught_up = 0
        for plan in await asyncio.to_thread(self.plans.all):
            if not plan.active:
                continue
            self._schedule(plan.id, plan.name, plan.cron)
            if self.plans.missed(plan, now):
                caught_up += 1
                await self._fire(plan.id)
        self.scheduler.start()
        return caught_up

    def _schedule(self, plan_id: int, name: str, cron: str) -> None:
        self.scheduler.add_job(
            self._fire,
            trigger_for(cron, self.plans.tz),
            args=[plan_id],
            id=f"plan-{plan_id}",
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )

    async def reload(self) -> None:
        """Follow the stored plans after one was created, changed or deactivated."""
        wanted = {}
        for plan in await asyncio.to_thread(self.plans.all):
            if plan.active:
                wanted[f"plan-{plan.id}"] = plan
                self._schedule(plan.id, plan.name, plan.cron)
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
