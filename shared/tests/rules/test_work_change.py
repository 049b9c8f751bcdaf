"""The first day on which work may change a derived fact: a bound never later than the change, checked
day by day against the whole derivation for documents whose work sits near every kind of threshold."""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta
from typing import Any

from shared.rules.asof import AsOf
from shared.rules.categories import CATEGORY_VERSIONS
from shared.rules.crs import calculate, rules_for_day
from shared.rules.derive import derive_profile
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE, ProfileDocument, WorkExperience
from shared.rules.experience import HOURS_PER_YEAR, skilled_work_years
from shared.rules.work_change import movement, next_work_change, steady_days

AS_OF = date(2026, 6, 1)
HORIZON = 30


def _job(
    start: date, end: date | None, hours: float = 40, noc: str = "21231", country: str = "IN"
) -> WorkExperience:
    return WorkExperience(
        noc_code=noc, teer=int(noc[1]), country=country, start=start, end=end, hours_per_week=hours,
        self_employed=False, while_full_time_student=False,
    )  # fmt: skip


def _steady(hours: float, jobs: list[WorkExperience], horizon: int) -> int:
    """`steady_days` of `hours` of `jobs` in the last 10 years, read against whole years."""
    return steady_days(hours, HOURS_PER_YEAR, movement(jobs, 10, AS_OF, horizon), horizon)


def test_a_measure_with_no_job_held_at_either_end_of_its_window_stays_put() -> None:
    # Three years of work, ended two years ago, inside the 10-year window: nothing enters or leaves.
    ended = _job(AS_OF - timedelta(days=5 * 365), AS_OF - timedelta(days=2 * 365))
    assert movement([ended], 10, AS_OF, HORIZON).gain == movement([ended], 10, AS_OF, HORIZON).loss == 0
    assert _steady(1559.0, [ended], HORIZON) == HORIZON  # an hour under a threshold, and still


def test_an_ongoing_full_time_job_reaches_the_next_year_on_the_day_it_is_counted() -> None:
    # 30/7 hours a day counted: 43 hours short of 1,560 is the 11th day (10 days give 42.86).
    ongoing = _job(AS_OF - timedelta(days=300), None)
    assert _steady(1517.0, [ongoing], HORIZON) == 11
    assert _steady(1517.0, [ongoing], 5) == 5  # the horizon first


def test_on_a_threshold_any_move_may_cross_it() -> None:
    ongoing = _job(AS_OF - timedelta(days=400), None)
    assert _steady(2 * HOURS_PER_YEAR + 0.000_000_1, [ongoing], HORIZON) == 1
    assert _steady(HOURS_PER_YEAR - 0.000_000_1, [ongoing], HORIZON) == 1


def test_work_leaving_the_window_falls_below_the_multiple_it_stands_on() -> None:
    # A job held 11 years ago to 9 years ago: the window's first day drops one of its days each day.
    first_day = AS_OF - timedelta(days=3653)
    leaving = _job(first_day - timedelta(days=400), first_day + timedelta(days=300))
    # 20 hours above the multiple: at 30/7 a day (and one extra day for a leap day), the 4th day.
    assert _steady(HOURS_PER_YEAR + 20, [leaving], HORIZON) == 4
    # Under the first multiple there is nothing to fall below.
    assert _steady(HOURS_PER_YEAR - 20, [leaving], HORIZON) == HORIZON


def test_the_example_is_looked_at_again_the_day_its_experience_reaches_nine_years() -> None:
    doc = ProfileDocument.model_validate(PROFILE_DOCUMENT_EXAMPLE)
    years = skilled_work_years(doc.work_experience, AS_OF)
    first_change = next(
        AS_OF + timedelta(days=k)
        for k in range(1, 400)
        if skilled_work_years(doc.work_experience, AS_OF + timedelta(days=k)) != years
    )
    assert next_work_change(AsOf(doc, AS_OF), HORIZON) == first_change == date(2026, 6, 19)


# --- the bound against the derivation, day by day -------------------------------------------------


def _category_noc(on: date) -> str:
    """A NOC code listed by an occupation category in force on `on`."""
    version = next(v for v in CATEGORY_VERSIONS if v.experience is not None and v.in_force(on))
    return sorted(version.occupations)[0]


def _random_document(rng: random.Random) -> dict[str, Any]:
    """A valid document whose jobs put their hours near whole years, 1,560 h, 3,120 h in a trade or a
    category's months, in Canada or abroad, held at the window's end, its start, or both."""
    nocs = ["21231", "72010", _category_noc(AS_OF), "62200", "65200"]
    jobs = []
    for _ in range(rng.randint(1, 3)):
        years_ago = rng.choice([0.5, 1, 2, 3, 5, 9.9, 10, 10.1])
        start = AS_OF - timedelta(days=int(years_ago * 365.25) + rng.randint(-40, 40))
        end = None if rng.random() < 0.5 else min(AS_OF, start + timedelta(days=rng.randint(30, 1500)))
        noc = rng.choice(nocs)
        jobs.append({
            "noc_code": noc, "teer": int(noc[1]), "country": rng.choice(["CA", "CA", "IN"]),
            "start": start.isoformat(), "end": end and end.isoformat(),
            "hours_per_week": rng.choice([15, 20, 30, 40, 45]), "self_employed": False,
            "while_full_time_student": False,
        })  # fmt: skip
    doc = copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)
    doc["work_experience"] = jobs
    if rng.random() < 0.3:
        doc["marital_status"] = "married"
        doc["family_size"] = 2
        doc["spouse"] = {
            "accompanying": True,
            "canadian_citizen_or_pr": False,
            "work_experience": [{**rng.choice(jobs), "country": "CA"}],
        }
    return doc


def _results(doc: ProfileDocument, day: date) -> tuple[Any, ...]:
    derived = derive_profile(doc, day, False, explain=False)
    crs = calculate(derived.factors, rules_for_day(None, day))
    return crs.total, derived.programs, derived.categories, derived.lowest_clb


def test_no_derived_fact_changes_before_the_day_given() -> None:
    rng = random.Random(20261208)
    bounds, changed = [], 0
    for _ in range(600):
        doc = ProfileDocument.model_validate(_random_document(rng))
        day0 = AS_OF - timedelta(days=rng.randint(0, 60))
        bound = (next_work_change(AsOf(doc, day0), HORIZON) - day0).days
        bounds.append(bound)
        before = _results(doc, day0)
        for k in range(1, HORIZON + 1):
            after = _results(doc, day0 + timedelta(days=k))
            if after != before:
                changed += 1
                # Calendar dates move facts too (a birthday, a test expiring): none falls in here.
                assert k >= bound, (doc.work_experience, day0, k, bound, before, after)
                break
    assert changed >= 30  # the documents do cross thresholds within the horizon
    assert sum(1 for bound in bounds if bound > 1) >= len(bounds) // 3  # and the bound is not "tomorrow"
