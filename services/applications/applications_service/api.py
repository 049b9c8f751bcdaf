"""The applications API (thin: parse, authorise by role, call a handler, shape the answer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from applications_service.adapters import queries
from applications_service.application.errors import Forbidden, NotFound, StaleVersion
from applications_service.application.handlers import ApplicationsHandlers, check_access
from applications_service.domain.errors import (
    ApplicationIncomplete,
    CoprCannotBeExtended,
    DeadlinePassed,
    DomainError,
    TransitionNotAllowed,
)
from applications_service.domain.invitation import InvalidCommand
from applications_service.domain.standard import at_risk, service_standard_stats
from applications_service.schemas import (
    ApplicationIn,
    ApplicationOut,
    AtRiskOut,
    DecisionIn,
    InvitationOut,
    StatsOut,
)
from shared.auth import Principal, require_roles
from shared.problem import PROBLEM_TYPE_BASE, Problem
from shared.web import IfMatch, etag_header, get_runtime, parse_if_match

router = APIRouter(prefix="/v1", tags=["applications"])

Readers = Annotated[Principal, Depends(require_roles("candidate", "partner", "officer", "ops"))]
Owners = Annotated[Principal, Depends(require_roles("candidate", "partner"))]
Officer = Annotated[Principal, Depends(require_roles("officer"))]
Ops = Annotated[Principal, Depends(require_roles("ops"))]
Runtime = Annotated[Any, Depends(get_runtime)]


def handlers(runtime: Runtime) -> ApplicationsHandlers:
    return ApplicationsHandlers(runtime.uow, runtime.clock)


Handlers = Annotated[ApplicationsHandlers, Depends(handlers)]


# --- errors ------------------------------------------------------------------------------------------


@contextmanager
def problems() -> Iterator[None]:
    """Domain and application errors as problem+json."""
    try:
        yield
    except ApplicationIncomplete as exc:
        errors = [{"field": p.field, "message": p.message} for p in exc.problems]
        raise Problem(
            422,
            exc.title,
            exc.detail,
            type_=PROBLEM_TYPE_BASE + "application-incomplete",
            errors=errors,
            extensions={"missing": exc.missing},
        ) from None
    except TransitionNotAllowed as exc:
        raise Problem(
            409,
            exc.title,
            exc.detail,
            type_=PROBLEM_TYPE_BASE + _slug(exc),
            extensions={"state": str(exc.state), "action": exc.action},
        ) from None
    except InvalidCommand as exc:
        raise Problem(
            422, exc.title, exc.detail, errors=[{"field": "reasons", "message": exc.detail}]
        ) from None
    except DomainError as exc:  # pragma: no cover - every domain error has a mapping above
        raise Problem(409, exc.title, exc.detail) from None
    except NotFound as exc:
        raise Problem(404, "Not found", exc.detail) from None
    except Forbidden as exc:
        raise Problem(403, "Forbidden", exc.detail) from None
    except StaleVersion as exc:
        headers = {"ETag": etag_header(exc.current)} if exc.current is not None else None
        raise Problem(
            412,
            "Precondition failed",
            exc.detail,
            headers=headers,
            extensions={"current_version": exc.current},
        ) from None


def _slug(exc: TransitionNotAllowed) -> str:
    if isinstance(exc, CoprCannotBeExtended):
        return "copr-cannot-be-extended"
    if isinstance(exc, DeadlinePassed):
        return "deadline-passed"
    return "transition-not-allowed"


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag_header(version)


# --- invitations -------------------------------------------------------------------------------------


@router.get("/candidates/{profile_id}/invitations", response_model=list[InvitationOut])
async def list_invitations(profile_id: str, principal: Readers, runtime: Runtime) -> list[InvitationOut]:
    """A profile's invitations, newest first. Candidates and partners see only those they own."""
    async with runtime.uow() as uow:
        rows = await queries.invitations_of_profile(uow.session, profile_id)
    visible = [
        r for r in rows if principal.role not in ("candidate", "partner") or r["owner"] == principal.sub
    ]
    if rows and not visible:
        raise Problem(403, "Forbidden", f"Profile {profile_id} belongs to another account.")
    return [InvitationOut.of(row) for row in visible]


@router.get("/invitations/{invitation_id}", response_model=InvitationOut)
async def get_invitation(
    invitation_id: str, principal: Readers, runtime: Runtime, response: Response
) -> InvitationOut:
    async with runtime.uow() as uow:
        row = await queries.invitation_row(uow.session, invitation_id)
    with problems():
        if row is None:
            raise NotFound("invitation", invitation_id)
        check_access(principal, row["owner"])
    _etag(response, row["version"])
    return InvitationOut.of(row)


@router.post("/invitations/{invitation_id}/decline", response_model=InvitationOut)
async def decline(
    invitation_id: str,
    principal: Owners,
    expected: IfMatch,
    commands: Handlers,
    runtime: Runtime,
    response: Response,
) -> InvitationOut:
    """Decline the invitation (up to its deadline): the profile returns to the pool if still eligible."""
    with problems():
        invitation = await commands.decline(principal, invitation_id, expected)
    return await _invitation_answer(runtime, invitation.invitation_id, response)


async def _invitation_answer(runtime: Any, invitation_id: str, response: Response) -> InvitationOut:
    async with runtime.uow() as uow:
        row = await queries.invitation_row(uow.session, invitation_id)
    assert row is not None
    _etag(response, row["version"])
    return InvitationOut.of(row)


# --- applications ------------------------------------------------------------------------------------


@router.get("/applications/stats", response_model=StatsOut)
async def stats(principal: Ops, runtime: Runtime) -> StatsOut:
    """Counts by state and the six-month service standard: median and 80th-percentile days to decision."""
    async with runtime.uow() as uow:
        counts = await queries.counts_by_state(uow.session)
        decided = await queries.decisions(uow.session)
    return StatsOut.of(service_standard_stats(counts, decided))


@router.get("/applications/at-risk", response_model=list[AtRiskOut])
async def applications_at_risk(principal: Officer, runtime: Runtime) -> list[AtRiskOut]:
    """Open applications that miss the six-month standard unless decided within 30 days, oldest first."""
    now = runtime.clock.now()
    async with runtime.uow() as uow:
        candidates = await queries.open_applications_near_standard(uow.session, now)
    return [AtRiskOut.of(item) for item in at_risk(candidates, now)]


@router.post("/applications", response_model=ApplicationOut, status_code=201)
async def apply(
    body: ApplicationIn,
    principal: Owners,
    commands: Handlers,
    runtime: Runtime,
    request: Request,
    response: Response,
) -> ApplicationOut:
    """Apply under an open invitation, at or before its deadline. `If-Match` (the invitation's ETag) is
    optional here; an incomplete application is a 422 listing what is missing."""
    expected = _optional_if_match(request)
    with problems():
        invitation = await commands.apply(principal, body.invitation_id, body.documents(), expected)
    assert invitation.application_id is not None
    response.headers["Location"] = f"/v1/applications/{invitation.application_id}"
    return await _application_answer(runtime, invitation.application_id, response)


def _optional_if_match(request: Request) -> int | None:
    value = request.headers.get("If-Match")
    return parse_if_match(value) if value is not None else None


@router.get("/applications/{application_id}", response_model=ApplicationOut)
async def get_application(
    application_id: str, principal: Readers, runtime: Runtime, response: Response
) -> ApplicationOut:
    async with runtime.uow() as uow:
        row = await queries.application_row(uow.session, application_id)
    with problems():
        if row is None:
            raise NotFound("application", application_id)
        check_access(principal, row["owner"])
    _etag(response, row["version"])
    return ApplicationOut.of(row)


@router.post("/applications/{application_id}/decision", response_model=ApplicationOut)
async def decide(
    application_id: str,
    body: DecisionIn,
    principal: Officer,
    expected: IfMatch,
    commands: Handlers,
    runtime: Runtime,
    response: Response,
) -> ApplicationOut:
    """Approve (issues the COPR and, for visa-required nationals, a PR visa) or refuse with reasons."""
    with problems():
        await commands.decide(principal, application_id, body.decision, list(body.reasons), expected)
    return await _application_answer(runtime, application_id, response)


@router.post("/applications/{application_id}/landing", response_model=ApplicationOut)
async def land(
    application_id: str,
    principal: Officer,
    expected: IfMatch,
    commands: Handlers,
    runtime: Runtime,
    response: Response,
) -> ApplicationOut:
    """Record the landing, on or before the COPR's expiry date."""
    with problems():
        await commands.land(principal, application_id, expected)
    return await _application_answer(runtime, application_id, response)


@router.post("/applications/{application_id}/withdraw", response_model=ApplicationOut)
async def withdraw(
    application_id: str,
    principal: Owners,
    expected: IfMatch,
    commands: Handlers,
    runtime: Runtime,
    response: Response,
) -> ApplicationOut:
    """Withdraw the application; allowed until the decision."""
    with problems():
        await commands.withdraw(principal, application_id, expected)
    return await _application_answer(runtime, application_id, response)


@router.post("/applications/{application_id}/copr/extend", status_code=409)
async def extend_copr(application_id: str, principal: Readers, commands: Handlers) -> None:
    """Always refused: a COPR can never be extended (problem+json 409 saying what to do instead)."""
    with problems():
        await commands.extend_copr(principal, application_id)


async def _application_answer(runtime: Any, application_id: str, response: Response) -> ApplicationOut:
    async with runtime.uow() as uow:
        row = await queries.application_row(uow.session, application_id)
    assert row is not None
    _etag(response, row["version"])
    return ApplicationOut.of(row)
