"""Work experience: the 30 h/week cap, pro rata part-time, windows, and the per-program measures."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.rules.document import WorkExperience
from shared.rules.experience import (
    OccupationHours,
    canadian_work_years,
    cec_experience,
    counted_hours,
    foreign_work_years,
    is_fstp_trade,
    longest_continuous_skilled_occupation,
    months_in_one_occupation,
    skilled_work_years,
    trade_hours,
    whole_years,
)

AS_OF = date(2026, 6, 1)


def job(
    start: date,
    end: date | None,
    *,
    hours: float = 30,
    noc: str = "21231",
    country: str = "CA",
    self_employed: bool = False,
    student: bool = False,
) -> WorkExperience:
    return WorkExperience(
        noc_code=noc,
        teer=int(noc[1]),
        country=country,
        start=start,
        end=end,
        hours_per_week=hours,
        self_employed=self_employed,
        while_full_time_student=student,
    )


def weeks_from(start: date, weeks: int) -> date:
    """The last day of `weeks` whole weeks of work starting on `start`."""
    return start + timedelta(weeks=weeks, days=-1)


START = date(2024, 1, 1)


# --- hours, the cap and pro rata ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours_per_week", "weeks", "counted"),
    [
        (30, 52, 1560),
        (40, 52, 1560),  # hours above 30 a week do not count
        (15, 104, 1560),  # part-time pro rata: two years at 15 h are one year
        (15, 103, 1545),
        (0, 10, 0),
    ],
)
def test_hours_are_capped_at_30_a_week(hours_per_week: float, weeks: int, counted: float) -> None:
    work = job(START, weeks_from(START, weeks), hours=hours_per_week)
    assert counted_hours([work], date(2000, 1, 1), AS_OF) == pytest.approx(counted)


def test_the_cap_applies_to_concurrent_jobs_together() -> None:
    two_part_time = [job(START, weeks_from(START, 52), hours=20), job(START, weeks_from(START, 52), hours=20)]
    assert counted_hours(two_part_time, date(2000, 1, 1), AS_OF) == pytest.approx(1560)
    under_cap = [job(START, weeks_from(START, 52), hours=20), job(START, weeks_from(START, 52), hours=5)]
    assert counted_hours(under_cap, date(2000, 1, 1), AS_OF) == pytest.approx(25 * 52)


def test_an_ongoing_job_counts_up_to_the_as_of_day() -> None:
    assert counted_hours([job(START, None)], date(2000, 1, 1), weeks_from(START, 10)) == pytest.approx(300)


@pytest.mark.parametrize(("hours", "years"), [(1559.99, 0), (1560, 1), (3119, 1), (3120, 2), (7800, 5)])
def test_whole_years_are_floored(hours: float, years: int) -> None:
    assert whole_years(hours) == years


def test_a_year_is_52_weeks_of_full_time() -> None:
    assert canadian_work_years([job(START, weeks_from(START, 52))], AS_OF) == 1
    assert canadian_work_years([job(START, weeks_from(START, 52) - timedelta(days=1))], AS_OF) == 0


# --- the 10-year window and what counts as Canadian or foreign -----------------------------------------


def test_canadian_experience_counts_only_the_last_10_years() -> None:
    # The window of as_of 2026-06-01 starts on 2016-06-02.
    ended_just_before = job(date(2010, 1, 1), date(2016, 6, 1))
    assert canadian_work_years([ended_just_before], AS_OF) == 0
    straddling = job(date(2010, 1, 1), weeks_from(date(2016, 6, 2), 52))
    assert canadian_work_years([straddling], AS_OF) == 1


@pytest.mark.parametrize(
    ("work", "years"),
    [
        (job(date(2021, 1, 1), None), 5),
        (job(date(2021, 1, 1), None, self_employed=True), 0),
        (job(date(2021, 1, 1), None, student=True), 0),
        (job(date(2021, 1, 1), None, country="FR"), 0),
        (job(date(2021, 1, 1), None, noc="44101"), 0),  # TEER 4 is not skilled
        (job(date(2021, 1, 1), None, noc="00012"), 5),  # TEER 0 is
    ],
)
def test_what_counts_as_canadian_experience(work: WorkExperience, years: int) -> None:
    assert canadian_work_years([work], AS_OF) == years


def test_foreign_experience_is_skilled_work_outside_canada_in_10_years() -> None:
    jobs = [
        job(date(2012, 1, 1), weeks_from(date(2016, 6, 2), 3 * 52), country="IN"),  # 3 years in window
        job(date(2020, 1, 1), weeks_from(date(2020, 1, 1), 52), country="CA"),
        job(date(2021, 1, 1), weeks_from(date(2021, 1, 1), 52), country="IN", noc="65100"),  # TEER 5
    ]
    assert foreign_work_years(jobs, AS_OF) == 3
    assert canadian_work_years(jobs, AS_OF) == 1
    assert skilled_work_years(jobs, AS_OF) == 4


def test_the_cap_applies_to_canadian_and_foreign_work_together() -> None:
    # Two years of 30 h/week in Canada while also working 30 h/week for a foreign employer: the week
    # holds 30 counted hours in all, and they go to the Canadian job (worth more points).
    days = (date(2023, 1, 1), date(2024, 12, 31))
    both = [job(*days), job(*days, country="IN")]
    assert (canadian_work_years(both, AS_OF), foreign_work_years(both, AS_OF)) == (2, 0)


def test_foreign_work_fills_what_the_canadian_work_leaves_under_the_cap() -> None:
    # Three years of 20 h/week in Canada plus 20 h/week abroad: 20 + 10 counted a week, i.e. 2 years
    # Canadian and 1 year foreign (not 2 and 2).
    days = (date(2023, 1, 1), date(2025, 12, 31))
    both = [job(*days, hours=20), job(*days, hours=20, country="FR")]
    assert (canadian_work_years(both, AS_OF), foreign_work_years(both, AS_OF)) == (2, 1)


def test_future_work_is_not_counted() -> None:
    assert skilled_work_years([job(date(2026, 6, 2), None)], AS_OF) == 0


# --- FSWP: continuous in one occupation -------------------------------------------------------------------


def test_back_to_back_jobs_in_one_occupation_are_continuous() -> None:
    first = job(START, weeks_from(START, 26))
    second = job(START + timedelta(weeks=26), weeks_from(START, 52))
    assert longest_continuous_skilled_occupation([first, second], AS_OF) == OccupationHours("21231", 1560)


def test_a_day_off_between_jobs_breaks_continuity() -> None:
    first = job(START, weeks_from(START, 26))
    second = job(START + timedelta(weeks=26, days=1), weeks_from(START, 52) + timedelta(days=1))
    longest = longest_continuous_skilled_occupation([first, second], AS_OF)
    assert longest is not None and longest.hours == pytest.approx(780)


def test_different_occupations_are_not_added_up() -> None:
    first = job(START, weeks_from(START, 26), noc="21231")
    second = job(START + timedelta(weeks=26), weeks_from(START, 52), noc="21232")
    longest = longest_continuous_skilled_occupation([first, second], AS_OF)
    assert longest is not None and longest.hours == pytest.approx(780)


def test_continuous_part_time_counts_pro_rata() -> None:
    longest = longest_continuous_skilled_occupation([job(START, weeks_from(START, 104), hours=15)], AS_OF)
    assert longest == OccupationHours("21231", 1560)


def test_unskilled_work_is_not_an_fsw_occupation() -> None:
    assert longest_continuous_skilled_occupation([job(START, None, noc="44101")], AS_OF) is None


# --- CEC: 3 years, in Canada, split by TEER --------------------------------------------------------------


def test_cec_counts_skilled_canadian_work_in_the_last_3_years() -> None:
    # The window of as_of 2026-06-01 starts on 2023-06-02.
    jobs = [
        job(date(2020, 1, 1), date(2023, 6, 1)),  # entirely before the window
        job(date(2023, 6, 2), weeks_from(date(2023, 6, 2), 26), noc="21231"),  # TEER 1
        job(date(2024, 1, 1), weeks_from(date(2024, 1, 1), 52), noc="72410"),  # TEER 2
        job(date(2025, 1, 1), weeks_from(date(2025, 1, 1), 26), noc="72410", country="US"),
        job(date(2025, 6, 1), weeks_from(date(2025, 6, 1), 26), noc="72410", self_employed=True),
    ]
    experience = cec_experience(jobs, AS_OF)
    assert experience.hours == pytest.approx(780 + 1560)
    assert experience.hours_teer_2_or_3 == pytest.approx(1560)


# --- FSTP: trades, 5 years ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("noc", "trade"),
    [
        ("72100", True),
        ("72410", True),
        ("72600", False),  # sub-major group 726: transportation officers and controllers
        ("73300", True),
        ("82010", True),
        ("83100", True),
        ("92100", True),
        ("93100", True),
        ("93200", False),  # sub-major group 932: aircraft assemblers and inspectors
        ("63200", True),  # minor group 6320: cooks, butchers, bakers
        ("63202", True),
        ("63210", False),
        ("62200", True),  # chefs
        ("62201", False),
        ("21231", False),
    ],
)
def test_fstp_trade_groups(noc: str, trade: bool) -> None:
    assert is_fstp_trade(noc) is trade


def test_trade_hours_are_per_trade_within_5_years() -> None:
    # The window of as_of 2026-06-01 starts on 2021-06-02.
    jobs = [
        job(date(2019, 1, 1), date(2021, 6, 1), noc="72410"),
        job(date(2021, 6, 2), weeks_from(date(2021, 6, 2), 104), noc="72410"),
        job(date(2024, 1, 1), weeks_from(date(2024, 1, 1), 52), noc="72310"),
        job(date(2024, 1, 1), weeks_from(date(2024, 1, 1), 52), noc="21231"),
    ]
    assert trade_hours(jobs, AS_OF) == [OccupationHours("72410", 3120), OccupationHours("72310", 1560)]


# --- categories: months in one listed occupation ----------------------------------------------------------


def test_months_in_one_listed_occupation_continuous_or_not() -> None:
    # Two 26-week stretches (6 months each at 130 h a month) with a gap between them.
    jobs = [
        job(date(2024, 1, 1), weeks_from(date(2024, 1, 1), 26), noc="31102"),
        job(date(2025, 1, 1), weeks_from(date(2025, 1, 1), 26), noc="31102"),
        job(date(2024, 1, 1), weeks_from(date(2024, 1, 1), 52), noc="21231"),  # not listed
    ]
    listed = {"31102", "31100"}
    assert months_in_one_occupation(jobs, listed, AS_OF, continuous=False) == pytest.approx(12)
    assert months_in_one_occupation(jobs, listed, AS_OF, continuous=True) == pytest.approx(6)


def test_months_only_count_the_last_3_years() -> None:
    old = [job(date(2022, 1, 1), date(2023, 6, 1), noc="31102")]
    assert months_in_one_occupation(old, {"31102"}, AS_OF, continuous=False) == 0
