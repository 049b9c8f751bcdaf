"""What the profile needs from the shared rules: eligibility as of a day, reasons, dates to re-check.

The document travels as JSON (a dict) in the events; `parse` turns it into the pydantic model once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, Final

from shared.rules.document import ProfileDocument, Spouse, add_months, years_after
from shared.rules.education import ECA_VALID_YEARS
from shared.rules.eligibility import ProgramAssessment, assess, programs_passed
from shared.rules.language import expires_on
from shared.rules.programs import PROGRAM_ABBREVIATIONS

POOL_MONTHS: Final = 12
RECHECK_AT_LEAST_EVERY: Final = timedelta(days=7)
"""Eligibility also drifts with age and sliding experience windows: re-checked at least this often."""

PROGRAM_NAMES: Final = PROGRAM_ABBREVIATIONS


_PARSED_KEPT: Final = 32
"""Enough for the commands in flight (`shared.web.admission` lets 4 be worked on at once, each parsing
a few documents between its own two reads of one). Every document kept is a few hundred young objects
that each young collection walks again: 256 kept made the profile service's young collections take
~10 ms at 200 PUT/s (`bench.loop_stretches`)."""
_parsed: dict[int, tuple[dict[str, Any], ProfileDocument]] = {}
"""Documents parsed lately, by the identity of their dict (each kept with its dict, so that identity
cannot be reused while it is here), oldest first."""


def parse(document: dict[str, Any]) -> ProfileDocument:
    """The document as the pydantic model. A command reads the same document dict several times (its
    eligibility, then the review date of the projection row and of the event, then the answer's
    document), with awaits between them where other commands parse theirs: the last documents parsed
    are kept, by identity, so that each later call is free. Documents are replaced, never changed in
    place (events are immutable)."""
    kept = _parsed.get(id(document))
    if kept is not None and kept[0] is document:
        return kept[1]
    model = ProfileDocument.model_validate(document)
    remember(document, model)
    return model


def remember(document: dict[str, Any], model: ProfileDocument) -> None:
    """`document` is `model` dumped (`model_dump(mode="json")`), e.g. a request's body validated once:
    `parse(document)` answers `model` without validating the same document again."""
    if len(_parsed) >= _PARSED_KEPT:
        del _parsed[next(iter(_parsed))]
    _parsed[id(document)] = (document, model)


def assessments(document: dict[str, Any], today: date) -> dict[str, ProgramAssessment]:
    """FSW, CEC and FSTP assessments of the document on `today`."""
    return assess(parse(document), today)


def eligible(assessed: dict[str, ProgramAssessment]) -> list[str]:
    return programs_passed(assessed)


def eligible_on(document: dict[str, Any], today: date) -> list[str]:
    return eligible(assessments(document, today))


def reasons(assessed: dict[str, ProgramAssessment]) -> list[str]:
    """Every unmet requirement of every program, prefixed with the program's name."""
    return [
        f"{PROGRAM_NAMES.get(program, program)}: {reason}"
        for program, assessment in assessed.items()
        for reason in assessment.reasons
    ]


def pool_expiry(submitted_at: datetime) -> datetime:
    """A profile stays in the pool 12 months at most from its (first) submission."""
    return add_months(submitted_at, POOL_MONTHS)


def _validity_ends(person: ProfileDocument | Spouse) -> Iterator[date]:
    for test in person.language_tests:
        yield expires_on(test)
    for credential in person.education:
        if credential.eca is not None:
            yield years_after(credential.eca.issued_on, ECA_VALID_YEARS)


def next_recheck_on(document: dict[str, Any], today: date) -> date:
    """The next day eligibility may change: a test or ECA stops counting, or the periodic re-check."""
    doc = parse(document)
    people: list[ProfileDocument | Spouse] = [doc] if doc.spouse is None else [doc, doc.spouse]
    ends = [end for person in people for end in _validity_ends(person) if end > today]
    return min([*ends, today + RECHECK_AT_LEAST_EVERY])
