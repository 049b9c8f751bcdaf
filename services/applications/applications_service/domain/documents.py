"""What an application must contain, who must prove settlement funds, and when a COPR expires.

Facts: crs-rules.md §3.6 (settlement funds) and §7 (COPR validity). Pure: no I/O, no frameworks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from pydantic import ValidationError

from applications_service.domain.calendar import add_months
from applications_service.domain.errors import ApplicationIncomplete, EvidenceExpired, FieldProblem
from shared.rules.document import JobOffer, ProfileDocument
from shared.rules.eligibility import is_valid_job_offer as shared_is_valid_job_offer
from shared.rules.eligibility import settlement_funds_required
from shared.rules.evidence import expired_evidence

# --- settlement funds (crs-rules.md §3.6; the table is shared.rules.eligibility's) ----------------

MEDICAL_VALIDITY_MONTHS: Final = 12


def minimum_settlement_funds(family_size: int, as_of: date) -> int:
    """Whole CAD a family of `family_size` (non-accompanying members count) must show on `as_of`."""
    if family_size < 1:
        raise ValueError("family_size counts the candidate: at least 1")
    return settlement_funds_required(family_size, as_of)


# --- what the profile service told us -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """The profile facts the funds and evidence rules need (read model of ProfileUpdated/Submitted)."""

    eligible_programs: tuple[str, ...]
    authorized_to_work_in_canada: bool
    has_valid_job_offer: bool
    family_size: int
    document: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], eligible_programs: Sequence[str]) -> ProfileFacts:
        """Read the profile document v1 defensively: a missing fact means "not established"."""
        family_size = document.get("family_size")
        return cls(
            eligible_programs=tuple(sorted(eligible_programs)),
            authorized_to_work_in_canada=document.get("authorized_to_work_in_canada") is True,
            has_valid_job_offer=is_valid_job_offer(document.get("job_offer")),
            family_size=family_size if isinstance(family_size, int) and family_size >= 1 else 1,
            document=document,
        )


def is_valid_job_offer(job_offer: Any) -> bool:
    """A qualifying offer (shared.rules.eligibility): full-time, non-seasonal, at least a year (or
    permanent), LMIA or exempt. An offer that is not a valid profile-document job offer does not qualify."""
    if job_offer is None:
        return False
    try:
        offer = JobOffer.model_validate(job_offer)
    except ValidationError:
        return False
    return shared_is_valid_job_offer(offer)


def required_funds(program: str, facts: ProfileFacts | None, as_of: date) -> int | None:
    """The minimum proof of funds in CAD, or None where none is required (crs-rules.md §3.6).

    Not required under CEC (nor for a PNP nominee who also qualifies under CEC), nor for a candidate
    authorized to work in Canada with a valid job offer. Without any profile facts the requirement
    stands, for a family of one.
    """
    if program == "cec" or (facts is not None and program == "pnp" and "cec" in facts.eligible_programs):
        return None
    if facts is not None and facts.authorized_to_work_in_canada and facts.has_valid_job_offer:
        return None
    return minimum_settlement_funds(facts.family_size if facts is not None else 1, as_of)


# --- evidence the invitation relied on (crs-rules.md §2.1 and §4) ---------------------------------


def check_evidence(facts: ProfileFacts | None, invited_on: date, filed_on: date) -> None:
    """Raise EvidenceExpired naming every language result or ECA the invitation relied on that has
    expired by the filing day. Without a valid profile document there is nothing to check against."""
    if facts is None or facts.document is None:
        return
    try:
        doc = ProfileDocument.model_validate(facts.document)
    except ValidationError:
        return
    expired = expired_evidence(doc, invited_on, filed_on)
    if expired:
        raise EvidenceExpired([FieldProblem(f"profile.{error.field}", error.message) for error in expired])


# --- the documents ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassportSubmitted:
    number: str | None = None
    country: str | None = None
    expiry: date | None = None


@dataclass(frozen=True, slots=True)
class DocumentsSubmitted:
    """What the candidate sent; any part may be missing."""

    passport: PassportSubmitted | None = None
    medical_exam_date: date | None = None
    police_certificates: bool | None = None
    proof_of_funds_cad: int | None = None


@dataclass(frozen=True, slots=True)
class Documents:
    """A complete, checked set of documents."""

    passport_number: str
    passport_country: str
    passport_expiry: date
    medical_exam_date: date
    police_certificates: bool
    proof_of_funds_cad: int | None


def copr_expiry(medical_exam_date: date, passport_expiry: date) -> date:
    """The earlier of the medical exam's expiry (12 months after it) and the passport's (§7)."""
    return min(add_months(medical_exam_date, MEDICAL_VALIDITY_MONTHS), passport_expiry)


def check_documents(submitted: DocumentsSubmitted, minimum_funds: int | None, today: date) -> Documents:
    """The complete documents, or ApplicationIncomplete listing what is missing and what is wrong."""
    missing = _missing(submitted, minimum_funds)
    problems = [FieldProblem(name, _MISSING_MESSAGES[name]) for name in missing]
    problems += _invalid(submitted, minimum_funds, today)
    if problems:
        raise ApplicationIncomplete(missing, problems)
    passport = submitted.passport
    assert passport is not None and passport.number and passport.country and passport.expiry
    assert submitted.medical_exam_date is not None
    return Documents(
        passport_number=passport.number.strip(),
        passport_country=passport.country.upper(),
        passport_expiry=passport.expiry,
        medical_exam_date=submitted.medical_exam_date,
        police_certificates=True,
        proof_of_funds_cad=submitted.proof_of_funds_cad,
    )


_MISSING_MESSAGES: Final[dict[str, str]] = {
    "passport": "Give the passport: number, country (ISO alpha-2) and expiry date.",
    "passport.number": "Give the passport number.",
    "passport.country": "Give the passport's issuing country as an ISO alpha-2 code, e.g. IN.",
    "passport.expiry": "Give the passport's expiry date (YYYY-MM-DD).",
    "medical_exam_date": "Give the date of the immigration medical exam (YYYY-MM-DD).",
    "police_certificates": (
        "Police certificates are required: set police_certificates to true once you hold them."
    ),
    "proof_of_funds_cad": "Proof of settlement funds is required for the program you were invited under.",
}


def _missing(submitted: DocumentsSubmitted, minimum_funds: int | None) -> list[str]:
    missing: list[str] = []
    passport = submitted.passport
    if passport is None:
        missing.append("passport")
    else:
        missing += [
            f"passport.{name}" for name in ("number", "country", "expiry") if not getattr(passport, name)
        ]
    if submitted.medical_exam_date is None:
        missing.append("medical_exam_date")
    if submitted.police_certificates is not True:
        missing.append("police_certificates")
    if minimum_funds is not None and submitted.proof_of_funds_cad is None:
        missing.append("proof_of_funds_cad")
    return missing


def _invalid(submitted: DocumentsSubmitted, minimum_funds: int | None, today: date) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    passport = submitted.passport
    if passport is not None and passport.expiry is not None and passport.expiry <= today:
        problems.append(
            FieldProblem("passport.expiry", f"The passport expired on {passport.expiry}; renew it first.")
        )
    exam = submitted.medical_exam_date
    if exam is not None and exam > today:
        problems.append(FieldProblem("medical_exam_date", f"The medical exam date {exam} is in the future."))
    elif exam is not None and add_months(exam, MEDICAL_VALIDITY_MONTHS) <= today:
        problems.append(
            FieldProblem(
                "medical_exam_date",
                f"The medical exam of {exam} is more than {MEDICAL_VALIDITY_MONTHS} months old; "
                "take a new one.",
            )
        )
    funds = submitted.proof_of_funds_cad
    if minimum_funds is not None and funds is not None and funds < minimum_funds:
        problems.append(
            FieldProblem(
                "proof_of_funds_cad",
                f"Settlement funds of {funds} CAD are below the {minimum_funds} CAD required for this "
                "family size.",
            )
        )
    return problems
