"""The profile document v1: per-field validation (pydantic) and the checks against "today"."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.rules.document import (
    PROFILE_DOCUMENT_EXAMPLE,
    FieldError,
    ProfileDocument,
    add_months,
    field_errors,
    last_years,
    validate_document,
    whole_years_between,
    years_after,
    years_before,
)

TODAY = date(2026, 3, 1)


def example() -> dict[str, Any]:
    return copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)


def errors_of(data: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as caught:
        ProfileDocument.model_validate(data)
    return field_errors(caught.value)


def fields_of(data: dict[str, Any]) -> set[str]:
    return {error.field for error in errors_of(data)}


def spouse() -> dict[str, Any]:
    return {
        "accompanying": True,
        "canadian_citizen_or_pr": False,
        "education": [],
        "language_tests": [],
        "work_experience": [],
    }


def test_the_example_is_valid_and_has_no_problems_today() -> None:
    doc = ProfileDocument.model_validate(PROFILE_DOCUMENT_EXAMPLE)
    assert doc.education[0].eca is not None
    assert validate_document(doc, TODAY) == []


def test_the_example_is_in_the_json_schema_for_openapi() -> None:
    schema = ProfileDocument.model_json_schema()
    assert schema["examples"] == [PROFILE_DOCUMENT_EXAMPLE]
    assert schema["additionalProperties"] is False


def test_unknown_fields_are_refused_at_every_level() -> None:
    data = example()
    data["nickname"] = "x"
    data["work_experience"][0]["salary"] = 1
    assert fields_of(data) == {"nickname", "work_experience.0.salary"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("citizenship", "in"),
        ("citizenship", "IND"),
        ("country_of_residence", "1N"),
        ("marital_status", "engaged"),
        ("family_size", 0),
        ("family_size", 21),
        ("family_size", "2"),
        ("settlement_funds_cad", -1),
        ("settlement_funds_cad", 100.5),
        ("authorized_to_work_in_canada", "yes"),
        ("intends_to_reside_in_quebec", 1),
        ("date_of_birth", 0),
        ("date_of_birth", "14/03/1994"),
        ("sibling_in_canada", None),
    ],
)
def test_top_level_fields_are_validated(field: str, value: object) -> None:
    data = example()
    data[field] = value
    assert fields_of(data) == {field}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("level", "diploma"),
        ("program_years", -0.5),
        ("program_years", 10.5),
        ("country", "Canada"),
        ("canadian", "no"),
    ],
)
def test_education_fields_are_validated(field: str, value: object) -> None:
    data = example()
    data["education"][0][field] = value
    assert fields_of(data) == {f"education.0.{field}"}


def test_an_eca_needs_an_organization_and_a_date() -> None:
    data = example()
    data["education"][0]["eca"] = {"organization": "  ", "issued_on": "2025-13-01"}
    assert fields_of(data) == {"education.0.eca.organization", "education.0.eca.issued_on"}


@pytest.mark.parametrize(
    ("test", "taken_on", "ability", "score", "valid"),
    [
        ("IELTS_GENERAL", "2025-01-01", "reading", 9.0, True),
        ("IELTS_GENERAL", "2025-01-01", "reading", 0.0, True),
        ("IELTS_GENERAL", "2025-01-01", "reading", 6.5, True),
        ("IELTS_GENERAL", "2025-01-01", "reading", 6.3, False),
        ("IELTS_GENERAL", "2025-01-01", "reading", 9.5, False),
        ("CELPIP_G", "2025-01-01", "writing", 1, True),
        ("CELPIP_G", "2025-01-01", "writing", 12, True),
        ("CELPIP_G", "2025-01-01", "writing", 0, False),
        ("CELPIP_G", "2025-01-01", "writing", 7.5, False),
        ("PTE_CORE", "2025-01-01", "speaking", 10, True),
        ("PTE_CORE", "2025-01-01", "speaking", 90, True),
        ("PTE_CORE", "2025-01-01", "speaking", 9, False),
        ("PTE_CORE", "2025-01-01", "speaking", 91, False),
        ("TEF_CANADA", "2023-12-11", "reading", 699, True),
        ("TEF_CANADA", "2023-12-11", "reading", 700, False),
        ("TEF_CANADA", "2023-12-10", "reading", 300, True),
        ("TEF_CANADA", "2023-12-10", "reading", 301, False),
        ("TEF_CANADA", "2023-12-10", "listening", 360, True),
        ("TEF_CANADA", "2023-12-10", "listening", 361, False),
        ("TEF_CANADA", "2023-12-10", "speaking", 450, True),
        ("TEF_CANADA", "2023-12-10", "writing", 451, False),
        ("TCF_CANADA", "2025-01-01", "listening", 699, True),
        ("TCF_CANADA", "2025-01-01", "listening", 700, False),
        ("TCF_CANADA", "2025-01-01", "speaking", 20, True),
        ("TCF_CANADA", "2025-01-01", "speaking", 21, False),
        ("TCF_CANADA", "2025-01-01", "writing", 12.5, False),
    ],
)
def test_scores_are_checked_against_their_test_scale(
    test: str, taken_on: str, ability: str, score: float, valid: bool
) -> None:
    data = example()
    result = {"test": test, "taken_on": taken_on, "listening": 1, "reading": 1, "writing": 1, "speaking": 1}
    if test == "PTE_CORE":
        result |= {"listening": 10, "reading": 10, "writing": 10, "speaking": 10}
    result[ability] = score
    data["language_tests"] = [result]
    if valid:
        ProfileDocument.model_validate(data)
    else:
        [error] = errors_of(data)
        assert error.field == f"language_tests.0.{ability}"
        assert "scores run" in error.message


def test_an_unknown_test_is_refused_without_complaining_about_its_scores() -> None:
    data = example()
    data["language_tests"][0]["test"] = "IELTS_ACADEMIC"
    assert fields_of(data) == {"language_tests.0.test"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("noc_code", "2123"),
        ("noc_code", "2123A"),
        ("teer", 6),
        ("country", "ca"),
        ("end", "not a date"),
        ("hours_per_week", 169),
        ("hours_per_week", -1),
        ("self_employed", None),
        ("while_full_time_student", "false"),
    ],
)
def test_work_experience_fields_are_validated(field: str, value: object) -> None:
    data = example()
    data["work_experience"][0][field] = value
    assert fields_of(data) == {f"work_experience.0.{field}"}


def test_the_teer_must_be_the_second_digit_of_the_noc_code() -> None:
    data = example()
    data["work_experience"][0]["teer"] = 2  # 21231 is TEER 1
    [error] = errors_of(data)
    assert error == FieldError(
        "work_experience.0.teer",
        "NOC 21231 is a TEER 1 occupation (the second digit of the code), not TEER 2.",
    )


def test_a_job_offer_teer_is_checked_against_its_noc_code_too() -> None:
    data = example()
    data["job_offer"] = {
        "noc_code": "00012",
        "teer": 1,
        "employer": "Acme Ltd.",
        "full_time": True,
        "non_seasonal": True,
        "duration_months": None,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    }
    assert fields_of(data) == {"job_offer.teer"}
    data["job_offer"]["teer"] = 0
    assert ProfileDocument.model_validate(data).job_offer is not None


def test_a_certificate_needs_a_canadian_province_or_territory() -> None:
    data = example()
    data["certificate_of_qualification"] = {"province": "NY", "noc_code": "72310", "issued_on": "2024-01-01"}
    assert fields_of(data) == {"certificate_of_qualification.province"}


def test_spouse_lists_are_validated_with_their_own_path() -> None:
    data = example() | {"marital_status": "married", "family_size": 2, "spouse": spouse()}
    data["spouse"]["work_experience"] = [dict(PROFILE_DOCUMENT_EXAMPLE["work_experience"][0], teer=3)]
    assert fields_of(data) == {"spouse.work_experience.0.teer"}


# --- validate_document ------------------------------------------------------------------------------


def validated(data: dict[str, Any]) -> list[FieldError]:
    return validate_document(ProfileDocument.model_validate(data), TODAY)


def test_dates_after_today_are_reported_with_their_path() -> None:
    data = example()
    data["language_tests"][0]["taken_on"] = "2026-03-02"
    data["work_experience"][0]["end"] = "2026-03-02"
    data["education"][0]["eca"]["issued_on"] = "2027-01-01"
    assert {error.field for error in validated(data)} == {
        "language_tests.0.taken_on",
        "work_experience.0.end",
        "education.0.eca.issued_on",
    }


def test_today_itself_is_not_in_the_future() -> None:
    data = example()
    data["language_tests"][0]["taken_on"] = TODAY.isoformat()
    assert validated(data) == []


def test_an_end_before_its_start_is_reported() -> None:
    data = example()
    data["work_experience"][0]["end"] = "2017-06-30"
    assert validated(data) == [
        FieldError("work_experience.0.end", "The end (2017-06-30) is before the start (2017-07-01).")
    ]


def test_dates_before_birth_are_reported() -> None:
    data = example()
    data["education"][0]["completed_on"] = "1990-01-01"
    data["work_experience"][0]["start"] = "1994-03-13"
    assert {error.field for error in validated(data)} == {
        "education.0.completed_on",
        "work_experience.0.start",
    }


def test_a_canadian_credential_must_come_from_canada() -> None:
    data = example()
    data["education"][0]["canadian"] = True
    assert [error.field for error in validated(data)] == ["education.0.canadian"]


def test_a_married_candidate_must_describe_the_spouse() -> None:
    data = example() | {"marital_status": "married", "family_size": 2}
    assert [error.field for error in validated(data)] == ["spouse"]


def test_a_single_candidate_cannot_have_a_spouse() -> None:
    data = example() | {"spouse": spouse()}
    assert [error.field for error in validated(data)] == ["spouse"]


def test_a_family_with_a_spouse_has_at_least_two_members() -> None:
    data = example() | {"marital_status": "common_law", "family_size": 1, "spouse": spouse()}
    assert [error.field for error in validated(data)] == ["family_size"]


def test_spouse_dates_are_checked_against_today() -> None:
    data = example() | {"marital_status": "married", "family_size": 2, "spouse": spouse()}
    data["spouse"]["language_tests"] = [
        dict(PROFILE_DOCUMENT_EXAMPLE["language_tests"][0], taken_on="2026-04-01")
    ]
    assert [error.field for error in validated(data)] == ["spouse.language_tests.0.taken_on"]


def test_a_certificate_issued_in_the_future_is_reported() -> None:
    data = example()
    data["certificate_of_qualification"] = {"province": "ON", "noc_code": "72310", "issued_on": "2026-05-01"}
    assert [error.field for error in validated(data)] == ["certificate_of_qualification.issued_on"]


# --- date arithmetic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "later", "years"),
    [
        (date(2000, 5, 10), date(2026, 5, 9), 25),
        (date(2000, 5, 10), date(2026, 5, 10), 26),
        (date(2000, 2, 29), date(2026, 2, 28), 25),
        (date(2000, 2, 29), date(2026, 3, 1), 26),
        (date(2000, 2, 29), date(2028, 2, 29), 28),
    ],
)
def test_whole_years_between_counts_completed_years(earlier: date, later: date, years: int) -> None:
    assert whole_years_between(earlier, later) == years


def test_years_after_is_the_day_the_count_is_reached() -> None:
    assert years_after(date(2024, 2, 29), 2) == date(2026, 3, 1)
    assert whole_years_between(date(2024, 2, 29), date(2026, 3, 1)) == 2
    assert years_after(date(2024, 5, 6), 2) == date(2026, 5, 6)


def test_last_years_covers_exactly_that_many_years_of_days() -> None:
    assert last_years(date(2026, 3, 1), 3) == (date(2023, 3, 2), date(2026, 3, 1))
    assert years_before(date(2028, 2, 29), 2) == date(2026, 2, 28)


def test_add_months_keeps_the_day_or_falls_back_to_the_last_day() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2025, 11, 15), 3) == date(2026, 2, 15)
    noon = datetime(2025, 12, 31, 12, tzinfo=UTC)
    assert add_months(noon, 2) == datetime(2026, 2, 28, 12, tzinfo=UTC)
