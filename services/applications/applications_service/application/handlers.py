"""Command handlers: each loads one invitation aggregate, runs one domain command and saves it, all in
one unit of work (event store + outbox + query table commit together).

Ownership is checked here: a candidate or partner acts only on invitations whose `owner` is their
`sub`; officers and ops are let through by role (the API restricts which roles reach each command).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal, Protocol

from applications_service.application.errors import StaleVersion, not_found
from applications_service.application.ports import UnitOfWork, UowFactory
from applications_service.domain.calendar import utc_date
from applications_service.domain.documents import (
    DocumentsSubmitted,
    ProfileFacts,
    check_documents,
    check_evidence,
    required_funds,
)
from applications_service.domain.invitation import Decision, Invitation
from shared.domain_events import Invited, PersonalDataErased, ProfileSubmitted, ProfileUpdated
from shared.eventstore import ConcurrencyError

OWNER_ROLES = frozenset({"candidate", "partner"})
RETRIES = 3
SCHEDULER_BATCH = 200

Action = Callable[[Invitation, datetime], None]
OnSaved = Callable[[UnitOfWork, Invitation], Awaitable[None]]
"""Runs in the command's transaction after the save, before the commit (e.g. to record an
Idempotency-Key with the response built from the saved aggregate)."""
Kind = Literal["invitation", "application"]


class Actor(Protocol):
    """Who is calling (`shared.auth.Principal` fits)."""

    @property
    def sub(self) -> str: ...

    @property
    def role(self) -> str: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


def check_access(actor: Actor, owner: str, what: Kind, identifier: str) -> None:
    """Candidates and partners see and act on their own invitations only: someone else's is "not
    found" (404), as in every service, so that ids do not leak."""
    if actor.role in OWNER_ROLES and actor.sub != owner:
        raise not_found(what, identifier)


class ApplicationsHandlers:
    def __init__(self, uow_factory: UowFactory, clock: Clock, on_saved: OnSaved | None = None) -> None:
        self.uow = uow_factory
        self.clock = clock
        self.on_saved = on_saved

    # --- from Kafka -------------------------------------------------------------------------------

    async def receive_invitation(self, uow: UnitOfWork, invited: Invited) -> bool:
        """Open the invitation's stream; a second Invited for the same invitation changes nothing."""
        if await uow.invitations.exists(invited.invitation_id):
            return False
        await uow.invitations.save(Invitation.receive(invited))
        return True

    async def record_profile(self, uow: UnitOfWork, event: ProfileUpdated | ProfileSubmitted) -> None:
        as_of = event.updated_at if isinstance(event, ProfileUpdated) else event.submitted_at
        facts = ProfileFacts.from_document(event.document, event.eligible_programs)
        await uow.profile_facts.upsert(event.profile_id, event.owner, facts, as_of)

    async def forget_person(self, uow: UnitOfWork, event: PersonalDataErased) -> None:
        """docs/PRIVACY.md: the person's profile facts go; invitations and decisions stay (audited)."""
        await uow.profile_facts.forget(event.profile_id)

    # --- commands ---------------------------------------------------------------------------------

    async def decline(self, actor: Actor, invitation_id: str, expected_version: int | None) -> Invitation:
        return await self._execute(
            actor, "invitation", invitation_id, lambda i, now: i.decline(now), expected_version
        )

    async def apply(
        self,
        actor: Actor,
        invitation_id: str,
        submitted: DocumentsSubmitted,
        expected_version: int | None = None,
    ) -> Invitation:
        application_id = str(uuid.uuid4())
        for attempt in range(RETRIES):
            async with self.uow() as uow:
                invitation = await self._load(uow, actor, "invitation", invitation_id, expected_version)
                now = self.clock.now()
                invitation.check_can_apply(now)
                facts = await uow.profile_facts.get(invitation.profile_id)
                minimum = required_funds(invitation.program, facts, utc_date(now))
                check_evidence(facts, utc_date(invitation.invited.invited_at), utc_date(now))
                invitation.apply(
                    application_id, check_documents(submitted, minimum, utc_date(now)), minimum, now
                )
                if await self._save(uow, invitation, expected_version, last=attempt == RETRIES - 1):
                    return invitation
        raise AssertionError("unreachable")  # pragma: no cover

    async def withdraw(self, actor: Actor, application_id: str, expected_version: int | None) -> Invitation:
        return await self._execute(
            actor, "application", application_id, lambda i, now: i.withdraw(now), expected_version
        )

    async def decide(
        self,
        actor: Actor,
        application_id: str,
        decision: Decision,
        reasons: list[str],
        expected_version: int | None,
    ) -> Invitation:
        return await self._execute(
            actor,
            "application",
            application_id,
            lambda i, now: i.decide(decision, reasons, now),
            expected_version,
        )

    async def land(self, actor: Actor, application_id: str, expected_version: int | None) -> Invitation:
        return await self._execute(
            actor, "application", application_id, lambda i, now: i.land(now), expected_version
        )

    async def extend_copr(self, actor: Actor, application_id: str) -> None:
        """Always refused (domain error) once the application is found and visible to the caller."""
        async with self.uow() as uow:
            invitation = await self._load(uow, actor, "application", application_id, None)
            invitation.extend_copr()

    # --- the clock ------------------------------------------------------------------------------

    async def run_due(self, batch: int = SCHEDULER_BATCH) -> int:
        """Expire invitations and COPRs and send reminders that are due now; returns events emitted."""
        now = self.clock.now()
        emitted, after = 0, ""
        while True:
            async with self.uow() as uow:
                ids = await uow.invitations.due(now, batch, after)
                emitted += await self._tick_all(uow, ids, now)
                await uow.commit()
            if len(ids) < batch:
                return emitted
            after = ids[-1]

    async def _tick_all(self, uow: UnitOfWork, ids: list[str], now: datetime) -> int:
        emitted = 0
        for invitation_id in ids:
            invitation = await uow.invitations.get(invitation_id)
            if invitation is None:
                continue
            new = invitation.tick(now)
            try:
                await uow.invitations.save(invitation)
            except ConcurrencyError:
                continue  # another instance or a command got there first; the next run re-checks
            emitted += len(new)
        return emitted

    # --- plumbing ---------------------------------------------------------------------------------

    async def _execute(
        self, actor: Actor, what: Kind, identifier: str, action: Action, expected_version: int | None
    ) -> Invitation:
        for attempt in range(RETRIES):
            async with self.uow() as uow:
                invitation = await self._load(uow, actor, what, identifier, expected_version)
                action(invitation, self.clock.now())
                if await self._save(uow, invitation, expected_version, last=attempt == RETRIES - 1):
                    return invitation
        raise AssertionError("unreachable")  # pragma: no cover

    async def _load(
        self, uow: UnitOfWork, actor: Actor, what: Kind, identifier: str, expected_version: int | None
    ) -> Invitation:
        invitation_id: str | None = identifier
        if what == "application":
            invitation_id = await uow.invitations.invitation_of_application(identifier)
        invitation = await uow.invitations.get(invitation_id) if invitation_id else None
        if invitation is None:
            raise not_found(what, identifier)
        check_access(actor, invitation.owner, what, identifier)
        if expected_version is not None and expected_version != invitation.version:
            raise StaleVersion(expected_version, invitation.version, what=what)
        return invitation

    async def _save(
        self, uow: UnitOfWork, invitation: Invitation, expected_version: int | None, last: bool
    ) -> bool:
        """Save and commit; False when a concurrent writer won and the command may be retried."""
        try:
            await uow.invitations.save(invitation)
        except ConcurrencyError:
            if expected_version is not None:
                raise StaleVersion(expected_version, None, what="invitation") from None
            if last:
                raise
            return False
        if self.on_saved is not None:
            await self.on_saved(uow, invitation)
        await uow.commit()
        return True
