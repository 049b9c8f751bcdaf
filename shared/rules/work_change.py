"""The first day on which work experience may change anything derived from a document (pure).

Work is counted in hours over a window ending on the as-of day (the last 3, 5 or 10 years), at most
30 hours a week (`experience`), and the rules read those hours only against thresholds:

- whole years (multiples of 1,560 hours): CRS Canadian and foreign experience, the spouse's Canadian
  experience, the FSW grid's experience;
- 1,560 hours: the FSWP's continuous year in one occupation, the CEC's year (and its TEER 2-3 year);
- 3,120 hours in one trade: the FSTP;
- N months of 130 hours in one listed occupation: an occupation category.

Each of these *measures* is treated as crossing at any positive multiple of its threshold (more
crossings than the rules have: an earlier look, never a later one). When the as-of day moves by one,
its window gains at most one day of work at its end and loses at most two at its start (a leap day), and
a day is at most 30/7 hours: gained only if a job of the measure is held at that end within the horizon,
lost only if one is held at the start. Until a measure could reach the multiple above it, or fall below
the one it stands on, nothing the rules read from work differs. The day this gives is a bound: the
facts may still be the same then, never different before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache, partial
from typing import Final

from shared.rules.asof import AsOf
from shared.rules.categories import CATEGORY_VERSIONS, CategoryVersion
from shared.rules.document import WorkExperience, last_years
from shared.rules.eligibility import FSTP_HOURS
from shared.rules.experience import (
    CATEGORY_WINDOW_YEARS,
    CEC_WINDOW_YEARS,
    CRS_WINDOW_YEARS,
    FSTP_WINDOW_YEARS,
    HOURS_PER_MONTH,
    HOURS_PER_YEAR,
    MAX_HOURS_PER_WEEK,
    crs_jobs,
    is_canadian_experience,
    is_fstp_trade,
    is_skilled,
    months_in_one_occupation,
)

MARGIN_HOURS: Final = 0.01
"""Kept from every threshold: the rules round hours (or months) at the sixth decimal before comparing."""


@dataclass(frozen=True, slots=True)
class Movement:
    """The most a measure's hours may move in a day over the horizon: gained at its window's end (a job
    of it held there), lost at its start."""

    gain: float
    loss: float


_Measure = tuple[Callable[[], float], float, int, Sequence[WorkExperience]]  # hours, step, window, jobs


def next_work_change(facts: AsOf, horizon_days: int) -> date:
    """The first day after `facts.as_of`, at most `horizon_days` later, on which a measure of work may
    cross a threshold (`as_of + horizon_days` when none can before)."""
    as_of, days = facts.as_of, horizon_days
    movements: dict[tuple[tuple[int, ...], int], Movement] = {}  # by jobs and window: measures share them
    for hours_of, step, window_years, jobs in _measures(facts):
        if not jobs:
            continue
        key = (tuple(map(id, jobs)), window_years)
        move = movements.get(key)
        if move is None:
            move = movements[key] = movement(jobs, window_years, as_of, horizon_days)
        if move.gain == 0 and move.loss == 0:
            continue  # nothing of it held at either end: it stays what it is (its hours not even needed)
        days = min(days, steady_days(hours_of(), step, move, days))
        if days <= 1:
            break
    return as_of + timedelta(days=days)


def movement(jobs: Iterable[WorkExperience], window_years: int, as_of: date, horizon_days: int) -> Movement:
    """How `jobs`' hours in the last `window_years` years may move on the days after `as_of`."""
    last = as_of + timedelta(days=horizon_days)
    first_now, first_last = last_years(as_of, window_years)[0], last_years(last, window_years)[0]
    return Movement(
        gain=_daily_hours(jobs, as_of + timedelta(days=1), last),
        loss=_daily_hours(jobs, first_now, first_last),  # the days its start slides over
    )


def steady_days(hours: float, step: float, move: Movement, horizon_days: int) -> int:
    """Days until the first one (1 to `horizon_days`) on which a measure of `hours` moving at most as
    `move` says may cross a multiple of `step`, up or down."""
    if move.gain == 0 and move.loss == 0:
        return horizon_days
    nearest = round(hours / step) * step
    if nearest > 0 and abs(hours - nearest) <= MARGIN_HOURS:
        return 1  # on a threshold, give or take the rules' rounding: any move may cross it
    below = math.floor(hours / step)  # the multiple it stands on (0: none)
    # In k days the window gains at most k days of work and loses at most k + 1 (a leap day).
    days = horizon_days
    if move.gain > 0:
        room_up = (below + 1) * step - hours - MARGIN_HOURS
        days = min(days, _first_reaching(room_up, move.gain, extra_days=0))
    if move.loss > 0 and below > 0:  # under the first multiple it has nothing to fall below
        room_down = hours - below * step - MARGIN_HOURS
        days = min(days, _first_reaching(room_down, move.loss, extra_days=1))
    return max(1, days)


def _first_reaching(room: float, per_day: float, *, extra_days: int) -> int:
    """The smallest k with (k + extra_days) * per_day >= room: the first day that may use up `room`."""
    if room <= 0:
        return 1
    return max(1, math.ceil(room / per_day) - extra_days)


def _daily_hours(jobs: Iterable[WorkExperience], first: date, last: date) -> float:
    """Most hours a day of `jobs` may count on a day from `first` to `last`: the capped weekly hours of
    every job held on any of those days, over 7."""
    weekly = sum(
        job.hours_per_week for job in jobs if job.start <= last and (job.end is None or job.end >= first)
    )
    return min(weekly, MAX_HOURS_PER_WEEK) / 7


def _measures(facts: AsOf) -> Iterator[_Measure]:
    """Every measure of work the rules read on `facts.as_of`: its hours (computed when asked), its
    threshold's step, its window and its jobs."""
    doc, as_of = facts.doc, facts.as_of
    jobs = doc.work_experience
    canadian, foreign = crs_jobs(jobs)
    yield (lambda: facts.crs_work_hours[0]), HOURS_PER_YEAR, CRS_WINDOW_YEARS, canadian
    yield (lambda: facts.crs_work_hours[1]), HOURS_PER_YEAR, CRS_WINDOW_YEARS, foreign
    skilled = [job for job in jobs if is_skilled(job)]
    yield (lambda: facts.skilled_work_hours), HOURS_PER_YEAR, CRS_WINDOW_YEARS, skilled
    yield _longest_hours(facts), HOURS_PER_YEAR, CRS_WINDOW_YEARS, skilled
    canadian_skilled = [job for job in skilled if is_canadian_experience(job)]
    yield (lambda: facts.cec_experience.hours), HOURS_PER_YEAR, CEC_WINDOW_YEARS, canadian_skilled
    teer_2_or_3 = [job for job in canadian_skilled if job.teer in (2, 3)]
    yield (lambda: facts.cec_experience.hours_teer_2_or_3), HOURS_PER_YEAR, CEC_WINDOW_YEARS, teer_2_or_3
    for noc_code in sorted({job.noc_code for job in jobs if is_fstp_trade(job.noc_code)}):
        held = [job for job in jobs if job.noc_code == noc_code]
        yield partial(_trade_hours, facts, noc_code), FSTP_HOURS, FSTP_WINDOW_YEARS, held
    codes = {job.noc_code for job in jobs}
    for version in _experience_categories(as_of):
        if codes.isdisjoint(version.occupations):
            continue
        eligible = [job for job in jobs if job.country == "CA"] if version.canadian_experience_only else jobs
        listed = [job for job in eligible if job.noc_code in version.occupations]
        if listed:
            assert version.experience is not None
            step = version.experience.months * HOURS_PER_MONTH
            yield partial(_listed_hours, listed, version, as_of), step, CATEGORY_WINDOW_YEARS, listed
    if facts.spouse is not None:
        spouse_canadian, _ = crs_jobs(facts.spouse.work_experience)
        yield (lambda: facts.spouse_canadian_work_hours), HOURS_PER_YEAR, CRS_WINDOW_YEARS, spouse_canadian


def _longest_hours(facts: AsOf) -> Callable[[], float]:
    def hours() -> float:
        longest = facts.longest_continuous_skilled_occupation
        return 0.0 if longest is None else longest.hours

    return hours


def _trade_hours(facts: AsOf, noc_code: str) -> float:
    return next((trade.hours for trade in facts.trade_hours if trade.noc_code == noc_code), 0.0)


def _listed_hours(listed: Sequence[WorkExperience], version: CategoryVersion, as_of: date) -> float:
    assert version.experience is not None
    continuous = version.experience.continuous
    return (
        months_in_one_occupation(listed, version.occupations, as_of, continuous=continuous) * HOURS_PER_MONTH
    )


@lru_cache(maxsize=64)
def _experience_categories(as_of: date) -> tuple[CategoryVersion, ...]:
    """The occupation categories in force on `as_of` (each with its experience rule)."""
    return tuple(v for v in CATEGORY_VERSIONS if v.experience is not None and v.in_force(as_of))
