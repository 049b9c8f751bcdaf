"""What a service runs besides its HTTP routes: engine, clock, outbox relay, consumers, background jobs.

    runtime = ServiceRuntime(
        settings,
        consumers=[lambda rt: scoring_consumer(rt.settings, rt.session_factory, rt.clock)],
        background=[lambda rt: Periodic("expiry", rt.clock, 60, expire_profiles)],
    )
    app = create_service_app(runtime, [api.router], title=..., description=...)

`start()` runs the relay, every consumer and every background job as asyncio tasks under a
supervisor (with `elect_duties`, the consumers and jobs only in the one process of the service that
holds its duties lock: see `DutyElection`): a task that crashes is logged and restarted with backoff
instead of dying silently. Only a `ClusterMismatchError` is final (restarting cannot fix it): the task
stays down, the error is logged and kept in `fatal_errors`. `stop()` asks each part to finish, then
cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from aiokafka.client import AIOKafkaClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.clock import Clock
from shared.consumer import ClusterMismatchError, IdempotentConsumer
from shared.db import create_engine, session_factory
from shared.housekeeping import Housekeeping
from shared.leadership import advisory_leadership
from shared.loopmonitor import LoopMonitor
from shared.metrics import MetricsSource, consumer_metrics, outbox_metrics
from shared.outbox import OutboxRelay
from shared.readiness import Check, CheckResult
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """A long-running part: `run()` until stopped (e.g. `shared.scheduler.Periodic`)."""

    async def run(self) -> None: ...


ConsumerSpec = IdempotentConsumer | Callable[["ServiceRuntime"], IdempotentConsumer]
# A background job: a Runnable, a coroutine function taking no argument, or a factory taking the
# runtime and returning either (for jobs that need the runtime's clock or sessions).
BackgroundSpec = Runnable | Callable[[], Awaitable[None]] | Callable[["ServiceRuntime"], Any]

FATAL_ERRORS: tuple[type[BaseException], ...] = (ClusterMismatchError,)


@dataclass
class _Part:
    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]] | None
    restarts: int = 0
    elected: bool = False  # a duty: runs only in the process holding the duties lock


def workers_configured() -> int:
    """`EE_WORKERS`: how many processes serve this service from this host (uvicorn --workers)."""
    try:
        return max(1, int(os.environ.get("EE_WORKERS") or 1))
    except ValueError:
        return 1


class DutyElection:
    """The consumers and background jobs of a service run in one of its processes only.

    Each process (a uvicorn worker, an instance) holds, or waits for, the PostgreSQL session advisory
    lock `<service>.duties` on a dedicated connection (`shared.leadership`). The holder runs the
    duties; the others retry every `retry_s`. The holder checks its connection every `check_s`: a
    lost connection means a lost lock (another process may take it), so the duties are cancelled at
    once and the election starts over. A process that dies loses its connection, hence the lock, and
    a waiting one takes over within `retry_s`. The outbox relay and housekeeping keep their own locks.
    """

    def __init__(self, engine: AsyncEngine, name: str, *, retry_s: float = 1.0, check_s: float = 1.0) -> None:
        self.engine = engine
        self.name = name
        self.retry_s = retry_s
        self.check_s = check_s
        self.leading = False
        self.terms = 0  # how many times this process took the lock

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]], stopping: asyncio.Event) -> None:
        """Until `stopping`: take the lock, then `lead()` (cancelled when the lock is lost)."""
        while not stopping.is_set():
            async with advisory_leadership(self.engine, self.name) as conn:
                if conn is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), self.retry_s)
                    continue
                self.leading = True
                self.terms += 1
                log.info("this process runs the duties of %s (pid %d)", self.name, os.getpid())
                duties = asyncio.create_task(lead(), name=f"duties:{self.name}")
                try:
                    while not duties.done() and not stopping.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(asyncio.shield(duties), self.check_s)
                        if not duties.done():
                            await conn.execute(sa.text("SELECT 1"))  # raises when the lock is gone
                            await conn.commit()  # never idle in a transaction (it would hold back xmin)
                except Exception as exc:
                    log.warning("lost the duties lock of %s (%r): stopping them", self.name, exc)
                finally:
                    self.leading = False
                    if not duties.done():
                        duties.cancel()
                    await asyncio.gather(duties, return_exceptions=True)


class ServiceRuntime:
    """The service's long-lived resources and tasks. Build at import time; `start()` in the lifespan."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        consumers: Iterable[ConsumerSpec] = (),
        background: Iterable[BackgroundSpec] = (),
        clock: Clock | None = None,
        relay: bool = True,
        engine: AsyncEngine | None = None,
        housekeeping: bool = True,
        elect_duties: bool | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.engine = engine or create_engine(settings)
        self.session_factory: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.relay: OutboxRelay | None = OutboxRelay(self.engine, settings) if relay else None
        self.consumers: list[IdempotentConsumer] = []
        self.fatal_errors: dict[str, BaseException] = {}
        self._parts: list[_Part] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._kafka_probe: AIOKafkaClient | None = None
        self._probe_lock = asyncio.Lock()
        self._readiness: dict[str, Check] = {}
        self._metrics: list[MetricsSource] = []
        self._watched: list[Callable[[], IdempotentConsumer | None]] = []
        self._started = False
        # Several processes of the service (EE_WORKERS > 1): one of them runs the consumers and jobs.
        if elect_duties is None:
            elect_duties = workers_configured() > 1
        self.election: DutyElection | None = (
            DutyElection(self.engine, f"{settings.service_name}.duties") if elect_duties else None
        )
        if self.relay is not None:
            self._parts.append(_Part("outbox-relay", self.relay.run, self.relay.stop))
        # How long the event loop is blocked at a time (what every request waits behind): /metrics.
        self.loop_monitor = LoopMonitor()
        self._parts.append(_Part(LoopMonitor.name, self.loop_monitor.run, self.loop_monitor.stop))
        if housekeeping:  # purges published outbox rows, processed messages, idempotency keys
            keeper = Housekeeping(self.engine, settings)
            self._parts.append(_Part(keeper.name, keeper.run, keeper.stop))
        for spec in consumers:
            self.add_consumer(spec)
        for job in background:
            self.add_background(job)

    # -- composition ------------------------------------------------------------------------------

    def add_consumer(self, spec: ConsumerSpec) -> IdempotentConsumer:
        """Add a consumer (or a factory of one taking the runtime); call before `start()`."""
        consumer = spec if isinstance(spec, IdempotentConsumer) else spec(self)
        if consumer.on_outbox_commit is None and self.relay is not None:
            # Events a handler publishes go out at once instead of at the relay's next poll.
            consumer.on_outbox_commit = self.relay.wake
        self.consumers.append(consumer)
        self._parts.append(_Part(f"consumer:{consumer.name}", consumer.run, consumer.stop, elected=True))
        return consumer

    def add_background(self, job: BackgroundSpec, name: str | None = None) -> None:
        """Add a background job (see `BackgroundSpec`); call before `start()`."""
        target: Any = job
        if not hasattr(target, "run") and callable(target) and _takes_an_argument(target):
            target = target(self)
        if hasattr(target, "run"):
            run = target.run
            stop = getattr(target, "stop", None)
            label = name or getattr(target, "name", None) or type(target).__name__
        elif callable(target):
            run, stop = target, None
            label = name or getattr(target, "__name__", "job")
        else:
            raise TypeError(f"not a background job: {job!r}")
        self._parts.append(_Part(f"background:{label}", run, stop, elected=True))

    def add_readiness_check(self, name: str, check: Check) -> None:
        """Make `/readyz` depend on `check` too (see `shared.readiness`), e.g. "pool" in ranking."""
        if name in self.readiness_checks():
            raise ValueError(f"a readiness check named {name!r} exists already")
        self._readiness[name] = check

    def add_metrics(self, source: MetricsSource) -> None:
        """Serve `source`'s metric families on `/metrics` too (see `shared.metrics`)."""
        self._metrics.append(source)

    def watch_consumer(self, current: Callable[[], IdempotentConsumer | None]) -> None:
        """Report the metrics of a consumer run by a background part (e.g. ranking's projection runner)."""
        self._watched.append(current)

    def observed_consumers(self) -> list[IdempotentConsumer]:
        """The runtime's consumers and the watched ones that currently exist."""
        watched = [consumer for current in self._watched if (consumer := current()) is not None]
        return [*self.consumers, *watched]

    def metrics_sources(self) -> list[MetricsSource]:
        """What `/metrics` collects from this runtime: consumers, outbox, then the service's own."""
        service = self.settings.service_name

        async def consumers() -> list[Any]:
            return await consumer_metrics(service, self.observed_consumers())

        async def outbox() -> list[Any]:
            published = self.relay.published if self.relay is not None else None
            return await outbox_metrics(service, self.engine, published)

        async def loop() -> list[Any]:
            return await self.loop_monitor.metrics(service)

        return [consumers, outbox, loop, *self._metrics]

    def uow(self) -> UnitOfWork:
        """A unit of work (one transaction): `async with runtime.uow() as uow: ...`."""
        return UnitOfWork(
            self.session_factory,
            self.settings,
            self.clock,
            on_outbox_commit=self.relay.wake if self.relay is not None else None,
        )

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every part as a supervised task; returns at once (they connect in the background)."""
        if self._tasks:
            return
        _die_with_parent()
        self._started = True
        self._stopping.clear()
        election = self.election
        for part in self._parts:
            if election is None or not part.elected:
                self._tasks[part.name] = asyncio.create_task(self._supervise(part), name=part.name)
        if election is not None:
            duties = election.run(self._lead, self._stopping)
            self._tasks["duties"] = asyncio.create_task(duties, name="duties")

    async def _lead(self) -> None:
        """The elected parts, supervised, while this process holds the duties lock."""
        duties = [part for part in self._parts if part.elected]
        tasks = {part.name: asyncio.create_task(self._supervise(part), name=part.name) for part in duties}
        self._tasks.update(tasks)
        try:
            await asyncio.gather(*tasks.values())
        finally:
            for name, task in tasks.items():
                task.cancel()
                if self._tasks.get(name) is task:
                    del self._tasks[name]
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Ask every part to finish (consumers first, the relay last), cancel stragglers, close up."""
        self._stopping.set()
        self._started = False
        ordered = sorted(self._parts, key=lambda p: p.name == "outbox-relay")
        for part in ordered:
            if part.stop is not None:
                try:
                    await asyncio.wait_for(part.stop(), grace_s)
                except Exception as exc:
                    log.warning("stopping %s: %r", part.name, exc)
        tasks = list(self._tasks.values())
        for part in self._parts:
            task = self._tasks.get(part.name)
            if part.stop is None and task is not None:
                task.cancel()  # a plain coroutine job has no other way to hear about the stop
        self._tasks.clear()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._kafka_probe is not None:
            probe, self._kafka_probe = self._kafka_probe, None
            with contextlib.suppress(Exception):
                await probe.close()
        await self.engine.dispose()

    async def _supervise(self, part: _Part) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.5
        while not self._stopping.is_set():
            started = loop.time()
            try:
                await part.run()
                if self._stopping.is_set():
                    return
                log.warning("%s returned while the service is running; restarting it", part.name)
            except asyncio.CancelledError:
                raise
            except FATAL_ERRORS as exc:
                self.fatal_errors[part.name] = exc
                log.critical("%s cannot run: %s", part.name, exc)
                return
            except Exception:
                log.exception("%s crashed; restarting in %.1fs", part.name, backoff)
            part.restarts += 1
            if loop.time() - started > 60:
                backoff = 0.5  # it ran fine for a while: this is a new incident
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, 30.0)

    def task_states(self) -> dict[str, str]:
        """`running`, `failed: <error>` or `stopped`, per part (for diagnostics)."""
        states: dict[str, str] = {}
        for part in self._parts:
            task = self._tasks.get(part.name)
            if part.name in self.fatal_errors:
                states[part.name] = f"failed: {self.fatal_errors[part.name]}"
            elif part.elected and self.election is not None and not self.election.leading:
                states[part.name] = "standby" if self._started else "stopped"  # another process runs it
            elif task is not None and not task.done():
                states[part.name] = "running"
            else:
                states[part.name] = "stopped"
        return states

    # -- readiness --------------------------------------------------------------------------------

    def readiness_checks(self) -> dict[str, Check]:
        """What `/readyz` asks, in order: database, Kafka, the running parts, then the service's own."""
        return {
            "database": self.database_ready,
            "kafka": self.kafka_ready,
            "consumers": self.parts_running,
            **self._readiness,
        }

    def parts_running(self) -> CheckResult:
        """True when no part is stopped for good and every consumer runs; else why not.

        A job or the relay being restarted after a crash still counts (it recovers by itself); a
        consumer between a crash and its restart does not, nor a part stopped by a fatal error (its
        stored positions belong to another Kafka cluster).
        """
        problems = [f"{name} is stopped: {exc}" for name, exc in self.fatal_errors.items()]
        standby = self.election is not None and not self.election.leading
        if not self._started:
            problems.append("the service's consumers and jobs are not started")
        elif not standby:  # a process that waits for the duties lock serves requests all the same
            problems += [
                f"consumer:{c.name} is not running"
                for c in self.consumers
                if not c.running and f"consumer:{c.name}" not in self.fatal_errors
            ]
        if not problems:
            return True
        return "Not every part of the service runs: " + "; ".join(problems) + "."

    async def database_ready(self, timeout_s: float = 2.0) -> bool:
        """True when `SELECT 1` answers within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s), self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return True
        except Exception as exc:
            log.debug("database not ready: %r", exc)
            return False

    async def kafka_ready(self, timeout_s: float = 2.0) -> bool:
        """True when a broker answers a metadata request within `timeout_s`.

        One long-lived client serves every probe: a readiness check every few seconds must not open
        (and leave half-open) a new connection each time.
        """
        try:
            async with asyncio.timeout(timeout_s):
                async with self._probe_lock:
                    if self._kafka_probe is None:
                        probe = AIOKafkaClient(
                            bootstrap_servers=self.settings.kafka_bootstrap_servers,
                            client_id=f"ee-{self.settings.service_name}-ready",
                            request_timeout_ms=int(timeout_s * 1000),
                        )
                        try:
                            await probe.bootstrap()
                        except BaseException:
                            await probe.close()
                            raise
                        self._kafka_probe = probe
                    metadata = await self._kafka_probe.fetch_all_metadata()
            return bool(metadata.brokers())
        except Exception as exc:
            log.debug("Kafka not ready: %r", exc)
            return False


def _die_with_parent() -> None:
    """In a worker process of `uvicorn --workers N`: die with the supervising process.

    The supervisor's pid is the one the scripts record and `kill -9`; without this its workers would
    outlive it, keep the port and keep the duties lock. Linux only (prctl PR_SET_PDEATHSIG)."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError) as exc:
        log.warning("cannot tie this worker to its supervisor's life: %r", exc)
        return
    if os.getppid() != parent.pid:  # the supervisor died before prctl
        os.kill(os.getpid(), signal.SIGKILL)


def _takes_an_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False
    return len(params) == 1
