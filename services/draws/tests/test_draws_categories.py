"""The list version a category round names: the version of the category lists in force that day."""

from __future__ import annotations

from datetime import date

import pytest

from draws_service.adapters.categories import RulesCategories
from draws_service.domain.model import RoundType
from draws_service.domain.record import round_name


@pytest.mark.parametrize(
    ("code", "on", "version"),
    [
        ("stem", date(2024, 6, 1), "2023"),  # the 2023 lists served 2024 too
        ("transport", date(2024, 6, 1), "2023"),
        ("transport", date(2025, 6, 1), None),  # no transport category in 2025
        ("healthcare", date(2025, 6, 1), "2025"),
        ("physicians", date(2025, 12, 8), "2025"),
        ("agriculture", date(2026, 9, 15), None),
        ("trades", date(2026, 9, 15), "2026"),
    ],
)
def test_a_category_round_names_the_list_version_in_force(code: str, on: date, version: str | None) -> None:
    assert RulesCategories().version_in_force(code, on) == version


def test_the_published_name_carries_the_list_version() -> None:
    assert round_name(RoundType.parse("stem"), "2023") == "STEM Occupations, 2023"
