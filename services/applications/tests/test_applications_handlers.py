"""Command handlers and the scheduler pass against a real PostgreSQL (fresh database, real migrations)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import orjson
import pytest
import sqlalchemy as sa
from applications_factories import DEADLINE, INVITED_AT, invited
from applications_infra import AppsDatabase, fresh_apps_database

from applications_service.adapters import queries
from applications_service.adapters.repository import stream_id
from applications_service.adapters.uow import applications_uow
from applications_service.application.errors import NotFound, StaleVersion
from applications_service.application.handlers import ApplicationsHandlers
from applications_service.domain.documents import DocumentsSubmitted, PassportSubmitted
from applications_service.domain.errors import (
    ApplicationIncomplete,
    DeadlinePassed,
    EvidenceExpired,
    TransitionNotAllowed,
)
from applications_service.domain.invitation import State
from applications_service.settings import ApplicationsSettings
from shared.clock import Clock
from shared.db import event_store, outbox
from shared.domain_events import Invited, ProfileUpdated
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE
from shared.testing import SettingsFactory

pytestmark = pytest.mark.infra


@dataclass(frozen=True)
class Caller:
    sub: str
    role: str


OWNER = Caller("partner-1", "partner")
OFFICER = Caller("officer-7", "officer")


@pytest.fixture(scope="module")
async def db(make_settings: SettingsFactory) -> AsyncIterator[AppsDatabase]:
    async with fresh_apps_database(make_settings(ApplicationsSettings, db_pool_size=4)) as database:
        yield database


@pytest.fixture
def clock() -> Clock:
    return Clock.frozen(INVITED_AT + timedelta(days=1))


@pytest.fixture
def handlers(db: AppsDatabase, clock: Clock) -> ApplicationsHandlers:
    return ApplicationsHandlers(applications_uow(db.uow_factory(clock)), clock)


def papers(funds: int | None = 20_000) -> DocumentsSubmitted:
    return DocumentsSubmitted(
        passport=PassportSubmitted("Z1234567", "IN", date(2031, 1, 1)),
        medical_exam_date=date(2026, 3, 1),
        police_certificates=True,
        proof_of_funds_cad=funds,
    )


async def receive(handlers: ApplicationsHandlers, **overrides: object) -> Invited:
    event = invited(**overrides)
    async with handlers.uow() as uow:
        assert await handlers.receive_invitation(uow, event)
        await uow.commit()
    return event


async def outbox_types(db: AppsDatabase, invitation_id: str) -> list[str]:
    async with db.sessions() as session:
        payloads = (await session.execute(sa.select(outbox.c.payload).order_by(outbox.c.id))).scalars()
        bodies = [orjson.loads(p) for p in payloads]
    return [b["type"].split(".")[2] for b in bodies if b["data"].get("invitation_id") == invitation_id]


async def test_an_invitation_is_received_once_and_not_republished(
    db: AppsDatabase, handlers: ApplicationsHandlers
) -> None:
    event = await receive(handlers)
    async with handlers.uow() as uow:
        assert not await handlers.receive_invitation(uow, event)
        row = await queries.invitation_row(uow.session, event.invitation_id)
    assert row is not None and row["state"] == "open" and row["version"] == 1
    assert row["next_due_at"] == DEADLINE - timedelta(days=14)
    assert await outbox_types(db, event.invitation_id) == []


async def test_apply_then_decide_writes_stream_outbox_and_query_table(
    db: AppsDatabase, handlers: ApplicationsHandlers
) -> None:
    event = await receive(handlers)
    applied = await handlers.apply(OWNER, event.invitation_id, papers())
    assert applied.application_id is not None and applied.minimum_funds_cad == 15_263
    decided = await handlers.decide(OFFICER, applied.application_id, "approved", ["ok"], applied.version)
    assert decided.state is State.COPR_ISSUED and decided.version == 6
    assert await outbox_types(db, event.invitation_id) == [
        "Applied",
        "Approved",
        "CoprIssued",
        "PermanentResidentVisaIssued",
    ]
    async with db.sessions() as session:
        types = (
            (
                await session.execute(
                    sa.select(event_store.c.type)
                    .where(event_store.c.stream_id == stream_id(event.invitation_id))
                    .order_by(event_store.c.version)
                )
            )
            .scalars()
            .all()
        )
        row = await queries.application_row(session, applied.application_id)
    assert [t.split(".")[2] for t in types] == [
        "Invited",
        "ApplicationDocumentsRecorded",
        "Applied",
        "Approved",
        "CoprIssued",
        "PermanentResidentVisaIssued",
    ]
    assert row is not None and row["copr_expires_on"] == date(2027, 3, 1) and row["visa_issued"]
    assert row["documents"]["passport_number"] == "Z1234567"


async def test_profile_facts_waive_the_funds_for_a_candidate_with_a_job_offer(
    handlers: ApplicationsHandlers, clock: Clock
) -> None:
    event = await receive(handlers)
    offer = {
        "noc_code": "21231",
        "teer": 1,
        "employer": "Acme",
        "full_time": True,
        "non_seasonal": True,
        "duration_months": None,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    }
    update = ProfileUpdated(
        profile_id=event.profile_id,
        owner=event.owner,
        status="invited",
        eligible_programs=["fsw"],
        document={"family_size": 3, "authorized_to_work_in_canada": True, "job_offer": offer},
        updated_at=clock.now(),
    )
    stale = replace(update, document={"family_size": 3}, updated_at=clock.now() - timedelta(days=1))
    async with handlers.uow() as uow:
        await handlers.record_profile(uow, update)
        await handlers.record_profile(uow, stale)  # older: ignored
        await uow.commit()
    applied = await handlers.apply(OWNER, event.invitation_id, papers(funds=None))
    assert applied.minimum_funds_cad is None and applied.state is State.APPLIED


async def test_an_application_relying_on_an_expired_language_result_is_refused(
    db: AppsDatabase, handlers: ApplicationsHandlers, clock: Clock
) -> None:
    event = await receive(handlers)  # invited on 2026-03-02; the clock files on 2026-03-03
    document = copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)
    document["language_tests"][0]["taken_on"] = "2024-03-03"  # valid on the 2nd, expired on the 3rd
    update = ProfileUpdated(
        profile_id=event.profile_id,
        owner=event.owner,
        status="invited",
        eligible_programs=["fsw"],
        document=document,
        updated_at=clock.now() - timedelta(days=1),
    )
    async with handlers.uow() as uow:
        await handlers.record_profile(uow, update)
        await uow.commit()
    with pytest.raises(EvidenceExpired) as refused:
        await handlers.apply(OWNER, event.invitation_id, papers())
    [problem] = refused.value.problems
    assert problem.field == "profile.language_tests.0"
    assert refused.value.status == 422 and refused.value.errors == [(problem.field, problem.message)]
    assert (
        "IELTS_GENERAL result of 2024-03-03" in problem.message and "expired on 2026-03-03" in problem.message
    )
    async with db.sessions() as session:
        row = await queries.invitation_row(session, event.invitation_id)
    assert row is not None and row["state"] == "open"
    # The same profile with a result still valid on the filing day applies.
    document["language_tests"][0]["taken_on"] = "2024-03-04"
    async with handlers.uow() as uow:
        await handlers.record_profile(uow, replace(update, document=document, updated_at=clock.now()))
        await uow.commit()
    assert (await handlers.apply(OWNER, event.invitation_id, papers())).state is State.APPLIED


async def test_incomplete_application_lists_what_is_missing_and_writes_nothing(
    db: AppsDatabase, handlers: ApplicationsHandlers
) -> None:
    event = await receive(handlers, program="fst")
    with pytest.raises(ApplicationIncomplete) as rejected:
        await handlers.apply(
            OWNER, event.invitation_id, DocumentsSubmitted(medical_exam_date=date(2026, 3, 1))
        )
    assert rejected.value.missing == ["passport", "police_certificates", "proof_of_funds_cad"]
    async with db.sessions() as session:
        row = await queries.invitation_row(session, event.invitation_id)
    assert row is not None and row["state"] == "open" and row["version"] == 1


async def test_ownership_not_found_and_stale_versions(handlers: ApplicationsHandlers) -> None:
    event = await receive(handlers)
    with pytest.raises(NotFound):  # someone else's invitation is not revealed
        await handlers.decline(Caller("someone-else", "candidate"), event.invitation_id, 1)
    with pytest.raises(NotFound):
        await handlers.decline(OWNER, "no-such-invitation", 1)
    with pytest.raises(StaleVersion):
        await handlers.decline(OWNER, event.invitation_id, 7)
    declined = await handlers.decline(OWNER, event.invitation_id, 1)
    assert declined.state is State.DECLINED
    with pytest.raises(TransitionNotAllowed):
        await handlers.apply(OWNER, event.invitation_id, papers())


async def test_concurrent_commands_one_wins_and_the_other_is_told(handlers: ApplicationsHandlers) -> None:
    event = await receive(handlers)
    results = await asyncio.gather(
        handlers.decline(OWNER, event.invitation_id, 1),
        handlers.apply(OWNER, event.invitation_id, papers(), 1),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1 and isinstance(failures[0], StaleVersion | TransitionNotAllowed)


async def test_scheduler_expires_and_reminds_once_across_restarts(db: AppsDatabase, clock: Clock) -> None:
    first = ApplicationsHandlers(applications_uow(db.uow_factory(clock)), clock)
    event = await receive(first)
    clock.set_now(DEADLINE - timedelta(days=13))
    await first.run_due()
    # A new process: nothing in memory.
    restarted = ApplicationsHandlers(applications_uow(db.uow_factory(clock)), clock)
    await restarted.run_due()
    clock.set_now(DEADLINE - timedelta(days=2))
    await restarted.run_due()
    await restarted.run_due()
    with pytest.raises(DeadlinePassed):
        clock.set_now(DEADLINE + timedelta(seconds=1))
        await restarted.apply(OWNER, event.invitation_id, papers())
    await restarted.run_due()
    await ApplicationsHandlers(applications_uow(db.uow_factory(clock)), clock).run_due()
    assert await outbox_types(db, event.invitation_id) == [
        "InvitationDeadlineApproaching",
        "InvitationDeadlineApproaching",
        "InvitationExpired",
    ]
    async with db.sessions() as session:
        row = await queries.invitation_row(session, event.invitation_id)
    assert row is not None and row["state"] == "expired" and row["next_due_at"] is None
    assert row["deadline_reminders"] == [14, 3]


async def test_scheduler_pages_through_many_due_invitations(db: AppsDatabase, clock: Clock) -> None:
    handlers = ApplicationsHandlers(applications_uow(db.uow_factory(clock)), clock)
    events = [await receive(handlers) for _ in range(7)]
    clock.set_now(DEADLINE + timedelta(days=1))
    await handlers.run_due(batch=3)
    async with handlers.uow() as uow:
        states = {(await uow.invitations.get(e.invitation_id)).state for e in events}  # type: ignore[union-attr]
    assert states == {State.EXPIRED}
