"""The profile document v1: the contract partner portals send, validated field by field.

Pydantic checks every field on its own (types, ranges, codes, score scales). Checks that need "today" or
compare two fields (a date in the future, an end before its start) live in `validate_document`, so a
stored document can be re-checked against any day without re-parsing it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from shared.bounds import MAX_AMOUNT_CAD
from shared.tracked import TrackedDict

# --- date arithmetic shared by the rules -----------------------------------------------------------


def whole_years_between(earlier: date, later: date) -> int:
    """Completed years from `earlier` to `later` (an age, or the age of a test result).

    Someone born on 29 February completes a year on 1 March in common years, the usual reading of
    "has attained the age of".
    """
    years = later.year - earlier.year
    if (later.month, later.day) < (earlier.month, earlier.day):
        years -= 1
    return years


MONTHS_PER_YEAR = 12
Dated = TypeVar("Dated", date, datetime)


def add_months(day: Dated, months: int) -> Dated:
    """The same day (and time) `months` later; a day the target month lacks becomes its last day."""
    index = day.month - 1 + months
    year, month = day.year + index // MONTHS_PER_YEAR, index % MONTHS_PER_YEAR + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February falls back to 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def years_after(day: date, years: int) -> date:
    """The first day on which `whole_years_between(day, ...)` reaches `years` (29 February → 1 March)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def last_years(as_of: date, years: int) -> tuple[date, date]:
    """The inclusive days of "the last N years" up to and including `as_of`."""
    key = (as_of, years)
    window = _WINDOWS.get(key)
    if window is None:
        # A handful of (day, length) pairs per day scored: remembered, bounded all the same.
        if len(_WINDOWS) >= 4096:
            _WINDOWS.clear()
        window = _WINDOWS[key] = (years_before(as_of, years) + timedelta(days=1), as_of)
    return window


_WINDOWS: TrackedDict[tuple[date, int], tuple[date, date]] = TrackedDict()


# --- field types -----------------------------------------------------------------------------------


def _reject_numbers_as_dates(value: Any) -> Any:
    # Pydantic would read 0 as 1970-01-01 (Unix time); a partner sending a number meant something else.
    if isinstance(value, int | float):
        raise PydanticCustomError("date_type", "Give the date as YYYY-MM-DD.")
    return value


Day = Annotated[date, BeforeValidator(_reject_numbers_as_dates)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2
NocCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{5}$")]  # NOC 2021 unit group
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

MaritalStatus = Literal["single", "married", "common_law", "separated", "divorced", "widowed", "annulled"]
CredentialLevel = Literal[
    "less_than_secondary",
    "secondary",
    "one_year",
    "two_year",
    "bachelors",
    "masters",
    "professional_degree",
    "doctoral",
]
TestName = Literal["IELTS_GENERAL", "CELPIP_G", "PTE_CORE", "TEF_CANADA", "TCF_CANADA"]
Ability = Literal["listening", "reading", "writing", "speaking"]
ABILITIES: tuple[Ability, ...] = ("listening", "reading", "writing", "speaking")
OfficialLanguage = Literal["english", "french"]
Province = Literal["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]

TEF_NEW_SCALE_FROM = date(2023, 12, 11)  # crs-rules.md §0 and §2.5


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- education ------------------------------------------------------------------------------------


class Eca(_Contract):
    """Educational credential assessment of a foreign credential."""

    organization: Text
    issued_on: Day


class EducationCredential(_Contract):
    level: CredentialLevel
    program_years: Annotated[StrictFloat, Field(ge=0, le=10)]
    completed_on: Day
    country: CountryCode
    canadian: StrictBool
    eca: Eca | None = None


# --- language tests -------------------------------------------------------------------------------

# Inclusive (lowest, highest, step) of each test's score scale, per ability.
_Scale = tuple[float, float, float]
_SAME_SCALE_FOR_ALL: dict[TestName, _Scale] = {
    "IELTS_GENERAL": (0, 9, 0.5),
    "CELPIP_G": (1, 12, 1),
    "PTE_CORE": (10, 90, 1),
}
_TEF_OLD_SCALE: dict[Ability, _Scale] = {
    "listening": (0, 360, 1),
    "reading": (0, 300, 1),
    "speaking": (0, 450, 1),
    "writing": (0, 450, 1),
}
_TCF_SCALE: dict[Ability, _Scale] = {
    "listening": (0, 699, 1),
    "reading": (0, 699, 1),
    "speaking": (0, 20, 1),
    "writing": (0, 20, 1),
}


def score_scale(test: TestName, ability: Ability, taken_on: date) -> _Scale:
    """The scale a score was reported on; TEF Canada changed scale on 2023-12-11."""
    if test in _SAME_SCALE_FOR_ALL:
        return _SAME_SCALE_FOR_ALL[test]
    if test == "TCF_CANADA":
        return _TCF_SCALE[ability]
    return (0, 699, 1) if taken_on >= TEF_NEW_SCALE_FROM else _TEF_OLD_SCALE[ability]


def _on_scale(score: float, scale: _Scale) -> bool:
    lowest, highest, step = scale
    return lowest <= score <= highest and ((score - lowest) / step).is_integer()


def _describe(scale: _Scale) -> str:
    lowest, highest, step = scale
    steps = "in steps of 0.5" if step == 0.5 else "whole numbers"
    return f"{lowest:g} to {highest:g}, {steps}"


class LanguageTest(_Contract):
    test: TestName
    taken_on: Day
    listening: StrictFloat
    reading: StrictFloat
    writing: StrictFloat
    speaking: StrictFloat

    @field_validator("listening", "reading", "writing", "speaking")
    @classmethod
    def _score_on_the_test_scale(cls, score: float, info: ValidationInfo) -> float:
        test, taken_on = info.data.get("test"), info.data.get("taken_on")
        if test is None or taken_on is None:  # already reported as invalid; nothing to compare with
            return score
        ability = cast(Ability, info.field_name)
        scale = score_scale(test, ability, taken_on)
        if not _on_scale(score, scale):
            raise PydanticCustomError(
                "score_out_of_scale",
                "{test} {ability} scores run {scale}; {score:g} is not one of them.",
                {"test": test, "ability": ability, "scale": _describe(scale), "score": score},
            )
        return score

    def score(self, ability: Ability) -> float:
        return float(getattr(self, ability))


# --- work, spouse, certificate, job offer ---------------------------------------------------------


def _teer_matches_noc(teer: int, info: ValidationInfo) -> int:
    noc = info.data.get("noc_code")
    # NOC 2021: the second digit of a unit group code is its TEER.
    if noc is not None and int(noc[1]) != teer:
        raise PydanticCustomError(
            "teer_mismatch",
            "NOC {noc} is a TEER {expected} occupation (the second digit of the code), not TEER {teer}.",
            {"noc": noc, "expected": noc[1], "teer": teer},
        )
    return teer


# Declared after `noc_code` in a model, so the NOC is already validated when the TEER is checked.
TeerOfNoc = Annotated[StrictInt, Field(ge=0, le=5), AfterValidator(_teer_matches_noc)]


class WorkExperience(_Contract):
    noc_code: NocCode
    teer: TeerOfNoc
    country: CountryCode
    start: Day
    end: Day | None  # None: still working there
    hours_per_week: Annotated[StrictFloat, Field(ge=0, le=168)]
    self_employed: StrictBool
    while_full_time_student: StrictBool


class Spouse(_Contract):
    accompanying: StrictBool
    canadian_citizen_or_pr: StrictBool
    education: list[EducationCredential] = Field(default_factory=list)
    language_tests: list[LanguageTest] = Field(default_factory=list)
    work_experience: list[WorkExperience] = Field(default_factory=list)


class CertificateOfQualification(_Contract):
    province: Province
    noc_code: NocCode
    issued_on: Day


class JobOffer(_Contract):
    noc_code: NocCode
    teer: TeerOfNoc
    employer: Text
    full_time: StrictBool
    non_seasonal: StrictBool
    duration_months: Annotated[StrictInt, Field(ge=1, le=600)] | None  # None: permanent, no end date
    lmia_or_exempt: StrictBool
    canadian_armed_forces: StrictBool


# --- identity (personal data: docs/PRIVACY.md) ---------------------------------------------------------


class Identity(_Contract):
    """Who the candidate is. Personal data: sealed in events, shown only to the owner, officers and ops,
    never used by ranking or draws, destroyed with the candidate's data key on erasure."""

    family_name: Text
    given_names: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    email: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    ]
    uci: Annotated[str, StringConstraints(pattern=r"^[0-9]{8}([0-9]{2})?$")] | None = Field(
        default=None, description="Unique client identifier (8 or 10 digits), when IRCC issued one"
    )
    passport_number: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9]{5,20}$")] | None
    ) = None


# --- OpenAPI example -------------------------------------------------------------------------------

# A single software engineer abroad, eligible for the FSWP (67-point grid: 72) and no other program.
PROFILE_DOCUMENT_EXAMPLE: dict[str, Any] = {
    "date_of_birth": "1994-03-14",
    "citizenship": "IN",
    "country_of_residence": "IN",
    "marital_status": "single",
    "family_size": 1,
    "settlement_funds_cad": 18000,
    "authorized_to_work_in_canada": False,
    "intends_to_reside_in_quebec": False,
    "education": [
        {
            "level": "bachelors",
            "program_years": 4,
            "completed_on": "2016-05-31",
            "country": "IN",
            "canadian": False,
            "eca": {"organization": "WES", "issued_on": "2025-01-20"},
        }
    ],
    "language_tests": [
        {
            "test": "IELTS_GENERAL",
            "taken_on": "2025-02-08",
            "listening": 8.5,
            "reading": 7.5,
            "writing": 7.0,
            "speaking": 7.0,
        }
    ],
    "work_experience": [
        {
            "noc_code": "21231",
            "teer": 1,
            "country": "IN",
            "start": "2017-07-01",
            "end": None,
            "hours_per_week": 40,
            "self_employed": False,
            "while_full_time_student": False,
        }
    ],
    "spouse": None,
    "certificate_of_qualification": None,
    "job_offer": None,
    "sibling_in_canada": False,
    "relative_in_canada": False,
}


class ProfileDocument(_Contract):
    """Profile document v1."""

    model_config = ConfigDict(json_schema_extra={"examples": [PROFILE_DOCUMENT_EXAMPLE]})

    date_of_birth: Day
    citizenship: CountryCode
    country_of_residence: CountryCode
    marital_status: MaritalStatus
    family_size: Annotated[StrictInt, Field(ge=1, le=20)]
    settlement_funds_cad: Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_CAD)]
    authorized_to_work_in_canada: StrictBool
    intends_to_reside_in_quebec: StrictBool
    education: list[EducationCredential] = Field(default_factory=list)
    language_tests: list[LanguageTest] = Field(default_factory=list)
    work_experience: list[WorkExperience] = Field(default_factory=list)
    spouse: Spouse | None = None
    certificate_of_qualification: CertificateOfQualification | None = None
    job_offer: JobOffer | None = None
    sibling_in_canada: StrictBool
    relative_in_canada: StrictBool
    # The language the candidate names as their first official language (crs-rules.md §1.4). When it
    # is absent and results in both languages count, the order that gives the higher CRS is used.
    first_official_language: OfficialLanguage | None = None
    # Personal data (docs/PRIVACY.md): never read by the rules.
    identity: Identity | None = None


def accompanying_spouse(doc: ProfileDocument) -> Spouse | None:
    """The spouse who counts for points: coming along and not already a Canadian citizen or PR.

    Otherwise the candidate is scored as single (crs-rules.md §1).
    """
    spouse = doc.spouse
    if spouse is None or not spouse.accompanying or spouse.canadian_citizen_or_pr:
        return None
    return spouse


# --- errors ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # dotted path, e.g. "language_tests.0.reading"
    message: str


def field_errors(error: ValidationError) -> list[FieldError]:
    """Pydantic's errors in the same shape as `validate_document`'s, for one problem+json list."""
    return [
        FieldError(".".join(str(part) for part in detail["loc"]), detail["msg"])
        for detail in error.errors(include_url=False)
    ]


# --- checks against "today" and across fields ------------------------------------------------------


def validate_document(doc: ProfileDocument, today: date) -> list[FieldError]:
    """Problems pydantic cannot see on one field: dates after `today`, and fields that contradict."""
    errors = _not_after("date_of_birth", doc.date_of_birth, today)
    errors += _spouse_matches_marital_status(doc)
    errors += _history_errors("", doc, today, born_on=doc.date_of_birth)
    if doc.spouse is not None:
        # The spouse's date of birth is not part of the document, so only "today" bounds their dates.
        errors += _history_errors("spouse.", doc.spouse, today, born_on=None)
    certificate = doc.certificate_of_qualification
    if certificate is not None:
        path = "certificate_of_qualification.issued_on"
        errors += _within_life(path, certificate.issued_on, doc.date_of_birth, today)
    return errors


def _spouse_matches_marital_status(doc: ProfileDocument) -> list[FieldError]:
    status = doc.marital_status
    has_partner = status in ("married", "common_law")
    if has_partner and doc.spouse is None:
        return [FieldError("spouse", f"Give your spouse or partner's details (marital_status is {status}).")]
    if not has_partner and doc.spouse is not None:
        message = f"Remove the spouse, or set marital_status to married or common_law (it is {status})."
        return [FieldError("spouse", message)]
    if doc.spouse is not None and doc.family_size < 2:
        return [FieldError("family_size", "Family size counts you and your spouse or partner: at least 2.")]
    return []


def _history_errors(
    prefix: str, person: ProfileDocument | Spouse, today: date, born_on: date | None
) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, credential in enumerate(person.education):
        path = f"{prefix}education.{i}"
        errors += _within_life(f"{path}.completed_on", credential.completed_on, born_on, today)
        if credential.eca is not None:
            errors += _not_after(f"{path}.eca.issued_on", credential.eca.issued_on, today)
        if credential.canadian != (credential.country == "CA"):
            errors.append(FieldError(f"{path}.canadian", "Set canadian to true exactly when country is CA."))
    for i, test in enumerate(person.language_tests):
        errors += _within_life(f"{prefix}language_tests.{i}.taken_on", test.taken_on, born_on, today)
    for i, job in enumerate(person.work_experience):
        path = f"{prefix}work_experience.{i}"
        errors += _within_life(f"{path}.start", job.start, born_on, today)
        if job.end is not None:
            errors += _not_after(f"{path}.end", job.end, today)
            if job.end < job.start:
                errors.append(
                    FieldError(f"{path}.end", f"The end ({job.end}) is before the start ({job.start}).")
                )
    return errors


def _within_life(field: str, day: date, born_on: date | None, today: date) -> list[FieldError]:
    if born_on is not None and day < born_on:
        return [FieldError(field, f"{day} is before the date of birth ({born_on}).")]
    return _not_after(field, day, today)


def _not_after(field: str, day: date, today: date) -> list[FieldError]:
    if day > today:
        return [FieldError(field, f"{day} is in the future (today is {today}); give a date that has passed.")]
    return []
