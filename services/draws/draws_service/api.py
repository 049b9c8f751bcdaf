"""Thin HTTP routers: parse, call the application, shape the answer. Rules live in the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from draws_service.application.errors import DrawsError
from draws_service.application.handlers import (
    DrawsService,
    HoldOutcome,
    RoundPlan,
    RoundRequest,
    distribution,
)
from draws_service.application.ports import InvitationPage, StoredRound
from draws_service.domain import MAX_ROUND_SIZE, Invitation, RoundRecord, round_name
from shared.auth import Principal, require_roles
from shared.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, parse_idempotency_key
from shared.problem import Problem

MAX_PAGE: Final = 5_000

router = APIRouter(prefix="/v1/draws", tags=["draws"])
Ops = Annotated[Principal, Depends(require_roles("ops"))]


async def get_draws(request: Request) -> DrawsService:
    service: DrawsService = request.app.state.draws
    return service


Draws = Annotated[DrawsService, Depends(get_draws)]


# -- bodies ---------------------------------------------------------------------------------------


class RoundIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"type": "cec", "size": 2000}, {"type": "healthcare", "size": 3500}]},
    )

    type: str = Field(
        description="`general`, a program (`cec`, `fsw`, `fst`, `pnp`) or a category (`french`, ...)"
    )
    size: int = Field(ge=1, le=MAX_ROUND_SIZE, description="How many invitations at most.")

    def command(self) -> RoundRequest:
        return RoundRequest(type=self.type, size=self.size)


class ScoreBin(BaseModel):
    range: str = Field(examples=["491-500"])
    count: int


class PlanOut(BaseModel):
    type: str
    name: str
    category_version: str | None
    size: int
    would_invite: int = Field(description="How many candidates the round would invite now.")
    cutoff_crs: int | None = Field(description="CRS of the lowest-ranked candidate who would be invited.")
    tie_break_at: datetime | None = Field(
        description="`submitted_at` of the last candidate who would be invited."
    )
    distribution: list[ScoreBin] = Field(description="Scores of the would-be invited, in IRCC's bins.")
    pool_size: int
    eligible_count: int
    pool_position: dict[str, Any] = Field(description="The ranking projection position the plan reflects.")


class RoundOut(BaseModel):
    """A round as published: no personal data."""

    id: str
    round_number: int
    held_at: datetime
    type: str
    name: str = Field(examples=["Healthcare and Social Services Occupations, 2026-Version 3"])
    category_version: str | None
    size: int
    invitations: int
    cutoff_crs: int | None
    tie_break_at: datetime | None = Field(
        description="Tie-breaking rule: `submitted_at` of the last invited."
    )
    ircc: dict[str, str] = Field(description="The same round in the fields of IRCC's rounds feed.")


class RoundsOut(BaseModel):
    items: list[RoundOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class InvitationOut(BaseModel):
    invitation_id: str
    rank: int
    profile_id: str
    owner: str
    program: str
    crs: int
    citizenship: str
    submitted_at: datetime
    invited_at: datetime
    deadline: datetime
    status: str = Field(description="open, declined, expired or applied")


class InvitationsOut(BaseModel):
    round_id: str
    round_number: int
    items: list[InvitationOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last.")


# -- mapping --------------------------------------------------------------------------------------


def round_out(record: RoundRecord) -> RoundOut:
    return RoundOut(
        id=record.round_id,
        round_number=record.round_number,
        held_at=record.held_at,
        type=record.round_type.code,
        name=record.name,
        category_version=record.category_version,
        size=record.size,
        invitations=record.invitations_count,
        cutoff_crs=record.cutoff_crs,
        tie_break_at=record.tie_break_at,
        ircc=record.ircc_feed(),
    )


def plan_out(plan: RoundPlan) -> PlanOut:
    selection = plan.selection
    return PlanOut(
        type=selection.round_type.code,
        name=round_name(selection.round_type, plan.category_version),
        category_version=plan.category_version,
        size=selection.size,
        would_invite=selection.count,
        cutoff_crs=selection.cutoff_crs,
        tie_break_at=selection.tie_break_at,
        distribution=[ScoreBin(**row) for row in distribution(selection)],
        pool_size=plan.pool.pool_size,
        eligible_count=plan.pool.eligible_count,
        pool_position=plan.pool.position,
    )


def invitation_out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        invitation_id=invitation.invitation_id,
        rank=invitation.rank,
        profile_id=invitation.profile_id,
        owner=invitation.owner,
        program=invitation.program,
        crs=invitation.crs,
        citizenship=invitation.citizenship,
        submitted_at=invitation.submitted_at,
        invited_at=invitation.invited_at,
        deadline=invitation.deadline,
        status=invitation.status,
    )


def invitations_out(stored: StoredRound, page: InvitationPage) -> InvitationsOut:
    return InvitationsOut(
        round_id=stored.record.round_id,
        round_number=stored.record.round_number,
        items=[invitation_out(item) for item in page.items],
        next_after=page.next_after,
    )


def problem(error: DrawsError) -> Problem:
    headers = {"Retry-After": "5"} if error.status == 503 else None
    return Problem(error.status, error.title, error.detail, headers=headers)


def idempotency_key(key: str | None) -> str:
    """The validated header: 428 when absent, 400 when malformed (as every service answers)."""
    parsed = parse_idempotency_key(key, required=True)
    assert parsed is not None
    return parsed


# -- routes ---------------------------------------------------------------------------------------


@router.post("/plan", summary="Dry run of a round (ops): cut-off, tie-break, count, distribution")
async def plan_round(body: RoundIn, _: Ops, draws: Draws) -> PlanOut:
    try:
        return plan_out(await draws.plan(body.command()))
    except DrawsError as error:
        raise problem(error) from error


@router.post(
    "",
    status_code=201,
    summary="Hold a round of invitations (ops; Idempotency-Key required)",
    responses={201: {"description": "The round held (or, for a retried key, the round it held)."}},
)
async def hold_round(
    body: RoundIn,
    response: Response,
    _: Ops,
    draws: Draws,
    key: Annotated[
        str | None, Header(alias=IDEMPOTENCY_HEADER, description="A UUID per round; resend it to retry.")
    ] = None,
) -> RoundOut:
    try:
        outcome: HoldOutcome = await draws.hold(body.command(), idempotency_key(key))
    except DrawsError as error:
        raise problem(error) from error
    record = outcome.stored.record
    response.headers["Location"] = f"/v1/draws/{record.round_id}"
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return round_out(record)


@router.get("", summary="The rounds held, newest first (public)")
async def list_rounds(
    draws: Draws,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, description="Only rounds numbered below this.")] = None,
) -> RoundsOut:
    records = await draws.list_rounds(limit=limit + 1, before=before)
    items = [round_out(r) for r in records[:limit]]
    return RoundsOut(items=items, next_before=items[-1].round_number if len(records) > limit else None)


@router.get("/{round_ref}", summary="One round as published, by id or round number (public)")
async def get_round(round_ref: str, draws: Draws) -> RoundOut:
    try:
        return round_out((await draws.get_round(round_ref)).record)
    except DrawsError as error:
        raise problem(error) from error


@router.get("/{round_ref}/invitations", summary="The invitations of a round, in rank order (ops)")
async def round_invitations(
    round_ref: str,
    _: Ops,
    draws: Draws,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    after: Annotated[int, Query(ge=0, description="Rank after which the page starts.")] = 0,
) -> InvitationsOut:
    try:
        stored, page = await draws.invitations(round_ref, limit=limit, after=after)
    except DrawsError as error:
        raise problem(error) from error
    return invitations_out(stored, page)
