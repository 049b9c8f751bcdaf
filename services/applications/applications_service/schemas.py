"""Request and response bodies of the applications API (pydantic), built from query-table rows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from applications_service.domain.documents import DocumentsSubmitted, PassportSubmitted
from applications_service.domain.invitation import DECIDED_STATES, State
from applications_service.domain.standard import AtRisk, ServiceStandardStats
from shared.bounds import MAX_AMOUNT_CAD

Row = dict[str, Any]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ----------------------------------------------------------------------------------------


class PassportIn(_In):
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] | None = (
        None
    )
    country: CountryCode | None = Field(default=None, description="ISO 3166-1 alpha-2 issuing country")
    expiry: date | None = None


class ApplicationIn(_In):
    """The e-APR. Every field but `invitation_id` may be left out: the answer lists what is missing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "invitation_id": "5f0c6f1e-2d7a-4a8e-9b1f-3c2d1e0f9a8b",
                    "passport": {"number": "Z1234567", "country": "IN", "expiry": "2031-01-01"},
                    "medical_exam_date": "2026-03-10",
                    "police_certificates": True,
                    "proof_of_funds_cad": 19001,
                }
            ]
        }
    )

    invitation_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    passport: PassportIn | None = None
    medical_exam_date: date | None = None
    police_certificates: bool | None = None
    proof_of_funds_cad: Annotated[int, Field(ge=0, le=MAX_AMOUNT_CAD)] | None = Field(
        default=None,
        description="Whole CAD; required unless CEC, or authorized to work with a valid job offer",
    )

    def documents(self) -> DocumentsSubmitted:
        passport = self.passport
        return DocumentsSubmitted(
            passport=PassportSubmitted(passport.number, passport.country, passport.expiry)
            if passport
            else None,
            medical_exam_date=self.medical_exam_date,
            police_certificates=self.police_certificates,
            proof_of_funds_cad=self.proof_of_funds_cad,
        )


class DecisionIn(_In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"decision": "refused", "reasons": ["Work experience not shown."]}]}
    )

    decision: Literal["approved", "refused"]
    reasons: list[Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]] = Field(
        default_factory=list, max_length=50, description="At least one for a refusal"
    )


# --- responses ---------------------------------------------------------------------------------------


class InvitationOut(BaseModel):
    invitation_id: str
    profile_id: str
    owner: str
    round_id: str
    round_number: int
    program: str
    crs: int
    citizenship: str
    invited_at: datetime
    deadline: datetime = Field(description="Applications are on time up to and including this instant")
    state: str
    application_id: str | None
    reminders_sent: list[int] = Field(description="Days before the deadline of the reminders sent")
    version: int

    @classmethod
    def of(cls, row: Row) -> InvitationOut:
        return cls(
            **{k: row[k] for k in _INVITATION_FIELDS},
            reminders_sent=list(row["deadline_reminders"]),
        )


_INVITATION_FIELDS = (
    "invitation_id",
    "profile_id",
    "owner",
    "round_id",
    "round_number",
    "program",
    "crs",
    "citizenship",
    "invited_at",
    "deadline",
    "state",
    "application_id",
    "version",
)


class DocumentsOut(BaseModel):
    passport_number: str
    passport_country: str
    passport_expiry: date
    medical_exam_date: date
    police_certificates: bool
    proof_of_funds_cad: int | None


class CoprOut(BaseModel):
    number: str
    expires_on: date = Field(description="Land on or before this date; a COPR cannot be extended")
    reminders_sent: list[int]


class VisaOut(BaseModel):
    country: str
    expires_on: date


class ApplicationOut(BaseModel):
    application_id: str
    invitation_id: str
    profile_id: str
    owner: str
    program: str
    state: str
    applied_at: datetime
    decision: Literal["approved", "refused"] | None
    decided_at: datetime | None
    reasons: list[str]
    documents: DocumentsOut
    minimum_funds_cad: int | None = Field(description="Settlement funds required; null when not required")
    copr: CoprOut | None
    permanent_resident_visa: VisaOut | None
    withdrawn_at: datetime | None
    landed_at: datetime | None
    version: int

    @classmethod
    def of(cls, row: Row) -> ApplicationOut:
        state = State(row["state"])
        documents = DocumentsOut.model_validate(row["documents"])
        return cls(
            **{k: row[k] for k in _APPLICATION_FIELDS},
            decision=_decision(state),
            documents=documents,
            copr=_copr(row),
            permanent_resident_visa=VisaOut(country=row["citizenship"], expires_on=row["copr_expires_on"])
            if row["visa_issued"]
            else None,
            withdrawn_at=row["closed_at"] if state is State.WITHDRAWN else None,
            landed_at=row["closed_at"] if state is State.LANDED else None,
        )


_APPLICATION_FIELDS = (
    "application_id",
    "invitation_id",
    "profile_id",
    "owner",
    "program",
    "state",
    "applied_at",
    "decided_at",
    "reasons",
    "minimum_funds_cad",
    "version",
)


def _decision(state: State) -> Literal["approved", "refused"] | None:
    if state is State.REFUSED:
        return "refused"
    return "approved" if state in DECIDED_STATES else None


def _copr(row: Row) -> CoprOut | None:
    if row["copr_number"] is None:
        return None
    return CoprOut(
        number=row["copr_number"],
        expires_on=row["copr_expires_on"],
        reminders_sent=list(row["copr_reminders"]),
    )


class StatsOut(BaseModel):
    counts_by_state: dict[str, int]
    decided: int
    median_days_to_decision: float | None
    p80_days_to_decision: float | None = Field(description="Nearest-rank 80th percentile, Applied → decision")
    decided_within_standard: int
    share_within_standard: float | None = Field(description="Decided within 6 months / decided")
    standard_met: bool | None = Field(description="At least 80% decided within 6 months (IRCC's standard)")

    @classmethod
    def of(cls, stats: ServiceStandardStats) -> StatsOut:
        return cls.model_validate(stats, from_attributes=True)


class AtRiskOut(BaseModel):
    application_id: str
    invitation_id: str
    profile_id: str
    applied_at: datetime
    standard_due: datetime = Field(description="Decide by this instant to meet the 6-month standard")
    days_left: float
    already_missed: bool

    @classmethod
    def of(cls, item: AtRisk) -> AtRiskOut:
        application = item.application
        return cls(
            application_id=application.application_id,
            invitation_id=application.invitation_id,
            profile_id=application.profile_id,
            applied_at=application.applied_at,
            standard_due=item.standard_due,
            days_left=item.days_left,
            already_missed=item.already_missed,
        )
