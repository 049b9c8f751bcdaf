"""`POST /v1/crs/calculate`: the fixed public contract, and 422 problems for invalid input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ranking_app import app_with, client, problem

from ranking_service.schemas import CALCULATOR_EXAMPLE

URL = "/v1/crs/calculate"


def body(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(CALCULATOR_EXAMPLE)
    payload.update(changes)
    return payload


async def calc(payload: Any, params: dict[str, str] | None = None) -> Any:
    async with client(app_with()) as http:
        return await http.post(URL, json=payload, params=params)


async def test_the_issue_example_is_scored_without_a_token() -> None:
    response = await calc(body())
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {
        "total",
        "core",
        "spouse",
        "transferability",
        "additional",
        "breakdown",
        "rules_version",
    }
    # Age 29: 110; bachelor's: 120; first language 9/9/8/7 without a spouse: 31+31+23+17 = 102;
    # 1 year in Canada: 40. Transferability: education x CLB 7+ (13) + education x 1 year (13),
    # foreign 3 years x CLB 7+ (25) + foreign x 1 year (25) = 76, within the 100 cap.
    assert result["core"] == 110 + 120 + 102 + 40
    assert result["transferability"] == 76
    assert (result["spouse"], result["additional"]) == (0, 0)
    assert result["total"] == sum(result["breakdown"].values()) == 448
    assert result["rules_version"] == "2025-03-25"


async def test_a_spouse_and_french_change_the_columns_and_the_bonus() -> None:
    clb7 = {"speaking": 7, "listening": 7, "reading": 7, "writing": 7}
    spouse = {"education_level": "masters", "clb": clb7, "canadian_work_years": 0}
    single = (await calc(body(second_language={"language": "fr", "clb": clb7}))).json()
    married = (await calc(body(second_language={"language": "fr", "clb": clb7}, spouse=spouse))).json()
    assert single["breakdown"]["french"] == 50  # NCLC 7 in all four and English CLB 5+ in all four
    assert married["breakdown"]["age"] == 100 and single["breakdown"]["age"] == 110
    assert married["spouse"] == 10 + 4 * 3  # master's; CLB 7 per ability


async def test_old_rules_score_arranged_employment_and_unknown_versions_are_refused() -> None:
    old = await calc(body(arranged_employment="teer_0_major_00"), {"rules_version": "2020-10-27"})
    new = await calc(body(arranged_employment="teer_0_major_00"))
    assert old.json()["total"] == new.json()["total"] + 200
    bad = problem(await calc(body(), {"rules_version": "1999-01-01"}), 422)
    assert bad["errors"][0]["field"] == "rules_version"


def english(speaking: int, language: str = "en") -> dict[str, Any]:
    return {"language": language, "clb": {"speaking": speaking, "listening": 9, "reading": 8, "writing": 7}}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_language": english(13)}, "first_language.clb.speaking"),
        ({"first_language": english(-1)}, "first_language.clb.speaking"),
        ({"education_level": "phd"}, "education_level"),
        ({"canadian_education": "four_year"}, "canadian_education"),
        ({"canadian_work_years": -1}, "canadian_work_years"),
        ({"foreign_work_years": -2}, "foreign_work_years"),
        ({"age": -1}, "age"),
        ({"age": "29"}, "age"),
        ({"sibling_in_canada": "yes"}, "sibling_in_canada"),
        ({"spouse": {"education_level": "masters", "clb": None, "canadian_work_years": -1}},
         "spouse.canadian_work_years"),
        ({"first_language": english(9, "de")}, "first_language.language"),
        ({"unexpected": 1}, "unexpected"),
    ],
)  # fmt: skip
async def test_invalid_input_is_a_422_problem_naming_the_field(changes: dict[str, Any], field: str) -> None:
    body_ = problem(await calc(body(**changes)), 422)
    assert body_["status"] == 422
    assert field in [error["field"] for error in body_["errors"]], body_


async def test_a_missing_field_and_cross_field_errors_are_422s() -> None:
    payload = body()
    del payload["age"]
    assert "age" in [e["field"] for e in problem(await calc(payload), 422)["errors"]]
    same = body(second_language=copy.deepcopy(CALCULATOR_EXAMPLE["first_language"]))
    errors = problem(await calc(same), 422)["errors"]
    assert errors == [
        {"field": "second_language", "message": "must be the other official language than first_language"}
    ]


async def test_the_openapi_document_has_the_examples() -> None:
    async with client(app_with()) as http:
        schema = (await http.get("/openapi.json")).json()
    request = schema["components"]["schemas"]["CalculatorRequest"]
    # (FastAPI leaves the null members out of a schema example)
    assert request["examples"][0] == {
        key: value for key, value in CALCULATOR_EXAMPLE.items() if value is not None
    }
