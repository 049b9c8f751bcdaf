"""Education: CRS level, ECA validity (5 years), two-or-more, and the Canadian credential bonus."""

from __future__ import annotations

from datetime import date

import pytest

from shared.rules.document import CredentialLevel, Eca, EducationCredential
from shared.rules.education import (
    canadian_education,
    counted_credentials,
    credential_level,
    eca_is_valid,
    education_level,
    studied_two_years_in_canada,
)
from shared.rules.factors import CanadianEducation, EducationLevel

AS_OF = date(2026, 6, 1)
ECA_ISSUED = date(2024, 1, 15)


def canadian(
    level: CredentialLevel, years: float, completed_on: date = date(2020, 6, 1)
) -> EducationCredential:
    return EducationCredential(
        level=level, program_years=years, completed_on=completed_on, country="CA", canadian=True
    )


def foreign(
    level: CredentialLevel, years: float, eca_issued: date | None = ECA_ISSUED
) -> EducationCredential:
    eca = Eca(organization="WES", issued_on=eca_issued) if eca_issued else None
    return EducationCredential(
        level=level, program_years=years, completed_on=date(2015, 6, 1), country="IN", canadian=False, eca=eca
    )


@pytest.mark.parametrize(
    ("level", "years", "expected"),
    [
        ("less_than_secondary", 0, EducationLevel.LESS_THAN_SECONDARY),
        ("secondary", 4, EducationLevel.SECONDARY),  # secondary is never "3 years or longer"
        ("one_year", 1, EducationLevel.ONE_YEAR),
        ("two_year", 2, EducationLevel.TWO_YEAR),
        ("two_year", 3, EducationLevel.BACHELORS),  # a 3-year diploma scores as a 3-year credential
        ("one_year", 3.5, EducationLevel.BACHELORS),
        ("bachelors", 3, EducationLevel.BACHELORS),
        ("bachelors", 2, EducationLevel.BACHELORS),  # a bachelor's counts whatever its length
        ("masters", 1, EducationLevel.MASTERS),
        ("professional_degree", 4, EducationLevel.MASTERS),
        ("doctoral", 4, EducationLevel.DOCTORAL),
    ],
)
def test_each_credential_maps_to_its_crs_level(
    level: CredentialLevel, years: float, expected: EducationLevel
) -> None:
    assert credential_level(canadian(level, years)) == expected
    assert education_level([canadian(level, years)], AS_OF) == expected


@pytest.mark.parametrize(
    ("issued_on", "valid"),
    [
        (date(2021, 6, 1), False),  # exactly 5 years old on the as-of day: expired
        (date(2021, 6, 2), True),  # one day short of 5 years
        (AS_OF, True),
        (date(2026, 6, 2), False),  # not issued yet
    ],
)
def test_an_eca_counts_for_5_years(issued_on: date, valid: bool) -> None:
    assert eca_is_valid(Eca(organization="WES", issued_on=issued_on), AS_OF) is valid
    expected = EducationLevel.BACHELORS if valid else EducationLevel.LESS_THAN_SECONDARY
    assert education_level([foreign("bachelors", 4, issued_on)], AS_OF) == expected


def test_a_foreign_credential_without_an_eca_does_not_count() -> None:
    assert education_level([foreign("masters", 2, None)], AS_OF) == EducationLevel.LESS_THAN_SECONDARY
    assert counted_credentials([foreign("masters", 2, None), canadian("one_year", 1)], AS_OF) == [
        canadian("one_year", 1)
    ]


def test_a_credential_completed_after_the_as_of_day_does_not_count_yet() -> None:
    later = canadian("masters", 2, completed_on=date(2026, 6, 2))
    assert education_level([canadian("bachelors", 4), later], AS_OF) == EducationLevel.BACHELORS


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ([canadian("bachelors", 4), canadian("one_year", 1)], EducationLevel.TWO_OR_MORE),
        ([canadian("bachelors", 4), foreign("bachelors", 3)], EducationLevel.TWO_OR_MORE),
        ([canadian("two_year", 3), canadian("one_year", 1)], EducationLevel.TWO_OR_MORE),
        ([canadian("two_year", 2), canadian("one_year", 1)], EducationLevel.TWO_YEAR),  # none of 3 years
        (
            [canadian("bachelors", 4), canadian("secondary", 4)],
            EducationLevel.BACHELORS,
        ),  # one post-secondary
        ([canadian("bachelors", 4), foreign("one_year", 1, None)], EducationLevel.BACHELORS),  # no ECA
        ([canadian("bachelors", 4), canadian("masters", 2)], EducationLevel.MASTERS),  # master's ranks higher
    ],
)
def test_two_or_more_credentials_one_of_3_years(
    credentials: list[EducationCredential], expected: EducationLevel
) -> None:
    assert education_level(credentials, AS_OF) == expected


def test_no_credential_is_less_than_secondary() -> None:
    assert education_level([], AS_OF) == EducationLevel.LESS_THAN_SECONDARY


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ([], CanadianEducation.NONE),
        ([canadian("secondary", 4)], CanadianEducation.NONE),
        ([foreign("doctoral", 4)], CanadianEducation.NONE),
        ([canadian("one_year", 1)], CanadianEducation.ONE_OR_TWO_YEAR),
        ([canadian("two_year", 2)], CanadianEducation.ONE_OR_TWO_YEAR),
        ([canadian("two_year", 3)], CanadianEducation.THREE_YEAR_OR_LONGER),
        ([canadian("bachelors", 4)], CanadianEducation.THREE_YEAR_OR_LONGER),
        ([canadian("masters", 1)], CanadianEducation.THREE_YEAR_OR_LONGER),  # any length
        ([canadian("professional_degree", 2)], CanadianEducation.THREE_YEAR_OR_LONGER),
        ([canadian("doctoral", 1)], CanadianEducation.THREE_YEAR_OR_LONGER),
        ([canadian("one_year", 1), canadian("bachelors", 4)], CanadianEducation.THREE_YEAR_OR_LONGER),
        ([canadian("masters", 1, completed_on=date(2026, 7, 1))], CanadianEducation.NONE),
    ],
)
def test_canadian_education(credentials: list[EducationCredential], expected: CanadianEducation) -> None:
    assert canadian_education(credentials, AS_OF) == expected


def test_two_years_of_study_in_canada() -> None:
    assert studied_two_years_in_canada([canadian("two_year", 2)], AS_OF)
    assert studied_two_years_in_canada([canadian("secondary", 2)], AS_OF)
    assert not studied_two_years_in_canada([canadian("one_year", 1.5)], AS_OF)
    assert not studied_two_years_in_canada([foreign("bachelors", 4)], AS_OF)
