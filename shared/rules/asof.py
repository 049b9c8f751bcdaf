"""One profile document as of one day, each derived fact computed once (internal to `shared.rules`).

`derive_profile` needs the same facts many times: the language levels feed the FSW, CEC and FSTP
minimums, the FSW grid, the CRS factors, the French category and the lowest CLBs; the Canadian work
years feed the FSW adaptability factors and the CRS. The public functions of `eligibility`,
`categories` and `derive` keep their signatures and build an `AsOf` of their own; `derive_profile`
builds one and hands it to all of them, so each fact is computed once per derivation.

Every property is exactly the public function of the same name applied to the document and the day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Generic, TypeVar, overload

from shared.rules.document import ProfileDocument, Spouse, accompanying_spouse, whole_years_between
from shared.rules.education import canadian_education, education_level, studied_two_years_in_canada
from shared.rules.experience import (
    CecExperience,
    OccupationHours,
    cec_experience,
    crs_work_hours,
    longest_continuous_skilled_occupation,
    skilled_work_hours,
    trade_hours,
    whole_years,
)
from shared.rules.factors import CanadianEducation, Clb, EducationLevel, Language
from shared.rules.language import (
    DECLARED_LANGUAGES,
    best_by_language,
    best_valid,
    clb_of,
    spouse_language_points,
)

T = TypeVar("T")


class lazy(Generic[T]):
    """`functools.cached_property` without its lock (Python 3.11 takes one on every first access).

    The value lands in the instance's `__dict__` under the same name, so later reads never reach
    this descriptor. An `AsOf` lives inside one derivation on one thread: nothing to lock against.
    """

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> lazy[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | lazy[T]:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


class AsOf:
    """The facts of `doc` on `as_of`, computed on first use and kept for the rest of the derivation."""

    def __init__(self, doc: ProfileDocument, as_of: date) -> None:
        self.doc = doc
        self.as_of = as_of

    # --- the candidate -------------------------------------------------------------------------

    @lazy
    def age(self) -> int:
        return whole_years_between(self.doc.date_of_birth, self.as_of)

    @lazy
    def levels(self) -> dict[Language, Clb]:
        """`levels_by_language(doc.language_tests, as_of)`."""
        best = best_by_language(self.doc.language_tests, self.as_of)
        return {language: clb_of(result) for language, result in best.items()}

    @lazy
    def declared_first_language(self) -> Language | None:
        """The declared first official language when it has a valid result (None: not declared, or
        no valid result in it, so the choice is left to the rules)."""
        declared = DECLARED_LANGUAGES.get(self.doc.first_official_language or "")
        return declared if declared in self.levels else None

    @lazy
    def education_level(self) -> EducationLevel:
        return education_level(self.doc.education, self.as_of)

    @lazy
    def canadian_education(self) -> CanadianEducation:
        return canadian_education(self.doc.education, self.as_of)

    @lazy
    def studied_two_years_in_canada(self) -> bool:
        return studied_two_years_in_canada(self.doc.education, self.as_of)

    @lazy
    def crs_work_years(self) -> tuple[int, int]:
        """(Canadian, foreign) CRS experience under one weekly cap."""
        canadian, foreign = self.crs_work_hours
        return whole_years(canadian), whole_years(foreign)

    @lazy
    def crs_work_hours(self) -> tuple[float, float]:
        return crs_work_hours(self.doc.work_experience, self.as_of)

    @lazy
    def canadian_work_years(self) -> int:
        return self.crs_work_years[0]

    @lazy
    def foreign_work_years(self) -> int:
        return self.crs_work_years[1]

    @lazy
    def skilled_work_years(self) -> int:
        return whole_years(self.skilled_work_hours)

    @lazy
    def skilled_work_hours(self) -> float:
        return skilled_work_hours(self.doc.work_experience, self.as_of)

    @lazy
    def longest_continuous_skilled_occupation(self) -> OccupationHours | None:
        return longest_continuous_skilled_occupation(self.doc.work_experience, self.as_of)

    @lazy
    def cec_experience(self) -> CecExperience:
        return cec_experience(self.doc.work_experience, self.as_of)

    @lazy
    def trade_hours(self) -> list[OccupationHours]:
        return trade_hours(self.doc.work_experience, self.as_of)

    @lazy
    def job_noc_codes(self) -> frozenset[str]:
        """The occupations of the candidate's jobs (not the job offer's or the certificate's)."""
        return frozenset(job.noc_code for job in self.doc.work_experience)

    # --- the spouse who counts (accompanying, not a citizen or PR) -----------------------------

    @lazy
    def spouse(self) -> Spouse | None:
        return accompanying_spouse(self.doc)

    @lazy
    def spouse_clb(self) -> Clb | None:
        """Levels of the spouse's best valid result (most spouse points), in either language (None: none
        valid): the spouse factor has no first/second split."""
        spouse = self.spouse
        if spouse is None:
            return None
        best = best_valid(spouse.language_tests, self.as_of, points=spouse_language_points)
        return clb_of(best) if best is not None else None

    @lazy
    def spouse_education_level(self) -> EducationLevel:
        assert self.spouse is not None
        return education_level(self.spouse.education, self.as_of)

    @lazy
    def spouse_studied_two_years_in_canada(self) -> bool:
        assert self.spouse is not None
        return studied_two_years_in_canada(self.spouse.education, self.as_of)

    @lazy
    def spouse_canadian_work_years(self) -> int:
        return whole_years(self.spouse_canadian_work_hours)

    @lazy
    def spouse_canadian_work_hours(self) -> float:
        assert self.spouse is not None
        return crs_work_hours(self.spouse.work_experience, self.as_of)[0]
