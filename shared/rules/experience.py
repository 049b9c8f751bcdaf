"""Work experience as of a day: hours in a window, whole years, and the program-specific measures.

Hours are the unit everywhere (crs-rules.md §4): at most 30 hours a week count, over all jobs held at
the same time, and 1,560 hours (30 h x 52 weeks) make one year, so part-time work counts pro rata.
A job's `end` is its last day of work; a job without an end is still held on the as-of day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from shared.rules.document import WorkExperience, last_years

HOURS_PER_YEAR = 1560
HOURS_PER_MONTH = HOURS_PER_YEAR / 12
MAX_HOURS_PER_WEEK = 30
SKILLED_TEERS = frozenset({0, 1, 2, 3})
ONE_DAY = timedelta(days=1)

CRS_WINDOW_YEARS = 10  # CRS Canadian and foreign experience, and the FSWP
CEC_WINDOW_YEARS = 3
FSTP_WINDOW_YEARS = 5
CATEGORY_WINDOW_YEARS = 3


def is_skilled(job: WorkExperience) -> bool:
    return job.teer in SKILLED_TEERS


def is_canadian_experience(job: WorkExperience) -> bool:
    """Work in Canada that counts as Canadian experience: not self-employed, not as a full-time student."""
    return job.country == "CA" and not job.self_employed and not job.while_full_time_student


def counted_hours(jobs: Iterable[WorkExperience], first_day: date, last_day: date) -> float:
    """Hours worked from `first_day` to `last_day` inclusive, at most 30 a week across concurrent jobs."""
    spans = []
    for job in jobs:
        start, end = max(job.start, first_day), min(job.end or last_day, last_day)
        if start <= end:
            spans.append((start, end + ONE_DAY, job.hours_per_week))
    if not spans:
        return 0.0
    if len(spans) == 1:  # the sweep below with one stretch, the same float operations in the same order
        start, stop, per_week = spans[0]
        return 0.0 + min(0.0 + (0.0 + per_week), MAX_HOURS_PER_WEEK) * (stop - start).days / 7
    # Sweep the days on which the weekly hours change, and count each stretch at its capped rate.
    changes: dict[date, float] = defaultdict(float)
    for start, stop, per_week in spans:
        changes[start] += per_week
        changes[stop] -= per_week
    hours, weekly, previous = 0.0, 0.0, None
    for day in sorted(changes):
        if previous is not None:
            hours += min(weekly, MAX_HOURS_PER_WEEK) * (day - previous).days / 7
        weekly += changes[day]
        previous = day
    return hours


def whole_years(hours: float) -> int:
    # Rounding first keeps 52 weeks at 30 h from landing a hair under 1,560 after float sums.
    return math.floor(round(hours, 6) / HOURS_PER_YEAR)


def crs_work_years(jobs: Iterable[WorkExperience], as_of: date) -> tuple[int, int]:
    """CRS (Canadian, foreign) experience: skilled, last 10 years, whole years, one 30 h/week cap.

    The cap holds for all the work of a week together (crs-rules.md §4): a week of Canadian and foreign
    work at once counts 30 hours in all, not 30 of each. The Canadian work takes its share first (it
    is the experience worth more points, and the one the foreign columns of §1.8 are combined with);
    the foreign work counts only what is left under the cap.
    """
    canadian_hours, foreign_hours = crs_work_hours(jobs, as_of)
    return whole_years(canadian_hours), whole_years(foreign_hours)


def crs_work_hours(jobs: Iterable[WorkExperience], as_of: date) -> tuple[float, float]:
    """The hours `crs_work_years` counts in whole years: (Canadian, foreign)."""
    canadian, foreign = crs_jobs(jobs)
    first_day, last_day = last_years(as_of, CRS_WINDOW_YEARS)
    if not canadian or not foreign:
        return counted_hours(canadian, first_day, last_day), counted_hours(foreign, first_day, last_day)
    return _hours_under_one_cap(canadian, foreign, first_day, last_day)


def crs_jobs(jobs: Iterable[WorkExperience]) -> tuple[list[WorkExperience], list[WorkExperience]]:
    """The jobs counted as CRS Canadian experience, and those counted as foreign experience."""
    canadian, foreign = [], []
    for job in jobs:
        if not is_skilled(job):
            continue
        if job.country != "CA":
            foreign.append(job)
        elif is_canadian_experience(job):
            canadian.append(job)
    return canadian, foreign


def _hours_under_one_cap(
    first: Iterable[WorkExperience], then: Iterable[WorkExperience], first_day: date, last_day: date
) -> tuple[float, float]:
    """Hours of `first` and of `then` within one weekly cap, `first` served before `then`."""
    changes: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for index, group in enumerate((first, then)):
        for job in group:
            start, end = max(job.start, first_day), min(job.end or last_day, last_day)
            if start <= end:
                changes[start][index] += job.hours_per_week
                changes[end + ONE_DAY][index] -= job.hours_per_week
    hours, weekly, previous = [0.0, 0.0], [0.0, 0.0], None
    for day in sorted(changes):
        if previous is not None:
            days = (day - previous).days
            served = min(weekly[0], MAX_HOURS_PER_WEEK)
            hours[0] += served * days / 7
            hours[1] += min(weekly[1], MAX_HOURS_PER_WEEK - served) * days / 7
        weekly[0] += changes[day][0]
        weekly[1] += changes[day][1]
        previous = day
    return hours[0], hours[1]


def canadian_work_years(jobs: Iterable[WorkExperience], as_of: date) -> int:
    """CRS Canadian experience: skilled, in Canada, last 10 years, whole years."""
    return crs_work_years(jobs, as_of)[0]


def foreign_work_years(jobs: Iterable[WorkExperience], as_of: date) -> int:
    """CRS foreign experience: skilled, outside Canada, last 10 years, whole years, within the weekly
    cap left by Canadian work held at the same time."""
    return crs_work_years(jobs, as_of)[1]


def skilled_work_years(jobs: Iterable[WorkExperience], as_of: date) -> int:
    """FSW grid experience: skilled work anywhere in the last 10 years, whole years."""
    return whole_years(skilled_work_hours(jobs, as_of))


def skilled_work_hours(jobs: Iterable[WorkExperience], as_of: date) -> float:
    """The hours `skilled_work_years` counts in whole years."""
    first_day, last_day = last_years(as_of, CRS_WINDOW_YEARS)
    return counted_hours([job for job in jobs if is_skilled(job)], first_day, last_day)


# --- one occupation ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OccupationHours:
    noc_code: str
    hours: float


def _by_occupation(jobs: Iterable[WorkExperience], as_of: date) -> dict[str, list[WorkExperience]]:
    grouped: dict[str, list[WorkExperience]] = defaultdict(list)
    for job in jobs:
        if job.start <= as_of:
            grouped[job.noc_code].append(job)
    return grouped


def _continuous_runs(jobs: list[WorkExperience], as_of: date) -> list[list[WorkExperience]]:
    """Jobs grouped into stretches without a day off between them (overlapping or back to back)."""
    runs: list[list[WorkExperience]] = []
    run_end = date.min
    for job in sorted(jobs, key=lambda job: job.start):
        end = min(job.end or as_of, as_of)
        if runs and job.start <= run_end + ONE_DAY:
            runs[-1].append(job)
            run_end = max(run_end, end)
        else:
            runs.append([job])
            run_end = end
    return runs


def hours_per_occupation(
    jobs: Iterable[WorkExperience], as_of: date, years: int, *, continuous: bool
) -> list[OccupationHours]:
    """Per NOC code, the hours in the last `years` years: in total, or of its longest continuous stretch."""
    first_day, last_day = last_years(as_of, years)
    result = []
    for noc_code, held in sorted(_by_occupation(jobs, as_of).items()):
        runs = _continuous_runs(held, as_of) if continuous else [held]
        hours = max(counted_hours(run, first_day, last_day) for run in runs)
        result.append(OccupationHours(noc_code, hours))
    return result


def longest_continuous_skilled_occupation(
    jobs: Iterable[WorkExperience], as_of: date
) -> OccupationHours | None:
    """FSWP: the skilled occupation with the most continuous hours in the last 10 years."""
    candidates = hours_per_occupation(filter(is_skilled, jobs), as_of, CRS_WINDOW_YEARS, continuous=True)
    return max(candidates, key=lambda occupation: occupation.hours, default=None)


def months_in_one_occupation(
    jobs: Iterable[WorkExperience],
    occupations: Collection[str],
    as_of: date,
    *,
    continuous: bool,
    years: int = CATEGORY_WINDOW_YEARS,
) -> float:
    """Categories: the most full-time-equivalent months in any one of `occupations` (130 h = 1 month)."""
    listed = [job for job in jobs if job.noc_code in occupations]
    if not listed:
        return 0.0
    per_occupation = hours_per_occupation(listed, as_of, years, continuous=continuous)
    return max((occupation.hours for occupation in per_occupation), default=0.0) / HOURS_PER_MONTH


# --- CEC ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CecExperience:
    """Skilled Canadian experience in the last 3 years, split by the TEER that sets the language minimum."""

    hours: float  # TEER 0, 1, 2 or 3
    hours_teer_2_or_3: float  # enough of these alone lets CLB 5 suffice instead of CLB 7


def cec_experience(jobs: Iterable[WorkExperience], as_of: date) -> CecExperience:
    first_day, last_day = last_years(as_of, CEC_WINDOW_YEARS)
    canadian = [job for job in jobs if is_skilled(job) and is_canadian_experience(job)]
    teer_2_or_3 = [job for job in canadian if job.teer in (2, 3)]
    return CecExperience(
        hours=counted_hours(canadian, first_day, last_day),
        hours_teer_2_or_3=counted_hours(teer_2_or_3, first_day, last_day),
    )


# --- FSTP ---------------------------------------------------------------------------------------------

# IRPR s.87.2(1) as NOC 2021 code prefixes (crs-rules.md §3.5): major groups 72, 73, 82, 83, 92, 93;
# minor group 6320; unit group 62200; but not sub-major groups 726 or 932.
_TRADE_PREFIXES = ("72", "73", "82", "83", "92", "93", "6320", "62200")
_NOT_TRADE_PREFIXES = ("726", "932")


def is_fstp_trade(noc_code: str) -> bool:
    return noc_code.startswith(_TRADE_PREFIXES) and not noc_code.startswith(_NOT_TRADE_PREFIXES)


# crs-rules.md §1.8 C3: certificate-of-qualification points go only to a fixed list of trades, "101
# occupations" (orion-immigration, go4visa/Desloges, askkubeir; [T]). The facts file names the trades
# of the skilled-trades groups above and, beyond them, these five; a certificate in any other
# occupation earns no points, whatever the issuing body calls it.
CERTIFICATE_TRADES_BEYOND_FSTP = frozenset({"22114", "22212", "22311", "22312", "63210"})


def is_certificate_trade(noc_code: str) -> bool:
    """A trade in which a certificate of qualification earns skill-transferability points (§1.8 C3)."""
    return is_fstp_trade(noc_code) or noc_code in CERTIFICATE_TRADES_BEYOND_FSTP


def trade_hours(jobs: Iterable[WorkExperience], as_of: date) -> list[OccupationHours]:
    """FSTP: hours per skilled trade (NOC code) in the last 5 years, most first."""
    trades = [job for job in jobs if is_fstp_trade(job.noc_code)]
    per_trade = hours_per_occupation(trades, as_of, FSTP_WINDOW_YEARS, continuous=False)
    return sorted(per_trade, key=lambda trade: -trade.hours)
