"""The applications API (thin: parse, authorise by role, call a handler, shape the answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from applications_service.adapters import queries
from applications_service.adapters.repository import projection_row
from applications_service.application.errors import Forbidden, NotFound, StaleVersion
from applications_service.application.handlers import ApplicationsHandlers, Kind, check_access
from applications_service.domain.errors import (
    ApplicationIncomplete,
    CoprCannotBeExtended,
    DeadlinePassed,
    DomainError,
    TransitionNotAllowed,
)
from applications_service.domain.invitation import InvalidCommand, Invitation
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
from shared.idempotency import IdempotencyKey, IdempotencyKeys, request_fingerprint
from shared.problem import PROBLEM_TYPE_BASE, Problem
from shared.uow import UnitOfWork
from shared.web import IfMatch, etag_header, get_runtime, parse_if_match

router = APIRouter(prefix="/v1", tags=["applications"])

Readers = Annotated[Principal, Depends(require_roles("candidate", "partner", "officer", "ops"))]
Owners = Annotated[Principal, Depends(require_roles("candidate", "partner"))]
Officer = Annotated[Principal, Depends(require_roles("officer"))]
Ops = Annotated[Principal, Depends(require_roles("ops"))]
Runtime = Annotated[Any, Depends(get_runtime)]


async def handlers(runtime: Runtime) -> ApplicationsHandlers:
    return ApplicationsHandlers(runtime.uow, runtime.clock)


Handlers = Annotated[ApplicationsHandlers, Depends(handlers)]
Row = dict[str, Any]


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


async def _visible_row(
    runtime: Any,
    principal: Principal,
    response: Response,
    what: Kind,
    identifier: str,
    fetch: Callable[[AsyncSession, str], Awaitable[Row | None]],
) -> Row:
    """The row `fetch` finds, if the caller may see it (404/403 otherwise), its ETag on `response`."""
    async with runtime.uow() as uow:
        row = await fetch(uow.session, identifier)
    with problems():
        if row is None:
            raise NotFound(what, identifier)
        check_access(principal, row["owner"])
    response.headers["ETag"] = etag_header(row["version"])
    return row


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
    row = await _visible_row(
        runtime, principal, response, "invitation", invitation_id, queries.invitation_row
    )
    return InvitationOut.of(row)


@router.post("/invitations/{invitation_id}/decline", response_model=InvitationOut)
async def decline(
    invitation_id: str,
    principal: Owners,
    expected: IfMatch,
    key: IdempotencyKey,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Decline the invitation (up to its deadline): the profile returns to the pool if still eligible."""
    return await run_command(
        Command(request, runtime, principal, key, "decline", InvitationOut.of),
        lambda handlers: handlers.decline(principal, invitation_id, expected),
    )


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
    body: ApplicationIn, principal: Owners, key: IdempotencyKey, runtime: Runtime, request: Request
) -> Response:
    """Apply under an open invitation, at or before its deadline. `If-Match` (the invitation's ETag) is
    optional here; an incomplete application is a 422 listing what is missing."""
    expected = _optional_if_match(request)
    command = Command(
        request, runtime, principal, key, "apply", _application_of, 201, body.model_dump(mode="json")
    )
    return await run_command(
        command, lambda handlers: handlers.apply(principal, body.invitation_id, body.documents(), expected)
    )


def _optional_if_match(request: Request) -> int | None:
    value = request.headers.get("If-Match")
    return parse_if_match(value) if value is not None else None


@router.get("/applications/{application_id}", response_model=ApplicationOut)
async def get_application(
    application_id: str, principal: Readers, runtime: Runtime, response: Response
) -> ApplicationOut:
    row = await _visible_row(
        runtime, principal, response, "application", application_id, queries.application_row
    )
    return ApplicationOut.of(row)


@router.post("/applications/{application_id}/decision", response_model=ApplicationOut)
async def decide(
    application_id: str,
    body: DecisionIn,
    principal: Officer,
    expected: IfMatch,
    key: IdempotencyKey,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Approve (issues the COPR and, for visa-required nationals, a PR visa) or refuse with reasons."""
    command = Command(
        request, runtime, principal, key, "decide", _application_of, 200, body.model_dump(mode="json")
    )
    reasons = list(body.reasons)
    return await run_command(
        command, lambda handlers: handlers.decide(principal, application_id, body.decision, reasons, expected)
    )


@router.post("/applications/{application_id}/landing", response_model=ApplicationOut)
async def land(
    application_id: str,
    principal: Officer,
    expected: IfMatch,
    key: IdempotencyKey,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Record the landing, on or before the COPR's expiry date."""
    return await run_command(
        Command(request, runtime, principal, key, "land", _application_of),
        lambda handlers: handlers.land(principal, application_id, expected),
    )


@router.post("/applications/{application_id}/withdraw", response_model=ApplicationOut)
async def withdraw(
    application_id: str,
    principal: Owners,
    expected: IfMatch,
    key: IdempotencyKey,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Withdraw the application; allowed until the decision."""
    return await run_command(
        Command(request, runtime, principal, key, "withdraw", _application_of),
        lambda handlers: handlers.withdraw(principal, application_id, expected),
    )


@router.post("/applications/{application_id}/copr/extend", status_code=409)
async def extend_copr(application_id: str, principal: Readers, commands: Handlers) -> None:
    """Always refused: a COPR can never be extended (problem+json 409 saying what to do instead)."""
    with problems():
        await commands.extend_copr(principal, application_id)


def _application_of(row: Row) -> ApplicationOut:
    return ApplicationOut.of(row)


# --- commands: Idempotency-Key, ETag, and the answer built in the command's transaction --------------


@dataclass(frozen=True)
class Command:
    request: Request
    runtime: Any
    principal: Principal
    key: str | None
    scope: str
    shape: Callable[[Row], BaseModel]
    status: int = 200
    body: Any = None


async def run_command(
    command: Command, run: Callable[[ApplicationsHandlers], Awaitable[Invitation]]
) -> Response:
    """Run a command once per Idempotency-Key; answer with the saved aggregate's view and its ETag."""
    keys = IdempotencyKeys(f"applications.{command.scope}")
    fingerprint = request_fingerprint(command.request.method, command.request.url.path, command.body)
    caller = command.principal.sub
    if command.key is not None:
        async with command.runtime.uow() as uow:
            stored = await keys.lookup(uow.session, command.key, fingerprint, caller=caller)
        if stored is not None:
            return stored.to_response(headers=_answer_headers(stored.body))
    answers: list[dict[str, Any]] = []

    async def on_saved(uow: UnitOfWork, invitation: Invitation) -> None:
        answer = command.shape(projection_row(invitation, command.runtime.clock.now())).model_dump(
            mode="json"
        )
        answers.append(answer)
        if command.key is not None:
            await keys.save(uow.session, command.key, fingerprint, command.status, answer, caller=caller)

    with problems():
        await run(ApplicationsHandlers(command.runtime.uow, command.runtime.clock, on_saved))
    return JSONResponse(answers[-1], status_code=command.status, headers=_answer_headers(answers[-1]))


def _answer_headers(body: dict[str, Any]) -> dict[str, str]:
    headers = {"ETag": etag_header(int(body["version"]))}
    if "applied_at" in body:
        headers["Location"] = f"/v1/applications/{body['application_id']}"
    return headers
