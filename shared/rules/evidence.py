"""Evidence an invitation relied on that has expired by the day the application is filed.

An e-APR filed with expired language results is refused (crs-rules.md §2.1, canada.ca "Invitations to
apply"), and an ECA stops counting once 5 years old (§4). What the invitation relied on is what
counted on the day of the invitation: per official language the best valid result (the spouse's best
result as well), and the ECAs without which the education level of that day would be lower.
"""

from __future__ import annotations

from datetime import date

from shared.rules.document import FieldError, ProfileDocument, Spouse, accompanying_spouse, years_after
from shared.rules.education import ECA_VALID_YEARS, counted_credentials, education_level, rank
from shared.rules.language import best_by_language, best_valid, expires_on, spouse_language_points


def expired_evidence(doc: ProfileDocument, invited_on: date, filed_on: date) -> list[FieldError]:
    """Every language result and ECA the invitation relied on that has expired by `filed_on`."""
    people: list[tuple[str, ProfileDocument | Spouse]] = [("", doc)]
    spouse = accompanying_spouse(doc)
    if spouse is not None:
        people.append(("spouse.", spouse))
    errors: list[FieldError] = []
    for prefix, person in people:
        errors += _expired_results(prefix, person, invited_on, filed_on)
        errors += _expired_ecas(prefix, person, invited_on, filed_on)
    return errors


def _expired_results(
    prefix: str, person: ProfileDocument | Spouse, invited_on: date, filed_on: date
) -> list[FieldError]:
    tests = person.language_tests
    if prefix:  # the spouse's language factor: one result, in either language
        relied = [best_valid(tests, invited_on, points=spouse_language_points)]
    else:
        relied = list(best_by_language(tests, invited_on).values())
    errors = []
    for result in relied:
        if result is None or expires_on(result) > filed_on:
            continue
        index = next(i for i, test in enumerate(tests) if test is result)
        errors.append(
            FieldError(
                f"{prefix}language_tests.{index}",
                f"The {result.test} result of {result.taken_on} that the invitation relied on expired on "
                f"{expires_on(result)}, on or before the filing day {filed_on}: an application with expired "
                "language results is refused.",
            )
        )
    return errors


def _expired_ecas(
    prefix: str, person: ProfileDocument | Spouse, invited_on: date, filed_on: date
) -> list[FieldError]:
    credentials = person.education
    counted = {id(credential) for credential in counted_credentials(credentials, invited_on)}
    expiring = [
        index
        for index, credential in enumerate(credentials)
        if id(credential) in counted
        and not credential.canadian
        and credential.eca is not None
        and years_after(credential.eca.issued_on, ECA_VALID_YEARS) <= filed_on
    ]
    if not expiring:
        return []
    without = [credential for index, credential in enumerate(credentials) if index not in expiring]
    if rank(education_level(without, invited_on)) >= rank(education_level(credentials, invited_on)):
        return []  # the level the invitation relied on stands without them
    errors = []
    for index in expiring:
        eca = credentials[index].eca
        assert eca is not None
        errors.append(
            FieldError(
                f"{prefix}education.{index}.eca",
                f"The educational credential assessment of {eca.issued_on} that the invitation relied on "
                f"expired on {years_after(eca.issued_on, ECA_VALID_YEARS)}, on or before the filing day "
                f"{filed_on}: an application relying on an expired ECA is refused.",
            )
        )
    return errors
