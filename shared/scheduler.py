"""Periodic background jobs that also run the moment the clock moves.

```python
reminders = Periodic("ita-deadlines", runtime.clock, 60.0, check_deadlines)
await reminders.start()      # or: asyncio.create_task(reminders.run())
...
await reminders.stop()
```

The job runs once at start, then every `interval_s` seconds, and immediately whenever the clock is
moved (`PUT /v1/admin/clock`), so a test that jumps 60 days ahead sees deadlines handled without
waiting a whole interval. A failing job is logged and counted and runs again at the next tick; it
never stops the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from prometheus_client import Counter, Histogram

from shared import context

log = logging.getLogger("shared.scheduler")

JOB_RUNS = Counter("ee_scheduler_job_runs", "Periodic job runs by outcome", ["job", "outcome"])
JOB_SECONDS = Histogram("ee_scheduler_job_seconds", "Periodic job duration", ["job"])

Job = Callable[[], Awaitable[object] | object]


class WaitableClock(Protocol):
    """What a `Periodic` needs from a clock (`shared.clock.Clock` fits)."""

    @property
    def generation(self) -> int: ...

    async def wait_for_change(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors shared.clock.Clock
        *,
        since: int | None = None,
    ) -> bool: ...


class Periodic:
    """Run `job()` every `interval_s` seconds and as soon as `clock` changes."""

    def __init__(self, name: str, clock: WaitableClock, interval_s: float, job: Job) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.name = name
        self.clock = clock
        self.interval_s = interval_s
        self.job = job
        self.runs = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run_once(self) -> bool:
        """Run the job once; True if it succeeded. Failures are logged, counted and swallowed."""
        self.runs += 1
        # Each run is its own conversation: the events it causes share one correlation id.
        run_id = str(uuid.uuid4())
        corr_token = context.correlation_id.set(run_id)
        cause_token = context.causation_id.set(run_id)
        try:
            return await self._run_job()
        finally:
            context.causation_id.reset(cause_token)
            context.correlation_id.reset(corr_token)

    async def _run_job(self) -> bool:
        with JOB_SECONDS.labels(self.name).time():
            try:
                result = self.job()
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self.last_error = exc
                JOB_RUNS.labels(self.name, "failed").inc()
                log.exception(
                    "periodic job %s failed; it runs again at the next tick",
                    self.name,
                    extra={"job": self.name, "failures": self.failures},
                )
                return False
        self.last_error = None
        JOB_RUNS.labels(self.name, "ok").inc()
        return True

    async def run(self) -> None:
        """The loop: run, then wait for the interval, a clock change or `stop()`; until stopped."""
        while not self._stopping.is_set():
            generation = self.clock.generation
            await self.run_once()
            if self._stopping.is_set():
                break
            await self._wait(generation)

    async def _wait(self, generation: int) -> None:
        change = asyncio.ensure_future(self.clock.wait_for_change(self.interval_s, since=generation))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({change, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (change, stop):
                if not pending.done():
                    pending.cancel()
            await asyncio.gather(change, stop, return_exceptions=True)

    async def start(self) -> None:
        """Start the loop as a background task (no-op when already running)."""
        if self.running:
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name=f"periodic:{self.name}")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Ask the loop to stop, let a running job finish (up to `grace_s` seconds), then cancel it."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_s)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
