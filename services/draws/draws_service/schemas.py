"""The draws service's HTTP models (pydantic) and how the application's results map onto them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from draws_service.application.handlers import RoundPlan, RoundRequest, distribution
from draws_service.application.ports import InvitationPage, StoredRound
from draws_service.domain import MAX_ROUND_SIZE, Invitation, RoundRecord, round_name

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
