"""The codes and bins every service takes from shared.rules."""

from __future__ import annotations

from datetime import date

from shared.rules.categories import CATEGORY_CODES, CATEGORY_VERSIONS
from shared.rules.distribution import MAX_CRS, PUBLISHED_BINS, SCORE_BINS
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE, ProfileDocument
from shared.rules.eligibility import assess
from shared.rules.programs import FEDERAL_PROGRAMS, PROGRAM_ABBREVIATIONS, PROGRAM_PRIORITY, PROGRAMS


def test_score_bins_partition_the_whole_range_highest_first() -> None:
    covered = [score for low, high in reversed(SCORE_BINS) for score in range(low, high + 1)]
    assert covered == list(range(MAX_CRS + 1))
    assert len(PUBLISHED_BINS) == 17 and len(SCORE_BINS) == 15


def test_program_codes_agree_everywhere() -> None:
    assert set(PROGRAM_PRIORITY) == set(PROGRAMS) == set(PROGRAM_ABBREVIATIONS)
    assert set(FEDERAL_PROGRAMS) < set(PROGRAMS)
    example = ProfileDocument.model_validate(PROFILE_DOCUMENT_EXAMPLE)
    assert tuple(assess(example, date(2026, 3, 1))) == FEDERAL_PROGRAMS


def test_every_category_version_uses_a_known_code() -> None:
    assert {version.code for version in CATEGORY_VERSIONS} == set(CATEGORY_CODES)
