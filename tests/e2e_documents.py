"""Varied, valid profile documents for the end-to-end tests, and the calculator body a profile implies.

Seeded: the same seed and day give the same documents. Every document is checked here with the rules
the services use (`validate_document`, `eligible_programs`) before it is returned, so a test never
depends on the generator's luck. About a third speak French at NCLC 7 or more (the `french` category),
some work in healthcare, some in Canada (CEC), some have a spouse, a job offer or a sibling in Canada.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from shared.rules.derive import derive_factors
from shared.rules.document import ProfileDocument, validate_document, years_before
from shared.rules.eligibility import eligible_programs
from shared.rules.factors import Clb, CrsFactors, LanguageAbility, SpouseFactors

# Citizenships: visa-required nationals (IN, CN, NG, PH, PK, MA) and visa-exempt ones (FR, GB, IE, AU, KR).
CITIZENSHIPS = ("IN", "IN", "CN", "NG", "PH", "PK", "MA", "FR", "GB", "IE", "AU", "KR")
SKILLED_NOCS = (
    ("21231", 1), ("21232", 1), ("21211", 1), ("11100", 1), ("11202", 1), ("41200", 1), ("00012", 0),
    ("10010", 0), ("22220", 2), ("62200", 2), ("72410", 2), ("13110", 3), ("63200", 3),
)  # fmt: skip
HEALTHCARE_NOCS = (("31102", 1), ("31120", 1), ("32101", 2), ("33102", 3))
LEVELS = (
    ("two_year", 2.0), ("bachelors", 4.0), ("bachelors", 3.0), ("masters", 2.0), ("doctoral", 4.0),
    ("professional_degree", 4.0),
)  # fmt: skip
# TEF Canada (the 0-699 scale) minimums of NCLC 7 per ability.
TEF_NCLC7 = {"listening": 434, "reading": 434, "writing": 428, "speaking": 456}


def _day(d: date) -> str:
    return d.isoformat()


def _celpip(rng: random.Random, taken_on: date, low: int = 7) -> dict[str, Any]:
    scores = {
        ability: float(rng.randint(low, 12)) for ability in ("listening", "reading", "writing", "speaking")
    }
    return {"test": "CELPIP_G", "taken_on": _day(taken_on), **scores}


def _ielts(rng: random.Random, taken_on: date) -> dict[str, Any]:
    return {
        "test": "IELTS_GENERAL",
        "taken_on": _day(taken_on),
        "listening": rng.choice([7.5, 8.0, 8.5, 9.0]),
        "reading": rng.choice([6.5, 7.0, 8.0, 8.5]),
        "writing": rng.choice([6.5, 7.0, 7.5]),
        "speaking": rng.choice([6.5, 7.0, 7.5, 8.0]),
    }


def _tef(rng: random.Random, taken_on: date, strong: bool) -> dict[str, Any]:
    scores = {
        ability: float(rng.randint(lowest, 620) if strong else rng.randint(lowest - 80, lowest - 5))
        for ability, lowest in TEF_NCLC7.items()
    }
    return {"test": "TEF_CANADA", "taken_on": _day(taken_on), **scores}


def _job(noc: str, teer: int, country: str, start: date, end: date | None) -> dict[str, Any]:
    return {
        "noc_code": noc, "teer": teer, "country": country, "start": _day(start),
        "end": _day(end) if end else None, "hours_per_week": 40.0, "self_employed": False,
        "while_full_time_student": False,
    }  # fmt: skip


def _credential(rng: random.Random, country: str, completed: date, today: date) -> dict[str, Any]:
    level, years = rng.choice(LEVELS)
    canadian = country == "CA"
    eca = (
        None
        if canadian
        else {"organization": "WES", "issued_on": _day(today - timedelta(days=rng.randint(60, 1400)))}
    )
    return {
        "level": level, "program_years": years, "completed_on": _day(completed), "country": country,
        "canadian": canadian, "eca": eca,
    }  # fmt: skip


def generate_document(rng: random.Random, today: date) -> dict[str, Any]:
    """One candidate's document (not yet checked; `varied_documents` keeps the eligible ones)."""
    citizenship = rng.choice(CITIZENSHIPS)
    age = rng.randint(22, 44)
    born = years_before(today, age) - timedelta(days=rng.randint(1, 360))
    graduated = min(years_before(today, max(age - 24, 0)), today - timedelta(days=400))
    graduated = max(graduated, years_before(today, age - 21))
    canadian_study = rng.random() < 0.1
    education = [_credential(rng, "CA" if canadian_study else citizenship, graduated, today)]

    tests_taken = today - timedelta(days=rng.randint(20, 500))
    language_tests = [_celpip(rng, tests_taken) if rng.random() < 0.7 else _ielts(rng, tests_taken)]
    if rng.random() < 0.33:
        language_tests.append(
            _tef(rng, today - timedelta(days=rng.randint(20, 400)), strong=rng.random() < 0.85)
        )

    healthcare = rng.random() < 0.15
    noc, teer = rng.choice(HEALTHCARE_NOCS if healthcare else SKILLED_NOCS)
    work_start = max(graduated + timedelta(days=30), years_before(today, rng.randint(1, 9)))
    in_canada = rng.random() < 0.3
    work: list[dict[str, Any]] = []
    if in_canada:
        # Abroad first, then in Canada until today (CEC needs 1 year in Canada in the last 3).
        canada_from = today - timedelta(days=rng.randint(400, 1000))
        if work_start < canada_from - timedelta(days=200):
            work.append(_job(noc, teer, citizenship, work_start, canada_from - timedelta(days=1)))
        work.append(_job(noc, teer, "CA", max(work_start, canada_from), None))
    else:
        work.append(_job(noc, teer, citizenship, min(work_start, today - timedelta(days=420)), None))

    married = rng.random() < 0.3
    spouse = None
    if married:
        spouse = {
            "accompanying": rng.random() < 0.85,
            "canadian_citizen_or_pr": False,
            "education": [_credential(rng, citizenship, graduated, today)] if rng.random() < 0.7 else [],
            "language_tests": [_celpip(rng, tests_taken, low=4)] if rng.random() < 0.6 else [],
            "work_experience": [],
        }
    family_size = (2 if married else 1) + rng.choice([0, 0, 1, 2])
    job_offer = None
    if rng.random() < 0.1:
        job_offer = {
            "noc_code": noc, "teer": teer, "employer": "Maple Works Ltd", "full_time": True,
            "non_seasonal": True, "duration_months": None, "lmia_or_exempt": True,
            "canadian_armed_forces": False,
        }  # fmt: skip
    return {
        "date_of_birth": _day(born),
        "citizenship": citizenship,
        "country_of_residence": "CA" if in_canada else citizenship,
        "marital_status": "married" if married else rng.choice(["single", "single", "divorced"]),
        "family_size": family_size,
        "settlement_funds_cad": rng.randint(42_000, 90_000),
        "authorized_to_work_in_canada": in_canada,
        "intends_to_reside_in_quebec": False,
        "education": education,
        "language_tests": language_tests,
        "work_experience": work,
        "spouse": spouse,
        "certificate_of_qualification": None,
        "job_offer": job_offer,
        "sibling_in_canada": rng.random() < 0.1,
        "relative_in_canada": rng.random() < 0.1,
    }


def is_poolable(document: dict[str, Any], today: date) -> bool:
    """Valid on `today` and eligible for at least one program then."""
    doc = ProfileDocument.model_validate(document)
    return not validate_document(doc, today) and bool(eligible_programs(doc, today))


def varied_documents(count: int, today: date, seed: int = 7) -> list[dict[str, Any]]:
    """`count` valid documents, each eligible for at least one program on `today`."""
    rng = random.Random(seed)
    documents: list[dict[str, Any]] = []
    attempts = 0
    while len(documents) < count:
        attempts += 1
        if attempts > count * 20:
            raise AssertionError(f"only {len(documents)} of {count} generated documents are eligible")
        document = generate_document(rng, today)
        if is_poolable(document, today):
            documents.append(document)
    return documents


def variant(document: dict[str, Any], step: int) -> dict[str, Any]:
    """The same candidate with one fact changed by `step` (an update that changes the score).

    Alternates the sibling flag and moves the settlement funds, so consecutive steps always differ and
    the step can be read back from the document (`step_of`).
    """
    changed = dict(document)
    changed["settlement_funds_cad"] = 100_000 + step
    changed["sibling_in_canada"] = step % 2 == 1
    return changed


def step_of(document: dict[str, Any]) -> int:
    return int(document["settlement_funds_cad"]) - 100_000


def ineligible(document: dict[str, Any]) -> dict[str, Any]:
    """The same candidate without any language test: eligible for no program."""
    return {**document, "language_tests": []}


# --- the calculator's body for a profile ------------------------------------------------------------


def _clb(clb: Clb) -> dict[str, int]:
    return {
        "speaking": clb.speaking,
        "listening": clb.listening,
        "reading": clb.reading,
        "writing": clb.writing,
    }


def _language(ability: LanguageAbility | None) -> dict[str, Any] | None:
    return None if ability is None else {"language": ability.language, "clb": _clb(ability.clb)}


def _spouse(spouse: SpouseFactors | None) -> dict[str, Any] | None:
    if spouse is None:
        return None
    return {
        "education_level": str(spouse.education_level),
        "clb": _clb(spouse.clb) if spouse.clb is not None else None,
        "canadian_work_years": spouse.canadian_work_years,
    }


def calculator_body(factors: CrsFactors) -> dict[str, Any]:
    """`POST /v1/crs/calculate`'s JSON for derived factors."""
    return {
        "age": factors.age,
        "education_level": str(factors.education_level),
        "canadian_education": str(factors.canadian_education),
        "first_language": _language(factors.first_language),
        "second_language": _language(factors.second_language),
        "canadian_work_years": factors.canadian_work_years,
        "foreign_work_years": factors.foreign_work_years,
        "certificate_of_qualification": factors.certificate_of_qualification,
        "provincial_nomination": factors.provincial_nomination,
        "sibling_in_canada": factors.sibling_in_canada,
        "spouse": _spouse(factors.spouse),
        "arranged_employment": factors.arranged_employment,
    }


def implied_calculator_body(document: dict[str, Any], as_of: date, nominated: bool) -> dict[str, Any]:
    return calculator_body(derive_factors(ProfileDocument.model_validate(document), as_of, nominated))
