"""Education as of a day: the CRS level of the highest credential, and the Canadian credential bonus."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from shared.rules.document import Eca, EducationCredential, whole_years_between
from shared.rules.factors import CanadianEducation, EducationLevel

ECA_VALID_YEARS = 5  # crs-rules.md §0 and §4: an ECA stops counting once 5 years old

# Lowest to highest, the order "highest credential" follows (crs-rules.md §1.3).
LEVEL_ORDER = (
    EducationLevel.LESS_THAN_SECONDARY,
    EducationLevel.SECONDARY,
    EducationLevel.ONE_YEAR,
    EducationLevel.TWO_YEAR,
    EducationLevel.BACHELORS,
    EducationLevel.TWO_OR_MORE,
    EducationLevel.MASTERS,
    EducationLevel.DOCTORAL,
)

_LEVEL_OF: dict[str, EducationLevel] = {
    "less_than_secondary": EducationLevel.LESS_THAN_SECONDARY,
    "secondary": EducationLevel.SECONDARY,
    "one_year": EducationLevel.ONE_YEAR,
    "two_year": EducationLevel.TWO_YEAR,
    "bachelors": EducationLevel.BACHELORS,
    "masters": EducationLevel.MASTERS,
    "professional_degree": EducationLevel.MASTERS,  # the CRS scores it with the master's
    "doctoral": EducationLevel.DOCTORAL,
}
_NOT_POST_SECONDARY = frozenset({"less_than_secondary", "secondary"})


def rank(level: EducationLevel) -> int:
    return LEVEL_ORDER.index(level)


def is_post_secondary(credential: EducationCredential) -> bool:
    return credential.level not in _NOT_POST_SECONDARY


def is_three_years_or_longer(credential: EducationCredential) -> bool:
    """A bachelor's or higher, or any post-secondary program of 3 years or more."""
    if not is_post_secondary(credential):
        return False
    return credential.level not in ("one_year", "two_year") or credential.program_years >= 3


def credential_level(credential: EducationCredential) -> EducationLevel:
    """The CRS level of one credential; a one- or two-year level on a 3-year program counts as 3 years."""
    level = _LEVEL_OF[credential.level]
    if rank(level) < rank(EducationLevel.BACHELORS) and is_three_years_or_longer(credential):
        return EducationLevel.BACHELORS
    return level


def eca_is_valid(eca: Eca | None, as_of: date) -> bool:
    """Issued by `as_of` and not yet 5 years old (an ECA exactly 5 years old has expired)."""
    return (
        eca is not None
        and eca.issued_on <= as_of
        and whole_years_between(eca.issued_on, as_of) < ECA_VALID_YEARS
    )


def counted_credentials(credentials: Iterable[EducationCredential], as_of: date) -> list[EducationCredential]:
    """Credentials completed by `as_of`: Canadian ones, and foreign ones with a valid ECA."""
    return [
        credential
        for credential in credentials
        if credential.completed_on <= as_of and (credential.canadian or eca_is_valid(credential.eca, as_of))
    ]


def education_level(credentials: Iterable[EducationCredential], as_of: date) -> EducationLevel:
    """The CRS level of the highest counted credential, or two-or-more when that ranks higher."""
    counted = counted_credentials(credentials, as_of)
    levels = [credential_level(credential) for credential in counted]
    post_secondary = [credential for credential in counted if is_post_secondary(credential)]
    if len(post_secondary) >= 2 and any(is_three_years_or_longer(c) for c in post_secondary):
        levels.append(EducationLevel.TWO_OR_MORE)
    return max(levels, key=rank, default=EducationLevel.LESS_THAN_SECONDARY)


def canadian_education(credentials: Iterable[EducationCredential], as_of: date) -> CanadianEducation:
    """The highest Canadian post-secondary credential, for the additional CRS points (§1.9)."""
    canadian = [
        credential
        for credential in credentials
        if credential.canadian and credential.completed_on <= as_of and is_post_secondary(credential)
    ]
    if any(is_three_years_or_longer(credential) for credential in canadian):
        # Includes a Canadian master's, professional or doctoral degree of any length.
        return CanadianEducation.THREE_YEAR_OR_LONGER
    return CanadianEducation.ONE_OR_TWO_YEAR if canadian else CanadianEducation.NONE


def studied_two_years_in_canada(credentials: Iterable[EducationCredential], as_of: date) -> bool:
    """FSW adaptability: a completed Canadian program (secondary or higher) of at least 2 years."""
    return any(
        credential.canadian
        and credential.completed_on <= as_of
        and credential.level != "less_than_secondary"
        and credential.program_years >= 2
        for credential in credentials
    )
