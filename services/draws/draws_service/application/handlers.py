"""Plan (dry run) and hold a round of invitations; read the published rounds and their invitations."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from draws_service.application.errors import IdempotencyKeyReused, RoundNotFound, RoundRejected
from draws_service.application.ports import (
    AfterChunk,
    Categories,
    DrawsRepository,
    InvitationPage,
    PoolSelection,
    Ranking,
    StoredRound,
    UnitOfWork,
    UnitOfWorkFactory,
)
from draws_service.domain import (
    InvalidRound,
    Invitation,
    Round,
    RoundKind,
    RoundRecord,
    RoundType,
    Selection,
    check_size,
    hold,
    select,
)
from shared.bounds import DB_INT_MAX
from shared.clock import Clock
from shared.events.catalogue import Invited, RoundOfInvitationsHeld


@dataclass(frozen=True, slots=True)
class RoundRequest:
    """`{type, size}` as operations send it."""

    type: str
    size: int

    def parsed(self) -> tuple[RoundType, int]:
        try:
            return RoundType.parse(self.type), check_size(self.size)
        except InvalidRound as exc:
            raise RoundRejected(str(exc)) from exc

    def fingerprint(self) -> str:
        """What `Idempotency-Key` binds to: the normalised request."""
        round_type, size = self.parsed()
        return hashlib.sha256(orjson.dumps({"type": round_type.code, "size": size})).hexdigest()


@dataclass(frozen=True, slots=True)
class RoundPlan:
    """A dry run: who would be invited now, and the cut-off that would be published."""

    selection: Selection
    category_version: str | None
    pool: PoolSelection


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    stored: StoredRound
    replayed: bool
    """True when the key had already held this round (the stored answer is returned again)."""


@dataclass
class DrawsService:
    """The command and query handlers, wired to their ports."""

    uow: UnitOfWorkFactory
    ranking: Ranking
    categories: Categories
    clock: Clock
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    after_chunk: AfterChunk | None = None
    """Fault-injection seam for tests: called after each bulk chunk of invitations is written."""

    async def plan(self, request: RoundRequest) -> RoundPlan:
        round_type, size = request.parsed()
        async with self.uow() as uow:
            return await self._select(uow.rounds, round_type, size)

    async def hold(self, request: RoundRequest, idempotency_key: str) -> HoldOutcome:
        round_type, size = request.parsed()
        fingerprint = request.fingerprint()
        async with self.uow() as uow:
            await uow.rounds.lock_rounds()
            existing = await uow.rounds.round_by_key(idempotency_key)
            if existing is not None:
                return HoldOutcome(_replay(existing, fingerprint, idempotency_key), replayed=True)
            plan = await self._select(uow.rounds, round_type, size)
            stored = await self._record(uow, plan, fingerprint, idempotency_key)
            await uow.commit()
        return HoldOutcome(stored, replayed=False)

    async def get_round(self, round_ref: str) -> StoredRound:
        async with self.uow() as uow:
            return await _find_round(uow.rounds, round_ref)

    async def list_rounds(self, *, limit: int, before: int | None) -> list[RoundRecord]:
        async with self.uow() as uow:
            return await uow.rounds.list_rounds(limit=limit, before=before)

    async def invitations(
        self, round_ref: str, *, limit: int, after: int
    ) -> tuple[StoredRound, InvitationPage]:
        async with self.uow() as uow:
            stored = await _find_round(uow.rounds, round_ref)
            page = await uow.rounds.invitations(stored.record.round_id, limit=limit, after=after)
            return stored, page

    async def _select(self, repo: DrawsRepository, round_type: RoundType, size: int) -> RoundPlan:
        category_version = self._category_version(round_type)
        open_ids = await repo.open_profile_ids()
        pool = await self.ranking.select(
            program=round_type.program, category=round_type.category, size=size, exclude=sorted(open_ids)
        )
        return RoundPlan(select(round_type, size, pool.candidates, open_ids), category_version, pool)

    def _category_version(self, round_type: RoundType) -> str | None:
        if round_type.kind is not RoundKind.CATEGORY:
            return None
        today = self.clock.today()
        version = self.categories.version_in_force(round_type.code, today)
        if version is None:
            raise RoundRejected(
                f"category {round_type.code!r} has no version in force on {today.isoformat()}; "
                "hold a round of a category in force, or a general or program round"
            )
        return version

    async def _record(self, uow: UnitOfWork, plan: RoundPlan, fingerprint: str, key: str) -> StoredRound:
        held = hold(
            plan.selection,
            round_id=self.new_id(),
            round_number=await uow.rounds.next_round_number(),
            held_at=self.clock.now(),
            category_version=plan.category_version,
            new_id=self.new_id,
        )
        stored = StoredRound(
            held.record, fingerprint, plan.pool.position, plan.pool.pool_size, plan.pool.eligible_count
        )
        await uow.rounds.add_round(stored, key)
        await uow.rounds.add_invitations(held.invitations, self.after_chunk)
        _publish(uow, held)
        return stored


def _replay(existing: StoredRound, fingerprint: str, key: str) -> StoredRound:
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} already held round {existing.record.round_number} with a different "
            "request; send that request again to read its result, or use a new key for a new round"
        )
    return existing


def round_number_of(round_ref: str) -> int | None:
    """The round number a ref names (plain ASCII digits), None for an id. `"²".isdigit()` is true and
    `int("²")` fails, so `str.isdigit` is not the test."""
    return int(round_ref) if round_ref.isascii() and round_ref.isdigit() else None


async def _find_round(repo: DrawsRepository, round_ref: str) -> StoredRound:
    number = round_number_of(round_ref)
    if number is not None:
        found = await repo.round_by_number(number) if number <= DB_INT_MAX else None
    else:
        found = await repo.round_by_id(round_ref)
    if found is None:
        raise RoundNotFound(f"no round {round_ref!r}; use a round id or number from GET /v1/draws")
    return found


def _publish(uow: UnitOfWork, held: Round) -> None:
    uow.publish(held_event(held.record))
    for invitation in held.invitations:
        uow.publish(invited_event(invitation))


def held_event(record: RoundRecord) -> RoundOfInvitationsHeld:
    return RoundOfInvitationsHeld(
        round_id=record.round_id,
        round_number=record.round_number,
        round_type=record.round_type.code,
        category_version=record.category_version,
        size=record.size,
        invitations_count=record.invitations_count,
        cutoff_crs=record.cutoff_crs,
        tie_break_at=record.tie_break_at,
        held_at=record.held_at,
    )


def invited_event(invitation: Invitation) -> Invited:
    return Invited(
        profile_id=invitation.profile_id,
        owner=invitation.owner,
        invitation_id=invitation.invitation_id,
        round_id=invitation.round_id,
        round_number=invitation.round_number,
        program=invitation.program,
        crs=invitation.crs,
        citizenship=invitation.citizenship,
        invited_at=invitation.invited_at,
        deadline=invitation.deadline,
    )


def distribution(selection: Selection) -> list[dict[str, Any]]:
    return [{"range": label, "count": count} for label, count in selection.distribution()]
