"""Thin HTTP routers: parse, call the application, shape the answer. Rules live in the domain."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from draws_service.application.handlers import DrawsService
from draws_service.schemas import (
    InvitationsOut,
    PlanOut,
    RoundIn,
    RoundOut,
    RoundsOut,
    invitations_out,
    plan_out,
    round_out,
)
from shared.auth import Principal, require_roles
from shared.bounds import DB_INT_MAX
from shared.idempotency import REPLAYED_HEADER, RequiredIdempotencyKey
from shared.web.openapi import links

MAX_PAGE: Final = 5_000

router = APIRouter(prefix="/v1/draws", tags=["draws"])
Ops = Annotated[Principal, Depends(require_roles("ops"))]


async def get_draws(request: Request) -> DrawsService:
    service: DrawsService = request.app.state.draws
    return service


Draws = Annotated[DrawsService, Depends(get_draws)]


# -- routes ---------------------------------------------------------------------------------------


@router.post("/plan", summary="Dry run of a round (ops): cut-off, tie-break, count, distribution")
async def plan_round(body: RoundIn, _: Ops, draws: Draws) -> PlanOut:
    return plan_out(await draws.plan(body.command()))


@router.post(
    "",
    status_code=201,
    summary="Hold a round of invitations (ops; Idempotency-Key required)",
    operation_id="hold_round",
    responses={
        201: {
            "description": "The round held (or, for a retried key, the round it held).",
            "links": links(
                GetRound=("get_round", {"round_ref": "$response.body#/id"}),
                RoundInvitations=("round_invitations", {"round_ref": "$response.body#/id"}),
            ),
        }
    },
)
async def hold_round(
    body: RoundIn, key: RequiredIdempotencyKey, response: Response, _: Ops, draws: Draws
) -> RoundOut:
    """The round records its key: the same key and body give the round it held again
    (`Idempotent-Replayed: true`), the same key with another body a 422."""
    outcome = await draws.hold(body.command(), key)
    record = outcome.stored.record
    response.headers["Location"] = f"/v1/draws/{record.round_id}"
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return round_out(record)


@router.get("", summary="The rounds held, newest first (public)")
async def list_rounds(
    draws: Draws,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=DB_INT_MAX, description="Only rounds numbered below this.")
    ] = None,
) -> RoundsOut:
    records = await draws.list_rounds(limit=limit + 1, before=before)
    items = [round_out(r) for r in records[:limit]]
    return RoundsOut(items=items, next_before=items[-1].round_number if len(records) > limit else None)


RoundRef = Annotated[str, Path(max_length=64, description="A round's id (UUID) or its number (1, 2, ...)")]


@router.get(
    "/{round_ref}", summary="One round as published, by id or round number (public)", operation_id="get_round"
)
async def get_round(round_ref: RoundRef, draws: Draws) -> RoundOut:
    return round_out((await draws.get_round(round_ref)).record)


@router.get(
    "/{round_ref}/invitations",
    summary="The invitations of a round, in rank order (ops)",
    operation_id="round_invitations",
)
async def round_invitations(
    round_ref: RoundRef,
    _: Ops,
    draws: Draws,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    after: Annotated[int, Query(ge=0, le=DB_INT_MAX, description="Rank after which the page starts.")] = 0,
) -> InvitationsOut:
    stored, page = await draws.invitations(round_ref, limit=limit, after=after)
    return invitations_out(stored, page)
