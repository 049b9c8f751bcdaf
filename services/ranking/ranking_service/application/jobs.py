"""Loading the pool at start, rescoring as time passes, and switching the rules version.

Each pass works in chunks, one transaction per chunk, through `RankingProjection.rescore`, so its rows
are locked the same way (sorted ids, FOR UPDATE) as the consumer's and the two never undo each other.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from ranking_service.application.ports import RulesRow, Slots, StoreFactory
from ranking_service.application.projection import Outcome, RankingProjection
from ranking_service.domain.pool import Pool, PoolRow
from ranking_service.domain.view import InfoRecord
from shared import context
from shared.errors import NotFound, StaleVersion
from shared.events.catalogue import RulesActivated
from shared.rules.crs import IN_FORCE, RULES_CHOICES, is_rules_choice, rules_for_day
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

CHUNK: Final = 500
UowFactory = Callable[[], UnitOfWork]
SlotsSource = Callable[[], Slots | None]
_UNSWEPT: Final = object()


class UnknownRulesVersion(NotFound):
    """No CRS rules version of that name is modelled."""

    title = "Unknown rules version"

    def __init__(self, version: str) -> None:
        super().__init__(
            f"No CRS rules version {version!r} is modelled; use one of {', '.join(RULES_CHOICES)}."
        )


@dataclass(frozen=True, slots=True)
class Activation:
    """An activation: the rules, the ones before, the active-rules state's new revision, and what this
    instance's rescoring pass did (None until it finished)."""

    rules_version: str
    previous: str
    revision: int
    rescored: int | None = None
    changed: int | None = None


OnSwitched = Callable[[AsyncSession, Activation], Awaitable[None]]
"""Called in the switch's transaction, before its commit (e.g. to record an Idempotency-Key)."""


async def _nothing(session: AsyncSession, switched: Activation) -> None:
    return None


class RankingJobs:
    """Start-up load, the time-based rescoring pass and rules activation."""

    def __init__(
        self,
        projection: RankingProjection,
        store_for: StoreFactory,
        uow: UowFactory,
        consumer_name: str,
        slots: SlotsSource = lambda: None,
    ) -> None:
        self.projection = projection
        self.store_for = store_for
        self.uow = uow
        self.consumer_name = consumer_name
        # This instance's rescoring share (None: every profile); it follows the consumer's assignment.
        self.slots = slots
        # Loading swaps the whole view: no rescoring pass may commit into the old one meanwhile.
        self.exclusive = asyncio.Lock()
        # The share last swept for rows scored with other rules than the active ones (after a load, a
        # new assignment or an activation: an activation interrupted by a crash, or another
        # instance's activation, leaves such rows to their owner).
        self._swept: object = _UNSWEPT
        self._sweeps: set[asyncio.Task[None]] = set()

    # --- start-up --------------------------------------------------------------------------------

    async def load_exclusively(self) -> int:
        async with self.exclusive:
            return await self.load()

    async def load(self) -> int:
        """Read the projection table into the view (instead of replaying the log); the pool size."""
        rows: list[PoolRow] = []
        infos: dict[str, InfoRecord] = {}
        gc.unfreeze()  # a reload: let the pool being replaced be collected
        async with self.uow() as uow:
            store = self.store_for(uow.session)
            rules = await store.active_rules() or IN_FORCE
            positions = await store.positions(self.consumer_name)
            async for row, info in store.pool_rows():
                rows.append(row)
                infos[row[0]] = info.record
        pool = Pool.from_rows(rows)
        del rows
        view = self.projection.view
        view.rules_version = rules if is_rules_choice(rules) else IN_FORCE
        view.replace(pool, infos, positions, self.projection.clock.now())
        self._swept = _UNSWEPT
        gc.collect()
        gc.freeze()  # a million long-lived objects: keep the collector from walking them again and again
        log.info("ranking pool loaded: %d candidates, rules %s", len(pool), view.rules_version)
        return len(pool)

    # --- time ------------------------------------------------------------------------------------

    async def rescore_due(self, limit: int | None = None, slots: Slots | None = None) -> Outcome:
        """Evaluate again every profile (of `slots`) whose `rescore_at` has come (chunk by chunk)."""
        total = Outcome()
        while limit is None or total.written < limit:
            async with self.uow() as uow:
                ids = await self.store_for(uow.session).due(self.projection.clock.now(), CHUNK, slots)
                if not ids:
                    break
                outcome = await self.projection.rescore(uow, ids)
                await uow.commit()
            total += outcome
            if outcome.written == 0:  # due rows that evaluate to what they hold: never spin on them
                log.warning("%d profiles were due but nothing about them changed", len(ids))
                break
            await asyncio.sleep(0)
        return total

    async def tick(self) -> None:
        """The periodic job: whatever time made due (and, once after a load, rows scored with another
        rules version than the active one: an activation interrupted by a crash)."""
        if not self.projection.view.loaded:
            return  # the runner loads first; the next tick (or clock move) does the work
        async with self.exclusive:
            slots = self.slots()
            if self._swept != slots:
                await self.rescore_other_rules(slots)
                self._swept = slots
            outcome = await self.rescore_due(slots=slots)
        if outcome.written:
            log.info(
                "rescored %d profiles (entered %d, moved %d, left %d)",
                outcome.written,
                outcome.entered,
                outcome.moved,
                outcome.left,
            )

    # --- rules -----------------------------------------------------------------------------------

    async def rules_state(self) -> RulesRow:
        """The active-rules state as committed (its revision is the ETag of the rules)."""
        async with self.uow() as uow:
            return await self.store_for(uow.session).rules_state()

    async def activate(
        self, rules_version: str, expected: int | None = None, on_switched: OnSwitched = _nothing
    ) -> Activation:
        """Make `rules_version` the pool's rules, rescore this instance's share, emit what changed.

        `IN_FORCE` (the default) scores each day with the version in force on it; a version's name
        pins that version whatever the day. The switch waits for the scoring passes in flight (on any
        instance) to commit, and publishes `RulesActivated`: every instance switches its view when it
        reads it, and rescores the profiles of the partitions it owns (this one, its own at once).

        `expected` is the revision the caller last read (If-Match): `StaleVersion` when another
        activation came in between. `on_switched` runs in the switch's transaction."""
        if not is_rules_choice(rules_version):
            raise UnknownRulesVersion(rules_version)
        async with self.exclusive:
            view = self.projection.view
            async with self.uow() as uow:
                store = self.store_for(uow.session)
                current = await store.lock_rules()
                if expected is not None and expected != current.revision:
                    raise StaleVersion(expected, current.revision, what="active rules")
                previous = current.version or IN_FORCE
                now = self.projection.clock.now()
                revision = await store.set_active_rules(rules_version, now)
                switched = Activation(rules_version, previous, revision)
                await on_switched(uow.session, switched)
                if self.projection.emit:
                    uow.publish(
                        RulesActivated(rules_version=rules_version, previous=previous, activated_at=now)
                    )

                def switch() -> None:
                    view.rules_version = rules_version

                uow.after_commit(switch)
                await uow.commit()
            slots = self.slots()
            outcome = await self.rescore_other_rules(slots)
            self._swept = slots
            return replace(switched, rescored=outcome.written, changed=outcome.changed)

    def rules_activated(self, rules_version: str, correlation_id: str | None = None) -> None:
        """Another instance (or this one) activated `rules_version`: switch the view's rules, and
        rescore this instance's share of the rows scored with other rules, in the background."""
        if not is_rules_choice(rules_version):
            log.warning("ignoring the activation of unknown rules version %r", rules_version)
            return
        self.projection.view.rules_version = rules_version
        # The sweep's events continue the activation's conversation.
        token = context.correlation_id.set(correlation_id or context.correlation_id.get())
        try:
            task = asyncio.create_task(self._sweep_share(), name="ranking-rules-sweep")
        finally:
            context.correlation_id.reset(token)
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    async def _sweep_share(self) -> None:
        try:
            async with self.exclusive:
                slots = self.slots()
                outcome = await self.rescore_other_rules(slots)
                self._swept = slots
            if outcome.written:
                log.info(
                    "rules %s: rescored %d profiles of this instance's partitions (changed %d)",
                    self.projection.view.rules_version,
                    outcome.written,
                    outcome.changed,
                )
        except Exception:  # the next tick sweeps again (the share is marked unswept)
            self._swept = _UNSWEPT
            log.exception("rescoring after a rules activation failed; the periodic job will retry")

    async def rescore_other_rules(self, slots: Slots | None = None) -> Outcome:
        """Rescore active profiles (of `slots`) last scored with another rules version; repeat until
        none is left."""
        total = Outcome()
        while True:
            outcome = await self._sweep(self._scoring_version(), slots)
            total += outcome
            if outcome.written == 0:
                return total

    def _scoring_version(self) -> str:
        """The name of the version rows are scored with today (the pinned one, or the one in force)."""
        today = self.projection.clock.now().astimezone(UTC).date()
        return rules_for_day(self.projection.rules, today).name

    async def _sweep(self, rules_version: str, slots: Slots | None) -> Outcome:
        total, after = Outcome(), ""
        while True:
            async with self.uow() as uow:
                store = self.store_for(uow.session)
                ids = await store.scored_with_other_rules(rules_version, after, CHUNK, slots)
                if not ids:
                    return total
                total += await self.projection.rescore(uow, ids)
                await uow.commit()
            after = ids[-1]
            await asyncio.sleep(0)
