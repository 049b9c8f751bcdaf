"""Minimum entry criteria of the three federal programs as of a day (crs-rules.md §3).

Each assessment lists every unmet requirement as a sentence the candidate can act on, not only the
first, so a portal can show the whole to-do list at once. Scoring needs only whether a program is met:
`assess_facts(facts, explain=False)` checks the same requirements, in the same code, and lists each
unmet one as `UNEXPLAINED` instead of writing its sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from shared.rules.asof import AsOf
from shared.rules.document import JobOffer, LanguageTest, ProfileDocument
from shared.rules.education import rank
from shared.rules.experience import HOURS_PER_YEAR, SKILLED_TEERS, OccupationHours, is_fstp_trade
from shared.rules.factors import Clb, EducationLevel, Language
from shared.rules.language import expires_on

FSW_PASS_MARK = 67
FSTP_HOURS = 2 * HOURS_PER_YEAR
JOB_OFFER_MIN_MONTHS = 12

# Language minimums in all four abilities of a language (crs-rules.md §3.2, §3.4, §3.5).
FSW_MIN_CLB = 7
CEC_MIN_CLB_TEER_0_OR_1 = 7
CEC_MIN_CLB_TEER_2_OR_3 = 5
FSTP_MIN_CLB_SPEAKING_LISTENING = 5
FSTP_MIN_CLB_READING_WRITING = 4


UNEXPLAINED = "unmet (not explained: assessed with explain=False)"
"""The reason listed for each unmet requirement when the sentences were not asked for."""


@dataclass(frozen=True, slots=True)
class ProgramAssessment:
    eligible: bool
    reasons: list[str]  # every unmet requirement; empty when eligible
    points: int | None = None  # the FSW selection grid total; None for the other programs


# --- settlement funds (crs-rules.md §3.6) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettlementFundsTable:
    effective_from: date
    by_family_size: tuple[int, ...]  # CAD for a family of 1, 2, 3, ...
    each_extra_member: int


# Newest last. The facts file has only the table in force from 2025-07-07; earlier days use it too.
SETTLEMENT_FUNDS_TABLES = (
    SettlementFundsTable(
        effective_from=date(2025, 7, 7),
        by_family_size=(15_263, 19_001, 23_360, 28_362, 32_168, 36_280, 40_392),
        each_extra_member=4_112,
    ),
)


def settlement_funds_required(family_size: int, as_of: date) -> int:
    in_force = [table for table in SETTLEMENT_FUNDS_TABLES if table.effective_from <= as_of]
    table = in_force[-1] if in_force else SETTLEMENT_FUNDS_TABLES[0]
    listed = len(table.by_family_size)
    if family_size <= listed:
        return table.by_family_size[family_size - 1]
    return table.by_family_size[-1] + (family_size - listed) * table.each_extra_member


# --- job offers ----------------------------------------------------------------------------------------


def is_valid_job_offer(offer: JobOffer | None) -> bool:
    """Full-time, non-seasonal, at least a year (or permanent), backed by an LMIA or exempt from one."""
    return (
        offer is not None
        and offer.full_time
        and offer.non_seasonal
        and offer.lmia_or_exempt
        and (offer.duration_months is None or offer.duration_months >= JOB_OFFER_MIN_MONTHS)
    )


def is_arranged_employment(offer: JobOffer | None) -> bool:
    """A valid offer in a skilled (TEER 0-3) occupation: the FSW grid's arranged employment."""
    return offer is not None and is_valid_job_offer(offer) and offer.teer in SKILLED_TEERS


# --- FSW selection grid (crs-rules.md §3.3) ------------------------------------------------------------

_FSW_EDUCATION = {
    EducationLevel.DOCTORAL: 25,
    EducationLevel.MASTERS: 23,
    EducationLevel.TWO_OR_MORE: 22,
    EducationLevel.BACHELORS: 21,
    EducationLevel.TWO_YEAR: 19,
    EducationLevel.ONE_YEAR: 15,
    EducationLevel.SECONDARY: 5,
    EducationLevel.LESS_THAN_SECONDARY: 0,
}
FSW_FULL_AGE_POINTS = 12  # ages 18 to 35
FSW_FULL_AGE = range(18, 36)
_FSW_AGE_36_TO_46 = {36: 11, 37: 10, 38: 9, 39: 8, 40: 7, 41: 6, 42: 5, 43: 4, 44: 3, 45: 2, 46: 1}
# First official language points per ability, by CLB (below FSW_MIN_CLB: ineligible, so none).
FSW_FIRST_LANGUAGE_POINTS = {7: 4, 8: 5, 9: 6}
FSW_FIRST_LANGUAGE_TOP_CLB = 9  # CLB 9 or more: the top row
FSW_SECOND_LANGUAGE_POINTS = 4  # for CLB 5+ in all four abilities of the second language
FSW_SECOND_LANGUAGE_MIN_CLB = 5
FSW_EXPERIENCE_POINTS = {0: 0, 1: 9, 2: 11, 3: 11, 4: 13, 5: 13}
FSW_EXPERIENCE_TOP = (6, 15)  # 6 years or more: 15 points
FSW_ARRANGED_EMPLOYMENT_POINTS = 10
FSW_ADAPTABILITY_CAP = 10
# Adaptability factors (§3.3), each counted once; the section is capped at FSW_ADAPTABILITY_CAP.
ADAPTABILITY_OWN_STUDY = 5
ADAPTABILITY_OWN_CANADIAN_WORK = 10  # 1 year or more of skilled work in Canada
ADAPTABILITY_ARRANGED_EMPLOYMENT = 5
ADAPTABILITY_RELATIVE = 5
ADAPTABILITY_SPOUSE_LANGUAGE = 5
ADAPTABILITY_SPOUSE_LANGUAGE_MIN_CLB = 4
ADAPTABILITY_SPOUSE_STUDY = 5
ADAPTABILITY_SPOUSE_CANADIAN_WORK = 5


@dataclass(frozen=True, slots=True)
class FswGrid:
    language: int
    education: int
    experience: int
    age: int
    arranged_employment: int
    adaptability: int

    @property
    def total(self) -> int:
        return (
            self.language
            + self.education
            + self.experience
            + self.age
            + self.arranged_employment
            + self.adaptability
        )


def fsw_grid(doc: ProfileDocument, as_of: date) -> FswGrid:
    return fsw_grid_of(AsOf(doc, as_of))


def fsw_grid_of(facts: AsOf) -> FswGrid:
    return FswGrid(
        language=fsw_language_points(facts.levels, facts.declared_first_language),
        education=_FSW_EDUCATION[facts.education_level],
        experience=fsw_experience_points(facts.skilled_work_years),
        age=fsw_age_points(facts.age),
        arranged_employment=(
            FSW_ARRANGED_EMPLOYMENT_POINTS if is_arranged_employment(facts.doc.job_offer) else 0
        ),
        adaptability=_adaptability_points(facts),
    )


def fsw_language_points(levels: dict[Language, Clb], first: Language | None = None) -> int:
    """First official language per ability (max 24) + 4 for CLB 5+ in all of the second (max 28).

    `first`: the candidate's declared first official language. Undeclared, we take the choice that
    meets the CLB 7 minimum and, among those, scores most.
    """
    choices = [
        (
            first_levels.lowest() >= FSW_MIN_CLB,
            _first_language_grid_points(first_levels) + _second_language_grid_points(levels, name),
        )
        for name, first_levels in levels.items()
        if first is None or name == first
    ]
    return max(choices, default=(False, 0))[1]


def _first_language_grid_points(clb: Clb) -> int:
    return sum(_fsw_ability_points(level) for level in clb.abilities())


def _fsw_ability_points(level: int) -> int:
    # Below CLB 7 the candidate is ineligible anyway, so such an ability earns nothing.
    return FSW_FIRST_LANGUAGE_POINTS.get(min(level, FSW_FIRST_LANGUAGE_TOP_CLB), 0)


def _second_language_grid_points(levels: dict[Language, Clb], first: Language) -> int:
    others = [clb for name, clb in levels.items() if name != first]
    if others and others[0].lowest() >= FSW_SECOND_LANGUAGE_MIN_CLB:
        return FSW_SECOND_LANGUAGE_POINTS
    return 0


def fsw_experience_points(years: int) -> int:
    top_years, top_points = FSW_EXPERIENCE_TOP
    return top_points if years >= top_years else FSW_EXPERIENCE_POINTS[years]


def fsw_age_points(age: int) -> int:
    if age in FSW_FULL_AGE:
        return FSW_FULL_AGE_POINTS
    return _FSW_AGE_36_TO_46.get(age, 0)


def _adaptability_points(facts: AsOf) -> int:
    doc = facts.doc
    own = [
        (facts.studied_two_years_in_canada, ADAPTABILITY_OWN_STUDY),
        (facts.canadian_work_years >= 1, ADAPTABILITY_OWN_CANADIAN_WORK),
        (is_arranged_employment(doc.job_offer), ADAPTABILITY_ARRANGED_EMPLOYMENT),
        # A sibling is one of the listed relatives.
        (doc.relative_in_canada or doc.sibling_in_canada, ADAPTABILITY_RELATIVE),
    ]
    spouse_factors: list[tuple[bool, int]] = []
    if facts.spouse is not None:
        spouse_clb = facts.spouse_clb
        spouse_factors = [
            (
                spouse_clb is not None and spouse_clb.lowest() >= ADAPTABILITY_SPOUSE_LANGUAGE_MIN_CLB,
                ADAPTABILITY_SPOUSE_LANGUAGE,
            ),
            (facts.spouse_studied_two_years_in_canada, ADAPTABILITY_SPOUSE_STUDY),
            (facts.spouse_canadian_work_years >= 1, ADAPTABILITY_SPOUSE_CANADIAN_WORK),
        ]
    earned = sum(points for met, points in own + spouse_factors if met)
    return min(earned, FSW_ADAPTABILITY_CAP)


# --- requirements shared by the programs ------------------------------------------------------------


def _quebec(doc: ProfileDocument, explain: bool = True) -> list[str]:
    if not doc.intends_to_reside_in_quebec:
        return []
    if not explain:
        return [UNEXPLAINED]
    return [
        "You plan to live in Quebec, which selects its own skilled workers: the federal programs need "
        "you to plan to live in another province or territory."
    ]


def _language(
    facts: AsOf,
    meets: Callable[[Clb], bool],
    requirement: str,
    *,
    first_only: bool = False,
    explain: bool = True,
) -> list[str]:
    """The minimum in English or French; with `first_only` (the FSWP: "first official language") in the
    declared first official language when the candidate declared one."""
    levels = facts.levels
    declared = facts.declared_first_language if first_only else None
    if declared is not None:
        if meets(levels[declared]):
            return []
        if not explain:
            return [UNEXPLAINED]
        status = _language_status(facts.doc.language_tests, levels, facts.as_of)
        return [
            f"You need {requirement} in your first official language ({_LANGUAGE_NAMES[declared]}), from "
            f"a test taken in the last 2 years; {status}"
        ]
    if any(meets(clb) for clb in levels.values()):
        return []
    if not explain:
        return [UNEXPLAINED]
    return [
        f"You need {requirement} in English or French, from a test taken in the last 2 years; "
        f"{_language_status(facts.doc.language_tests, levels, facts.as_of)}"
    ]


_LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "fr": "French"}


def _language_status(tests: Iterable[LanguageTest], levels: dict[Language, Clb], as_of: date) -> str:
    if levels:
        described = [
            f"{_LANGUAGE_NAMES[name]} {clb.listening}/{clb.reading}/{clb.writing}/{clb.speaking}"
            for name, clb in levels.items()
        ]
        return f"your levels (listening/reading/writing/speaking) are {', '.join(described)}."
    taken = [test for test in tests if test.taken_on <= as_of]
    if not taken:
        return "add a test result."
    latest = max(taken, key=lambda test: test.taken_on)
    return f"your {latest.test} result of {latest.taken_on} expired on {expires_on(latest)}; take a new test."


def _funds(doc: ProfileDocument, as_of: date, has_qualifying_offer: bool, explain: bool = True) -> list[str]:
    if doc.authorized_to_work_in_canada and has_qualifying_offer:
        return []  # exempt: can work in Canada now and has a valid job offer
    required = settlement_funds_required(doc.family_size, as_of)
    if doc.settlement_funds_cad >= required:
        return []
    if not explain:
        return [UNEXPLAINED]
    return [
        f"Show at least ${required:,} CAD in settlement funds for a family of {doc.family_size} "
        f"(you have ${doc.settlement_funds_cad:,}), unless you are authorized to work in Canada and "
        "have a valid job offer."
    ]


# --- the programs ----------------------------------------------------------------------------------------


def _assess_fsw(facts: AsOf, explain: bool = True) -> ProgramAssessment:
    doc, as_of = facts.doc, facts.as_of
    reasons = _quebec(doc, explain)
    occupation = facts.longest_continuous_skilled_occupation
    if occupation is None or occupation.hours < HOURS_PER_YEAR:
        reasons.append(_fsw_work_reason(occupation) if explain else UNEXPLAINED)
    reasons += _language(
        facts,
        lambda clb: clb.lowest() >= FSW_MIN_CLB,
        _FSW_LANGUAGE,
        first_only=True,
        explain=explain,
    )
    if rank(facts.education_level) < rank(EducationLevel.SECONDARY):
        reasons.append(
            UNEXPLAINED
            if not explain
            else "Add a completed secondary or post-secondary credential: a Canadian one, or a foreign one "
            "with an educational credential assessment (ECA) issued in the last 5 years."
        )
    grid = fsw_grid_of(facts)
    if grid.total < FSW_PASS_MARK:
        reasons.append(
            UNEXPLAINED
            if not explain
            else f"Your FSW selection grid score is {grid.total}/100 and the pass mark is {FSW_PASS_MARK}: "
            "better language results, an ECA for more education, or a job offer add points."
        )
    reasons += _funds(doc, as_of, is_arranged_employment(doc.job_offer), explain)
    return ProgramAssessment(eligible=not reasons, reasons=reasons, points=grid.total)


_FSW_LANGUAGE = f"CLB {FSW_MIN_CLB} in all four abilities"


def _fsw_work_reason(occupation: OccupationHours | None) -> str:
    longest = (
        f"your longest is {occupation.hours:,.0f} hours (NOC {occupation.noc_code})"
        if occupation
        else "you have none"
    )
    return (
        "You need 1 year (1,560 hours) of continuous full-time work, or the part-time equivalent, in "
        f"one TEER 0-3 occupation in the last 10 years; {longest}."
    )


def _assess_cec(facts: AsOf, explain: bool = True) -> ProgramAssessment:
    reasons = _quebec(facts.doc, explain)
    experience = facts.cec_experience
    if experience.hours < HOURS_PER_YEAR:
        reasons.append(
            UNEXPLAINED
            if not explain
            else "You need 1 year (1,560 hours) of skilled (TEER 0-3) work in Canada in the last 3 years, "
            "full-time or the part-time equivalent, not self-employed and not while a full-time student; "
            f"you have {experience.hours:,.0f} hours."
        )
        minimum = CEC_MIN_CLB_TEER_2_OR_3
        why = (
            f"CLB {minimum} in all four abilities (CLB {CEC_MIN_CLB_TEER_0_OR_1} for TEER 0 or 1 experience)"
        )
    elif experience.hours_teer_2_or_3 >= HOURS_PER_YEAR:
        minimum = CEC_MIN_CLB_TEER_2_OR_3
        why = f"CLB {minimum} in all four abilities"
    else:
        # Only a full year in TEER 2 or 3 alone lets CLB 5 suffice; TEER 0 or 1 work needs CLB 7.
        minimum = CEC_MIN_CLB_TEER_0_OR_1
        why = f"CLB {minimum} in all four abilities for TEER 0 or 1 experience"
    reasons += _language(facts, lambda clb: clb.lowest() >= minimum, why, explain=explain)
    return ProgramAssessment(eligible=not reasons, reasons=reasons)


def _assess_fst(facts: AsOf, explain: bool = True) -> ProgramAssessment:
    doc, as_of = facts.doc, facts.as_of
    reasons = _quebec(doc, explain)
    trades = facts.trade_hours
    qualified = {trade.noc_code for trade in trades if trade.hours >= FSTP_HOURS}
    if not qualified:
        reasons.append(_fst_work_reason(trades) if explain else UNEXPLAINED)
    elif not _offer_or_certificate_in(qualified, doc, as_of):
        reasons.append(
            UNEXPLAINED
            if not explain
            else "You need a valid full-time job offer of at least 1 year, or a Canadian certificate of "
            f"qualification, in your trade (NOC {', '.join(sorted(qualified))})."
        )
    reasons += _language(facts, _meets_fstp_language, _FSTP_LANGUAGE, explain=explain)
    reasons += _funds(doc, as_of, _is_trade_offer(doc.job_offer), explain)
    return ProgramAssessment(eligible=not reasons, reasons=reasons)


_FSTP_LANGUAGE = (
    f"CLB {FSTP_MIN_CLB_SPEAKING_LISTENING} in speaking and listening and "
    f"CLB {FSTP_MIN_CLB_READING_WRITING} in reading and writing"
)


def _fst_work_reason(trades: Sequence[OccupationHours]) -> str:
    most = (
        f"your most is {trades[0].hours:,.0f} hours (NOC {trades[0].noc_code})" if trades else "you have none"
    )
    return (
        "You need 2 years (3,120 hours) of full-time work, or the part-time equivalent, in one skilled "
        f"trade in the last 5 years; {most}."
    )


def _meets_fstp_language(clb: Clb) -> bool:
    return (
        min(clb.speaking, clb.listening) >= FSTP_MIN_CLB_SPEAKING_LISTENING
        and min(clb.reading, clb.writing) >= FSTP_MIN_CLB_READING_WRITING
    )


def _is_trade_offer(offer: JobOffer | None) -> bool:
    return offer is not None and is_valid_job_offer(offer) and is_fstp_trade(offer.noc_code)


def _offer_or_certificate_in(trades: set[str], doc: ProfileDocument, as_of: date) -> bool:
    offer, certificate = doc.job_offer, doc.certificate_of_qualification
    has_offer = offer is not None and is_valid_job_offer(offer) and offer.noc_code in trades
    has_certificate = (
        certificate is not None and certificate.issued_on <= as_of and certificate.noc_code in trades
    )
    return has_offer or has_certificate


def assess(doc: ProfileDocument, as_of: date) -> dict[str, ProgramAssessment]:
    """FSW, CEC and FSTP assessments, keyed by program code."""
    return assess_facts(AsOf(doc, as_of))


def assess_facts(facts: AsOf, *, explain: bool = True) -> dict[str, ProgramAssessment]:
    """`assess` over facts already (partly) derived: each is computed once for all three programs.

    `explain=False`: the same verdicts and points, each unmet requirement listed as `UNEXPLAINED`
    (scoring asks only which programs are met; the sentences cost more than the checks)."""
    return {
        "fsw": _assess_fsw(facts, explain),
        "cec": _assess_cec(facts, explain),
        "fst": _assess_fst(facts, explain),
    }


def eligible_programs(doc: ProfileDocument, as_of: date) -> list[str]:
    return programs_passed(assess(doc, as_of))


def programs_passed(assessments: dict[str, ProgramAssessment]) -> list[str]:
    return [program for program, assessment in assessments.items() if assessment.eligible]
