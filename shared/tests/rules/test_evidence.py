"""Expired evidence: the language results and ECAs an invitation relied on, checked on the filing day."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE, LanguageTest, ProfileDocument
from shared.rules.evidence import expired_evidence

# The example: IELTS taken 2025-02-08 (expires 2027-02-08), ECA issued 2025-01-20 (expires 2030-01-20).
INVITED_ON = date(2027, 1, 10)


def doc(**changes: Any) -> ProfileDocument:
    return ProfileDocument.model_validate(copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE) | changes)


def test_nothing_expired_nothing_to_say() -> None:
    assert expired_evidence(doc(), INVITED_ON, date(2027, 2, 7)) == []


def test_the_language_result_relied_on_expired_by_the_filing_day() -> None:
    [error] = expired_evidence(doc(), INVITED_ON, date(2027, 2, 8))
    assert error.field == "language_tests.0"
    assert "IELTS_GENERAL result of 2025-02-08" in error.message and "expired on 2027-02-08" in error.message


def test_a_result_that_did_not_count_on_the_invitation_day_is_not_relied_on() -> None:
    weaker = LanguageTest(
        test="CELPIP_G", taken_on=date(2025, 1, 1), listening=7, reading=7, writing=7, speaking=7
    )
    candidate = doc(language_tests=[*PROFILE_DOCUMENT_EXAMPLE["language_tests"], weaker])
    assert [e.field for e in expired_evidence(candidate, INVITED_ON, date(2027, 2, 8))] == [
        "language_tests.0"
    ]


def test_the_eca_relied_on_expired_by_the_filing_day() -> None:
    invited_on = date(2029, 12, 1)
    fresh_test = LanguageTest(
        test="CELPIP_G", taken_on=date(2029, 6, 1), listening=9, reading=9, writing=9, speaking=9
    )
    candidate = doc(language_tests=[fresh_test])
    assert expired_evidence(candidate, invited_on, date(2030, 1, 19)) == []
    [error] = expired_evidence(candidate, invited_on, date(2030, 1, 20))
    assert error.field == "education.0.eca" and "expired on 2030-01-20" in error.message


def test_an_eca_the_level_does_not_depend_on_is_not_relied_on() -> None:
    invited_on = date(2029, 12, 1)
    fresh_test = LanguageTest(
        test="CELPIP_G", taken_on=date(2029, 6, 1), listening=9, reading=9, writing=9, speaking=9
    )
    canadian_masters = {
        "level": "masters",
        "program_years": 2,
        "completed_on": "2019-05-31",
        "country": "CA",
        "canadian": True,
    }
    candidate = doc(
        language_tests=[fresh_test], education=[*PROFILE_DOCUMENT_EXAMPLE["education"], canadian_masters]
    )
    assert expired_evidence(candidate, invited_on, date(2030, 2, 1)) == []


def test_the_spouse_result_relied_on_counts_too() -> None:
    spouse = {
        "accompanying": True,
        "canadian_citizen_or_pr": False,
        "language_tests": [
            {
                "test": "CELPIP_G",
                "taken_on": "2025-03-01",
                "listening": 9,
                "reading": 9,
                "writing": 9,
                "speaking": 9,
            }
        ],
    }
    candidate = doc(marital_status="married", family_size=2, spouse=spouse)
    fields = [e.field for e in expired_evidence(candidate, INVITED_ON, date(2027, 3, 1))]
    assert fields == ["language_tests.0", "spouse.language_tests.0"]
