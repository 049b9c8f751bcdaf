"""The HTTP shapes of the profile API (with OpenAPI examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from profile_service.adapters.queries import ProfileRow
from profile_service.domain import rules
from profile_service.domain.profile import Profile
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE, ProfileDocument
from shared.rules.eligibility import ProgramAssessment

STATUS_DESCRIPTION = (
    "draft, in_pool, removed_from_pool (eligible for no program; update and submit again), withdrawn, "
    "expired, invited (locked by an open invitation), applied (locked), invitation_expired"
)
_TIMES = {"created_at": "2025-06-01T09:30:00Z", "updated_at": "2025-06-02T10:00:00Z"}
_EXAMPLE_ID = "6f1c2a8e-2d4b-4c7e-9a51-0b3e7d1f4c22"
_SUMMARY_EXAMPLE: dict[str, Any] = {
    "id": _EXAMPLE_ID,
    "owner": "partner-acme",
    "status": "in_pool",
    "version": 3,
    "eligible_programs": ["fsw"],
    "submitted_at": "2025-06-02T10:00:00Z",
    "expires_at": "2026-06-02T10:00:00Z",
    "nomination": None,
    **_TIMES,
}


class NominationView(BaseModel):
    province: str = Field(examples=["ON"])
    nominated_at: datetime


class ProfileSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SUMMARY_EXAMPLE]})

    id: str
    owner: str = Field(description="`sub` of the candidate or partner that created the profile")
    status: str = Field(description=STATUS_DESCRIPTION)
    version: int = Field(description="Also the ETag; send it as If-Match to change the profile")
    eligible_programs: list[str] = Field(description="fsw, cec, fst as of the last change")
    submitted_at: datetime | None = Field(description="First submission; never changed by edits")
    expires_at: datetime | None = Field(description="12 months after submitted_at")
    nomination: NominationView | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of_row(cls, row: ProfileRow) -> ProfileSummary:
        nomination = None
        if row.nomination_province is not None and row.nominated_at is not None:
            nomination = NominationView(province=row.nomination_province, nominated_at=row.nominated_at)
        return cls(
            id=row.profile_id,
            owner=row.owner,
            status=row.status,
            version=row.version,
            eligible_programs=row.eligible_programs,
            submitted_at=row.submitted_at,
            expires_at=row.expires_at,
            nomination=nomination,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ProfileView(ProfileSummary):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_SUMMARY_EXAMPLE, "document": PROFILE_DOCUMENT_EXAMPLE}]}
    )

    document: ProfileDocument

    @classmethod
    def of(cls, profile: Profile) -> ProfileView:
        nomination = profile.nomination
        return cls(
            id=profile.profile_id,
            owner=profile.owner,
            status=profile.status.value,
            version=profile.version,
            eligible_programs=profile.eligible_programs,
            submitted_at=profile.submitted_at,
            expires_at=profile.expires_at,
            nomination=NominationView(province=nomination.province, nominated_at=nomination.nominated_at)
            if nomination
            else None,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
            document=rules.parse(profile.document),  # the model the command already validated
        )


T = TypeVar("T")


class PageOf(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="How many there are in all")
    limit: int
    offset: int


class ProgramEligibility(BaseModel):
    eligible: bool
    reasons: list[str] = Field(description="Every unmet requirement; empty when eligible")
    points: int | None = Field(description="The FSW 67-point selection grid total; null for CEC and FSTP")

    @classmethod
    def of(cls, assessment: ProgramAssessment) -> ProgramEligibility:
        return cls(eligible=assessment.eligible, reasons=assessment.reasons, points=assessment.points)


class Eligibility(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fsw": {"eligible": True, "reasons": [], "points": 72},
                    "cec": {
                        "eligible": False,
                        "reasons": [
                            "You need 1 year (1,560 hours) of skilled (TEER 0-3) work in Canada in "
                            "the last 3 years ...; you have 0 hours."
                        ],
                        "points": None,
                    },
                    "fst": {
                        "eligible": False,
                        "reasons": ["You need 2 years ... in one skilled trade ..."],
                        "points": None,
                    },
                }
            ]
        }
    )

    fsw: ProgramEligibility
    cec: ProgramEligibility
    fst: ProgramEligibility

    @classmethod
    def of(cls, assessed: dict[str, ProgramAssessment]) -> Eligibility:
        return cls(**{program: ProgramEligibility.of(a) for program, a in assessed.items()})


class NominationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"profile_id": _EXAMPLE_ID}]})

    profile_id: str = Field(min_length=1, max_length=100)


class NominationOut(BaseModel):
    profile_id: str
    province: str = Field(examples=["ON"])
    nominated_at: datetime
    status: str = Field(description=STATUS_DESCRIPTION)
    eligible_programs: list[str]
    version: int = Field(
        description="the nominated profile's version: the `ETag`, to send as `If-Match` "
        "to withdraw the nomination"
    )

    @classmethod
    def of_row(cls, row: ProfileRow) -> NominationOut:
        assert row.nomination_province is not None and row.nominated_at is not None
        return cls(
            profile_id=row.profile_id,
            province=row.nomination_province,
            nominated_at=row.nominated_at,
            status=row.status,
            eligible_programs=row.eligible_programs,
            version=row.version,
        )

    @classmethod
    def of(cls, profile: Profile) -> NominationOut:
        assert profile.nomination is not None
        return cls(
            profile_id=profile.profile_id,
            province=profile.nomination.province,
            nominated_at=profile.nomination.nominated_at,
            status=profile.status.value,
            eligible_programs=profile.eligible_programs,
            version=profile.version,
        )


class ErasureOut(BaseModel):
    """A profile whose personal data is erased for good (docs/PRIVACY.md)."""

    profile_id: str
    erased_at: datetime
