"""The dispatcher: sends due deliveries, one active instance per service (advisory-lock election).

Each pass asks for the pending deliveries that are due and first in line for their (subscription,
candidate), and sends up to `max_in_flight` at once; a delivery stays `pending` in the database until
its outcome is written, so a crash (even kill -9) only means it is sent again (same `webhook-id`,
receivers dedupe). A finished request frees its slot at once (the next sends do not wait for the
database); its outcome is written in a batch by one writer task, and until then the delivery is left
out of the queries. A written outcome frees the next delivery of the same candidate and wakes the
loop. New deliveries (fan-out commit, retry, replay) and a moved clock wake it too; otherwise it polls
every `poll_interval_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import orjson
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from notifications_service.adapters import repository
from notifications_service.adapters.secrets import Signer
from notifications_service.adapters.sender import Request, WebhookSender
from notifications_service.application.handlers import NotificationsHandlers, Outcome
from notifications_service.domain.retry import Attempt, verdict_of
from notifications_service.domain.scope import redact
from shared.clock import Clock
from shared.leadership import advisory_leadership

log = logging.getLogger(__name__)

LOCK_NAME = "notifications.dispatcher"
MAX_UNWRITTEN_FACTOR = 8
WRITE_LINGER_S = 0.01
"""How long the writer lets outcomes gather before one transaction writes them (unless half the
requests in flight have already finished): fewer, larger transactions for a small delay."""
ATTEMPTS = Counter("ee_webhook_attempts", "Webhook delivery attempts by verdict", ["verdict"])
LATENCY = Histogram(
    "ee_webhook_attempt_seconds",
    "Webhook request latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class Dispatcher:
    name = "webhook-dispatcher"

    def __init__(
        self,
        engine: AsyncEngine,
        handlers: NotificationsHandlers,
        sender: WebhookSender,
        clock: Clock,
        *,
        max_in_flight: int,
        poll_interval_s: float,
        lock_retry_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.handlers = handlers
        self.sender = sender
        self.clock = clock
        self.signer = Signer()
        self.max_in_flight = max_in_flight
        self.poll_interval_s = poll_interval_s
        self.lock_retry_s = lock_retry_s
        self.is_leader = False
        self.sent = 0
        self._inflight: set[str] = set()  # HTTP requests under way (what max_in_flight bounds)
        self._unwritten: set[str] = set()  # attempted, outcome not yet committed (still pending in SQL)
        # Outcomes committed while a heads query may already have been running: that query can still
        # see those deliveries as pending, so they are skipped when it started before the commit.
        self._written_at: dict[str, int] = {}
        self._generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        self._stopping.clear()
        helpers = [asyncio.create_task(self._writer()), asyncio.create_task(self._watch_clock())]
        backoff = 0.2
        try:
            while not self._stopping.is_set():
                try:
                    async with advisory_leadership(self.engine, LOCK_NAME) as conn:
                        if conn is None:
                            await self._sleep(self.lock_retry_s)
                            continue
                        self.is_leader = True
                        log.info("webhook dispatcher is active")
                        await self._lead(conn)
                        backoff = 0.2
                except Exception as exc:
                    log.warning("webhook dispatcher pass failed (%r); again in %.1f s", exc, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                finally:
                    self.is_leader = False
        finally:
            await self._drain()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if self._stopping.is_set():
                await self.sender.close()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------------

    async def _lead(self, conn: Any) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.max_in_flight - len(self._inflight)
            if len(self._unwritten) > MAX_UNWRITTEN_FACTOR * self.max_in_flight:
                free = 0  # the database is not keeping up (or down): no more sends until it does
            if free > 0:
                started = self._generation
                skip = [*self._inflight, *self._unwritten]
                heads = await repository.due_heads(conn, self.clock.now(), free, skip)
                # Outcomes written while the query ran: it may have read those deliveries as pending.
                self._written_at = {k: g for k, g in self._written_at.items() if g > started}
                for head in heads:
                    busy = self._inflight | self._unwritten
                    if head["id"] in busy or head["id"] in self._written_at:
                        continue
                    self._inflight.add(head["id"])
                    free -= 1
                    task = asyncio.create_task(self._deliver(head))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)

    async def _deliver(self, head: dict[str, Any]) -> None:
        try:
            attempt = await self.sender.send(self._request(head))
        except Exception as exc:  # a bug in building the request: logged, retried on the schedule
            log.exception("building webhook %s failed", head["id"])
            attempt = Attempt(None, f"internal error: {exc!r}"[:500], 0.0)
        self.sent += 1
        # The request slot is free now; the delivery stays out of the queries until its outcome is
        # committed (until then it is still pending in the database).
        self._unwritten.add(head["id"])
        self._inflight.discard(head["id"])
        self._wake.set()
        ATTEMPTS.labels(verdict_of(attempt).value).inc()
        LATENCY.observe(attempt.latency_ms / 1000)
        self._outcomes.append(
            Outcome(
                delivery_id=head["id"],
                subscription_id=head["subscription_id"],
                attempts_before=head["attempts"],
                failing_since=head["failing_since"],
                attempt=attempt,
                at=self.clock.now(),
            )
        )
        self._outcome_ready.set()

    def _request(self, head: dict[str, Any]) -> Request:
        envelope = dict(head["envelope"])
        envelope["data"] = redact(head["role"], envelope.get("data") or {})
        body = orjson.dumps(envelope)
        secrets = self._secrets(head, self.clock.now())
        headers = self.signer.headers(head["id"], body.decode(), secrets)
        return Request(head["url"], headers, body)

    def _secrets(self, head: dict[str, Any], now: datetime) -> list[str]:
        box, sid = self.handlers.box, head["subscription_id"]
        secrets = [box.open(head["secret"], sid)]
        until = head["previous_valid_until"]
        if head["previous_secret"] and until is not None and now < until:
            secrets.append(box.open(head["previous_secret"], sid))
        return secrets

    async def _writer(self) -> None:
        """Write outcomes in batches; only then free their deliveries (and wake the loop)."""
        while True:
            await self._outcome_ready.wait()
            if len(self._outcomes) < max(1, self.max_in_flight // 2):
                await asyncio.sleep(WRITE_LINGER_S)
            self._outcome_ready.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        while True:
            try:
                await self.handlers.record_outcomes(batch)
                break
            except Exception as exc:
                log.warning("recording %d webhook outcomes failed (%r); retrying", len(batch), exc)
                await asyncio.sleep(0.5)
        self._generation += 1
        for outcome in batch:
            self._written_at[outcome.delivery_id] = self._generation
            self._unwritten.discard(outcome.delivery_id)
        self._wake.set()

    async def _watch_clock(self) -> None:
        while True:
            await self.clock.wait_for_change(None)
            self._wake.set()

    async def _drain(self, grace_s: float = 5.0) -> None:
        """On stop: let the requests in flight finish (bounded) and write their outcomes."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._write_pending(), grace_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
