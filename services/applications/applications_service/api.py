"""The applications API (thin: parse, authorise by role, call a handler, shape the answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from applications_service.adapters import queries
from applications_service.adapters.repository import projection_row
from applications_service.adapters.uow import applications_uow
from applications_service.application.errors import not_found
from applications_service.application.handlers import ApplicationsHandlers, Kind, check_access
from applications_service.application.ports import UnitOfWork as ApplicationsUow
from applications_service.domain.invitation import Invitation
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
from shared.errors import NotFound
from shared.idempotency import IdempotencyKey
from shared.web import IfMatch, etag_header, get_runtime
from shared.web.commands import IdempotentCommand, Recorder
from shared.web.openapi import links

router = APIRouter(prefix="/v1", tags=["applications"])

Readers = Annotated[Principal, Depends(require_roles("candidate", "partner", "officer", "ops"))]
Owners = Annotated[Principal, Depends(require_roles("candidate", "partner"))]
Officer = Annotated[Principal, Depends(require_roles("officer"))]
Ops = Annotated[Principal, Depends(require_roles("ops"))]
OfficerOrOps = Annotated[Principal, Depends(require_roles("officer", "ops"))]
Runtime = Annotated[Any, Depends(get_runtime)]


async def handlers(runtime: Runtime) -> ApplicationsHandlers:
    return ApplicationsHandlers(applications_uow(runtime.uow), runtime.clock)


Handlers = Annotated[ApplicationsHandlers, Depends(handlers)]
Row = dict[str, Any]


@dataclass(frozen=True)
class CommandCall:
    """What every command endpoint takes besides its caller, path and body: the `If-Match` version,
    the `Idempotency-Key`, the runtime and the request."""

    expected: int
    key: str | None
    runtime: Any
    request: Request

    def command(self, scope: str, principal: Principal, **options: Any) -> IdempotentCommand:
        """The request as a command of `scope` by `principal` (options: `IdempotentCommand`'s)."""
        return IdempotentCommand(scope, self.key, self.request, principal.sub, **options)

    async def run(
        self,
        command: IdempotentCommand,
        shape: Callable[[Row], Any],
        act: Callable[[ApplicationsHandlers], Awaitable[Invitation]],
    ) -> Response:
        """`run_command` on this request's runtime."""
        return await run_command(command, self.runtime, shape, act)


async def command_call(
    expected: IfMatch, key: IdempotencyKey, runtime: Runtime, request: Request
) -> CommandCall:
    return CommandCall(expected, key, runtime, request)


Call = Annotated[CommandCall, Depends(command_call)]


def _application_links(application_id: str) -> dict[str, Any]:
    """What can follow an answer about an application (OpenAPI links: the ETag goes along as If-Match)."""
    command = {"application_id": application_id, "header.If-Match": "$response.header.ETag"}
    return links(
        GetApplication=("get_application", {"application_id": application_id}),
        DecideApplication=("decide_application", command),
        Land=("land", command),
        WithdrawApplication=("withdraw_application", command),
    )


# --- reads ------------------------------------------------------------------------------------------


async def _visible_row(
    runtime: Any,
    principal: Principal,
    response: Response,
    what: Kind,
    identifier: str,
    fetch: Callable[[AsyncSession, str], Awaitable[Row | None]],
) -> Row:
    """The row `fetch` finds, if the caller may see it (404 otherwise), its ETag on `response`."""
    async with runtime.uow() as uow:
        row = await fetch(uow.session, identifier)
    if row is None:
        raise not_found(what, identifier)
    check_access(principal, row["owner"], what, identifier)
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
        raise NotFound(f"There are no invitations of profile {profile_id} among yours; check the id.")
    return [InvitationOut.of(row) for row in visible]


@router.get(
    "/invitations/{invitation_id}",
    response_model=InvitationOut,
    operation_id="get_invitation",
    responses={
        200: {
            "description": "The invitation; its `ETag` is the version to send as If-Match.",
            "links": links(
                DeclineInvitation=(
                    "decline_invitation",
                    {
                        "invitation_id": "$request.path.invitation_id",
                        "header.If-Match": "$response.header.ETag",
                    },
                )
            ),
        }
    },
)
async def get_invitation(
    invitation_id: str, principal: Readers, runtime: Runtime, response: Response
) -> InvitationOut:
    row = await _visible_row(
        runtime, principal, response, "invitation", invitation_id, queries.invitation_row
    )
    return InvitationOut.of(row)


@router.post(
    "/invitations/{invitation_id}/decline", response_model=InvitationOut, operation_id="decline_invitation"
)
async def decline(
    invitation_id: str,
    principal: Owners,
    call: Call,
) -> Response:
    """Decline the invitation (up to its deadline): the profile returns to the pool if still eligible."""
    return await call.run(
        call.command("applications.decline", principal), InvitationOut.of,
        lambda handlers: handlers.decline(principal, invitation_id, call.expected),
    )  # fmt: skip


# --- applications ------------------------------------------------------------------------------------


@router.get("/applications/stats", response_model=StatsOut)
async def stats(principal: Ops, runtime: Runtime) -> StatsOut:
    """Counts by state and the six-month service standard: median and 80th-percentile days to decision."""
    async with runtime.uow() as uow:
        counts = await queries.counts_by_state(uow.session)
        decided = await queries.decisions(uow.session)
    return StatsOut.of(service_standard_stats(counts, decided))


@router.get("/applications/at-risk", response_model=list[AtRiskOut])
async def applications_at_risk(principal: OfficerOrOps, runtime: Runtime) -> list[AtRiskOut]:
    """Open applications that miss the six-month standard unless decided within 30 days, oldest first
    (officers work the queue; operations watch it on the console)."""
    now = runtime.clock.now()
    async with runtime.uow() as uow:
        candidates = await queries.open_applications_near_standard(uow.session, now)
    return [AtRiskOut.of(item) for item in at_risk(candidates, now)]


@router.post(
    "/applications",
    response_model=ApplicationOut,
    status_code=201,
    operation_id="apply",
    responses={
        201: {
            "description": "Applied; `Location` and `ETag` are set.",
            "links": _application_links("$response.body#/application_id"),
        }
    },
)
async def apply(
    body: ApplicationIn,
    principal: Owners,
    call: Call,
) -> Response:
    """Apply under an open invitation, at or before its deadline, with `If-Match` set to the
    invitation's ETag; an incomplete application is a 422 listing what is missing."""
    command = call.command("applications.apply", principal, body=body, status=201, location=_location)
    return await call.run(
        command, ApplicationOut.of,
        lambda handlers: handlers.apply(principal, body.invitation_id, body.documents(), call.expected),
    )  # fmt: skip


@router.get(
    "/applications/{application_id}",
    response_model=ApplicationOut,
    operation_id="get_application",
    responses={
        200: {
            "description": "The application; its `ETag` is the version to send as If-Match.",
            "links": _application_links("$request.path.application_id"),
        }
    },
)
async def get_application(
    application_id: str, principal: Readers, runtime: Runtime, response: Response
) -> ApplicationOut:
    row = await _visible_row(
        runtime, principal, response, "application", application_id, queries.application_row
    )
    return ApplicationOut.of(row)


@router.post(
    "/applications/{application_id}/decision",
    response_model=ApplicationOut,
    operation_id="decide_application",
)
async def decide(
    application_id: str,
    body: DecisionIn,
    principal: Officer,
    call: Call,
) -> Response:
    """Approve (issues the COPR and, for visa-required nationals, a PR visa) or refuse with reasons."""
    command = call.command("applications.decide", principal, body=body)
    reasons = list(body.reasons)
    return await call.run(
        command, ApplicationOut.of,
        lambda handlers: handlers.decide(principal, application_id, body.decision, reasons, call.expected),
    )  # fmt: skip


@router.post("/applications/{application_id}/landing", response_model=ApplicationOut, operation_id="land")
async def land(
    application_id: str,
    principal: Officer,
    call: Call,
) -> Response:
    """Record the landing, on or before the COPR's expiry date."""
    return await call.run(
        call.command("applications.land", principal), ApplicationOut.of,
        lambda handlers: handlers.land(principal, application_id, call.expected),
    )  # fmt: skip


@router.post(
    "/applications/{application_id}/withdraw",
    response_model=ApplicationOut,
    operation_id="withdraw_application",
)
async def withdraw(
    application_id: str,
    principal: Owners,
    call: Call,
) -> Response:
    """Withdraw the application; allowed until the decision."""
    return await call.run(
        call.command("applications.withdraw", principal), ApplicationOut.of,
        lambda handlers: handlers.withdraw(principal, application_id, call.expected),
    )  # fmt: skip


@router.post("/applications/{application_id}/copr/extend", status_code=409)
async def extend_copr(application_id: str, principal: Readers, commands: Handlers) -> None:
    """Always refused: a COPR can never be extended (problem+json 409 saying what to do instead)."""
    await commands.extend_copr(principal, application_id)


# --- commands: Idempotency-Key, ETag, and the answer built in the command's transaction --------------


def _location(answer: dict[str, Any]) -> str | None:
    return f"/v1/applications/{answer['application_id']}" if "applied_at" in answer else None


async def run_command(
    command: IdempotentCommand,
    runtime: Any,
    shape: Callable[[Row], Any],
    run: Callable[[ApplicationsHandlers], Awaitable[Invitation]],
) -> Response:
    """Run a command once per Idempotency-Key; answer with the saved aggregate's view and its ETag.

    The handlers open their own transactions (and retry a lost race), so the key is recorded by their
    `on_saved` hook, in the transaction that saves the aggregate.
    """

    def handlers(record: Recorder) -> ApplicationsHandlers:
        async def on_saved(uow: ApplicationsUow, invitation: Invitation) -> None:
            await record(uow.session, shape(projection_row(invitation, runtime.clock.now())))

        return ApplicationsHandlers(applications_uow(runtime.uow), runtime.clock, on_saved)

    return await command.run_in_handler(runtime.uow, lambda record: run(handlers(record)))
