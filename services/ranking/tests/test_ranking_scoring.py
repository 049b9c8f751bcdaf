"""Scoring a profile document as of a day, and the day its score may next change (pure)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from ranking_factories import DOB_416, DOB_INELIGIBLE, DOB_TURNS_30, SENIOR_MANAGER_OFFER, document

from ranking_service.domain.scoring import (
    CALENDAR_RECHECK,
    UnscorableProfile,
    next_rescore_on,
    parse_document,
    score_profile,
)
from shared.rules.crs import CURRENT_RULES, RULES_2020_10_27

DAY = date(2026, 6, 1)


def test_the_example_document_scores_with_the_shared_derivation() -> None:
    scored = score_profile(document(DOB_416), DAY, False, CURRENT_RULES)
    assert (scored.crs, scored.programs, scored.categories) == (416, ("fsw",), ())
    assert scored.breakdown["age"] == 94 and sum(scored.breakdown.values()) == 416
    assert scored.noc_codes == ("21231",) and scored.lowest_clb == {"en": 9}
    assert scored.citizenship == "IN" and scored.eligible


def test_a_nomination_adds_600_points_and_the_pnp_program() -> None:
    scored = score_profile(document(DOB_416), DAY, True, CURRENT_RULES)
    assert scored.crs == 1016 and scored.programs == ("fsw", "pnp")


def test_a_nominee_eligible_for_no_federal_program_is_not_eligible() -> None:
    scored = score_profile(document(DOB_INELIGIBLE), DAY, True, CURRENT_RULES)
    assert scored.programs == () and not scored.eligible


def test_the_job_offer_counts_only_under_the_old_rules() -> None:
    doc = document(DOB_416, job_offer=SENIOR_MANAGER_OFFER)
    old = score_profile(doc, DAY, False, RULES_2020_10_27)
    new = score_profile(doc, DAY, False, CURRENT_RULES)
    assert (old.crs - new.crs, old.rules_version, new.rules_version) == (200, "2020-10-27", "2025-03-25")


def test_a_birthday_changes_the_score_the_next_day() -> None:
    doc = document(DOB_TURNS_30)
    today = score_profile(doc, DAY, False, CURRENT_RULES)
    tomorrow = score_profile(doc, DAY + timedelta(days=1), False, CURRENT_RULES)
    assert today.crs - tomorrow.crs == 5  # 110 at 29, 105 at 30
    assert today.rescore_on <= DAY + timedelta(days=1)


def test_recent_work_is_looked_at_again_the_day_its_hours_may_cross_a_threshold() -> None:
    # The example's ongoing job makes 9 years of skilled work on 2026-06-19 (30/7 hours a day).
    doc = parse_document(document())
    assert next_rescore_on(doc, DAY) == date(2026, 6, 19)
    scored = score_profile(document(), DAY, False, CURRENT_RULES)
    assert scored.rescore_on == date(2026, 6, 19)
    # That day it stands on the threshold (any move may cross it); the day after, a year's hours away.
    assert next_rescore_on(doc, date(2026, 6, 19)) == date(2026, 6, 20)
    assert next_rescore_on(doc, date(2026, 6, 20)) == date(2026, 6, 20) + CALENDAR_RECHECK


def test_without_recent_work_only_calendar_dates_matter() -> None:
    doc = parse_document(document(DOB_416, work_experience=[]))
    # Next birthday 2027-03-14, test expiry 2027-02-08: both later than the 30-day re-check.
    assert next_rescore_on(doc, DAY) == DAY + CALENDAR_RECHECK
    assert next_rescore_on(doc, date(2027, 2, 1)) == date(2027, 2, 8)  # the language test stops counting
    assert next_rescore_on(doc, date(2027, 3, 1)) == date(2027, 3, 14)  # the birthday


def test_a_document_that_does_not_validate_is_unscorable() -> None:
    with pytest.raises(UnscorableProfile):
        score_profile({"date_of_birth": "1990-01-01"}, DAY, False, CURRENT_RULES)


def test_a_rules_version_taking_effect_is_a_day_to_score_again() -> None:
    doc = parse_document(document(DOB_416, work_experience=[]))
    assert next_rescore_on(doc, date(2025, 3, 20)) == date(2025, 3, 25)
