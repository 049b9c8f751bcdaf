"""Builders shared by the applications service's tests (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from applications_service.domain.documents import Documents
from applications_service.domain.invitation import Invitation, State
from shared.domain_events import Invited

INVITED_AT = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
DEADLINE = INVITED_AT + timedelta(days=60)


def invited(**overrides: Any) -> Invited:
    fields: dict[str, Any] = {
        "profile_id": f"p-{uuid.uuid4()}",
        "owner": "partner-1",
        "invitation_id": str(uuid.uuid4()),
        "round_id": "r-1",
        "round_number": 444,
        "program": "fsw",
        "crs": 512,
        "citizenship": "IN",
        "invited_at": INVITED_AT,
        "deadline": DEADLINE,
    }
    fields.update(overrides)
    return Invited(**fields)


def documents(
    country: str = "IN",
    exam: date = date(2026, 3, 10),
    passport_expiry: date = date(2031, 1, 1),
    funds: int | None = 20_000,
) -> Documents:
    return Documents(
        passport_number="Z1234567",
        passport_country=country,
        passport_expiry=passport_expiry,
        medical_exam_date=exam,
        police_certificates=True,
        proof_of_funds_cad=funds,
    )


APPLIED_AT = INVITED_AT + timedelta(days=20)
DECIDED_AT = APPLIED_AT + timedelta(days=100)


def invitation_in(state: State, country: str = "IN") -> Invitation:
    """An invitation brought to `state` through its commands (pending events cleared)."""
    invitation = Invitation.receive(invited())
    if state is State.DECLINED:
        invitation.decline(APPLIED_AT)
    elif state is State.EXPIRED:
        invitation.tick(DEADLINE + timedelta(seconds=1))
    elif state is not State.OPEN:
        invitation.apply(str(uuid.uuid4()), documents(country), 15_263, APPLIED_AT)
        _decide_towards(invitation, state)
    invitation.pending.clear()
    assert invitation.state is state
    return invitation


def _decide_towards(invitation: Invitation, state: State) -> None:
    if state is State.WITHDRAWN:
        invitation.withdraw(DECIDED_AT)
    elif state is State.REFUSED:
        invitation.decide("refused", ["insufficient evidence of work experience"], DECIDED_AT)
    elif state in (State.COPR_ISSUED, State.LANDED, State.COPR_EXPIRED):
        invitation.decide("approved", [], DECIDED_AT)
        if state is State.LANDED:
            invitation.land(DECIDED_AT + timedelta(days=30))
        elif state is State.COPR_EXPIRED:
            invitation.tick(datetime(2027, 3, 11, tzinfo=UTC))
