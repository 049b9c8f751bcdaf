"""A raw profile document (JSON-ready dict) read once, without pydantic, into the key of its scoring.

`read_facts` walks the document a single time and gives

- `key`: everything the CRS score, the programs, the categories and the lowest CLBs can depend on
  (with the day, see `shared.rules.derive`), and nothing else. Two documents with the same key get
  the same results from `derive_profile` + `calculate` on the same day, so a cache keyed by it can
  answer for a document it never saw. What is left out or reduced, and why that is exact:
    * the date of birth becomes the age on the day (the only use of it in the derivation);
    * citizenship, country of residence, identity, an ECA's organisation, an employer's name, a
      certificate's province: never read by the rules;
    * a test's name and scores become its language and its four levels (`language.clb_of`): the
      rules read the levels, the language and the day taken, never the raw scores;
    * a credential's country: never read (`canadian` is);
    * a job's country becomes "in Canada or not" (the only comparison the rules make);
    * settlement funds become "enough for the family size on the day" (`eligibility._funds`);
    * a NOC code becomes its first place in the document (so jobs in one occupation stay together,
      and an offer or certificate in a job's occupation stays so) and what the rules ask of a code:
      its skilled-trade groups, its major group 00, and the category lists holding it.
- what the result shows besides: the sorted NOC codes, the citizenship, and the dates on which the
  facts move (for `rescore_on`).

It is also a validator, a conservative one: it answers only for documents that are plainly valid
profile documents v1 (exact types, every bound and pattern and score scale of
`shared.rules.document` checked). Anything else (unknown keys, dates that are not plain
`YYYY-MM-DD` strings, numbers as dates, identity fields present, ...) gives None: then the caller
goes the reference way (pydantic, then the derivation), which decides.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import date
from typing import Any, Final, TypeVar, get_args

from pydantic import BaseModel

from shared.bounds import MAX_AMOUNT_CAD
from shared.rules.categories import categories_in_force
from shared.rules.derive import SENIOR_MANAGERS_MAJOR_GROUP
from shared.rules.document import (
    TEF_NEW_SCALE_FROM,
    CertificateOfQualification,
    CredentialLevel,
    Eca,
    EducationCredential,
    JobOffer,
    LanguageTest,
    MaritalStatus,
    OfficialLanguage,
    ProfileDocument,
    Province,
    Spouse,
    WorkExperience,
    _on_scale,
    score_scale,
    whole_years_between,
)
from shared.rules.eligibility import settlement_funds_required
from shared.rules.experience import is_certificate_trade, is_fstp_trade
from shared.rules.language import TEST_LANGUAGE, clb_of_scores
from shared.tracked import TrackedDict

__all__ = ["RawFacts", "forget_readings", "read_facts"]


def _fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(model.model_fields)


def _required(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, info in model.model_fields.items() if info.is_required())


# The document's shape, read off its models (one definition: the reader cannot drift from them).
_DOCUMENT_REQUIRED: Final = _required(ProfileDocument)
_DOCUMENT_KEYS: Final = _fields(ProfileDocument)
_SPOUSE_REQUIRED: Final = _required(Spouse)
_SPOUSE_KEYS: Final = _fields(Spouse)
_CREDENTIAL_REQUIRED: Final = _required(EducationCredential)
_CREDENTIAL_KEYS: Final = _fields(EducationCredential)
_ECA_KEYS: Final = _fields(Eca)
_TEST_KEYS: Final = _fields(LanguageTest)
_JOB_KEYS: Final = _fields(WorkExperience)
_CERTIFICATE_KEYS: Final = _fields(CertificateOfQualification)
_OFFER_KEYS: Final = _fields(JobOffer)
_MARITAL: Final = frozenset(get_args(MaritalStatus))
_LEVELS: Final = frozenset(get_args(CredentialLevel))
_PROVINCES: Final = frozenset(get_args(Province))
_OFFICIAL: Final = frozenset(get_args(OfficialLanguage))
_TEST_LANGUAGE: Final[dict[Any, str]] = dict(TEST_LANGUAGE)
_FOUR_BOOLS: Final = (bool, bool, bool, bool)
_NUMBER: Final = (int, float)  # StrictFloat takes both (never bool: its type is not int)


class _Unsure(Exception):
    """Not plainly valid: the reference way decides."""


class RawFacts:
    """One document read for scoring (see the module docstring)."""

    __slots__ = (
        "age",
        "calendar_dates",
        "citizenship",
        "date_of_birth",
        "eca_days",
        "key",
        "noc_codes",
        "test_days",
    )

    def __init__(self) -> None:
        self.key: tuple[Any, ...] = ()
        self.noc_codes: tuple[str, ...] = ()  # the candidate's jobs, job offer and certificate, sorted
        self.citizenship = ""
        self.date_of_birth = date.min
        self.age = 0
        self.calendar_dates: list[date] = []  # credentials completed, the certificate issued
        self.test_days: list[date] = []  # tests taken (candidate and spouse)
        self.eca_days: list[date] = []  # ECAs issued (candidate and spouse)


def read_facts(document: Mapping[str, Any], as_of: date) -> RawFacts | None:
    """`document` read for scoring on `as_of`, or None when it is not plainly a valid v1 document."""
    try:
        return _Reader(as_of).document(document)
    except _Unsure:
        return None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
        return None


_K = TypeVar("_K")
_V = TypeVar("_V")

_DATES: dict[str, date] = {}


def _remember(memo: dict[_K, _V], key: _K, value: _V, limit: int = 100_000) -> _V:
    """Keep `value` under `key` in a memo that never grows past `limit` (full: start it afresh; the
    readings repeat so much that a cleared memo fills again with what is still asked)."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value


def forget_readings() -> None:
    """Empty the memos of this module (benchmarks and tests start cold with it)."""
    _DATES.clear()
    _ABILITY_LEVELS.clear()
    _TEST_LEVELS.clear()
    _NOC_TRAITS.clear()
    _FUNDS.clear()


def _day(value: Any) -> date:
    """A plain `YYYY-MM-DD` string (what pydantic reads as the same date), else unsure."""
    day = _DATES.get(value) if type(value) is str else None
    if day is None:
        return _new_day(value)
    return day


def _new_day(value: Any) -> date:
    if type(value) is not str:
        raise _Unsure
    day = _DATES.get(value)
    if day is None:
        if len(value) != 10 or value[4] != "-" or value[7] != "-" or not value.isascii():
            raise _Unsure
        if not (value[:4].isdigit() and value[5:7].isdigit() and value[8:].isdigit()):
            raise _Unsure
        day = _remember(_DATES, value, date.fromisoformat(value))  # ValueError (30 February): unsure
    return day


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Unsure
    return value


def _int(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _Unsure
    return value


def _number(value: Any, low: float, high: float) -> float:
    if type(value) not in _NUMBER or not low <= value <= high:  # NaN fails the comparison
        raise _Unsure
    return value


def _country(value: Any) -> str:
    if (
        type(value) is not str
        or len(value) != 2
        or not (value.isascii() and value.isalpha() and value.isupper())
    ):
        raise _Unsure
    return value


def _noc(value: Any) -> str:
    if type(value) is not str or len(value) != 5 or not (value.isascii() and value.isdigit()):
        raise _Unsure
    return value


def _teer(value: Any, noc: str) -> int:
    if type(value) is not int or not 0 <= value <= 5 or int(noc[1]) != value:
        raise _Unsure
    return value


def _text(value: Any) -> None:
    # Text: stripped, 1 to 200 characters. Whatever Python strips includes what pydantic strips, so a
    # string non-empty once stripped here is non-empty there; 200 before stripping bounds both.
    if type(value) is not str or not 0 < len(value) <= 200 or not value.strip():
        raise _Unsure


def _choice(value: Any, allowed: frozenset[str]) -> str:
    if type(value) is not str or value not in allowed:
        raise _Unsure
    return value


def _keys(item: Any, allowed: frozenset[str], required: frozenset[str]) -> Mapping[str, Any]:
    if type(item) is not dict or not item.keys() <= allowed or not required <= item.keys():
        raise _Unsure
    return item


def _exact_keys(item: Any, keys: frozenset[str]) -> Mapping[str, Any]:
    """`_keys` of a model whose every field is required: one comparison."""
    if type(item) is not dict or item.keys() != keys:
        raise _Unsure
    return item


_NONE: Final[list[Any]] = []


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise _Unsure
    return value


_FUNDS: TrackedDict[tuple[int, date], int] = TrackedDict()


def _funds_required(family_size: int, as_of: date) -> int:
    key = (family_size, as_of)
    required = _FUNDS.get(key)
    if required is None:
        required = _remember(_FUNDS, key, settlement_funds_required(family_size, as_of), limit=10_000)
    return required


# What the rules ask of a NOC code on a day, beyond which other codes of the document equal it: per
# day, per code (a reader looks its day's dict up once).
_NOC_TRAITS: TrackedDict[date, TrackedDict[str, tuple[Any, ...]]] = TrackedDict()


def _traits_of_day(as_of: date) -> TrackedDict[str, tuple[Any, ...]]:
    traits = _NOC_TRAITS.get(as_of)
    if traits is None:
        traits = _remember(_NOC_TRAITS, as_of, TrackedDict(), limit=64)
    elif len(traits) >= 100_000:
        traits.clear()
    return traits


def _traits(noc: str, as_of: date) -> tuple[Any, ...]:
    return (
        is_fstp_trade(noc),
        is_certificate_trade(noc),
        noc.startswith(SENIOR_MANAGERS_MAJOR_GROUP),
        # the category versions in force that day listing it (`categories.eligible_categories_of`)
        tuple(version.code for version in categories_in_force(as_of) if noc in version.occupations),
    )


class _Reader:
    __slots__ = ("as_of", "facts", "nocs", "traits")

    def __init__(self, as_of: date) -> None:
        self.as_of = as_of
        self.facts = RawFacts()
        self.nocs: dict[str, int] = {}  # code -> its first place in the document
        self.traits = _traits_of_day(as_of)

    def occupation(self, noc: str) -> tuple[Any, ...]:
        place = self.nocs.setdefault(noc, len(self.nocs))
        traits = self.traits.get(noc)
        if traits is None:
            traits = self.traits[noc] = _traits(noc, self.as_of)
        return (place, traits)

    def document(self, doc: Any) -> RawFacts:
        doc = _keys(doc, _DOCUMENT_KEYS, _DOCUMENT_REQUIRED)
        if doc.get("identity") is not None:  # personal data, never scored: pydantic checks it
            raise _Unsure
        facts, as_of = self.facts, self.as_of
        born = _day(doc["date_of_birth"])
        facts.date_of_birth = born
        facts.age = whole_years_between(born, as_of)
        facts.citizenship = _country(doc["citizenship"])
        _country(doc["country_of_residence"])
        family_size = _int(doc["family_size"], 1, 20)
        funds = _int(doc["settlement_funds_cad"], 0, MAX_AMOUNT_CAD)
        first = doc.get("first_official_language")
        if first is not None:
            _choice(first, _OFFICIAL)
        marital = doc["marital_status"]
        flags = (
            doc["authorized_to_work_in_canada"],
            doc["intends_to_reside_in_quebec"],
            doc["sibling_in_canada"],
            doc["relative_in_canada"],
        )
        if type(marital) is not str or marital not in _MARITAL or tuple(map(type, flags)) != _FOUR_BOOLS:
            raise _Unsure
        education, tests, jobs = self.person(doc)
        codes = {job[0] for job in jobs}
        spouse_key: tuple[Any, ...] | None = None
        spouse = doc.get("spouse")
        if spouse is not None:
            spouse = _keys(spouse, _SPOUSE_KEYS, _SPOUSE_REQUIRED)
            accompanying, citizen = _bool(spouse["accompanying"]), _bool(spouse["canadian_citizen_or_pr"])
            spouse_education, spouse_tests, spouse_jobs = self.person(spouse)
            spouse_key = (
                accompanying,
                citizen,
                spouse_education,
                spouse_tests,
                tuple([job[1] for job in spouse_jobs]),
            )
        certificate_key: tuple[Any, ...] | None = None
        certificate = doc.get("certificate_of_qualification")
        if certificate is not None:
            certificate = _exact_keys(certificate, _CERTIFICATE_KEYS)
            _choice(certificate["province"], _PROVINCES)
            noc = _noc(certificate["noc_code"])
            issued = _day(certificate["issued_on"])
            facts.calendar_dates.append(issued)
            codes.add(noc)
            certificate_key = (self.occupation(noc), issued)
        offer_key: tuple[Any, ...] | None = None
        offer = doc.get("job_offer")
        if offer is not None:
            offer = _exact_keys(offer, _OFFER_KEYS)
            noc = _noc(offer["noc_code"])
            _text(offer["employer"])
            duration = offer["duration_months"]
            offer_key = (
                self.occupation(noc),
                _teer(offer["teer"], noc),
                _bool(offer["full_time"]),
                _bool(offer["non_seasonal"]),
                None if duration is None else _int(duration, 1, 600),
                _bool(offer["lmia_or_exempt"]),
                _bool(offer["canadian_armed_forces"]),
            )
            codes.add(noc)
        facts.noc_codes = tuple(sorted(codes))
        facts.key = (
            as_of,
            facts.age,
            marital,
            family_size,
            funds >= _funds_required(family_size, as_of),
            flags,
            first,
            education,
            tests,
            tuple([job[1] for job in jobs]),
            spouse_key,
            certificate_key,
            offer_key,
        )
        return facts

    def person(
        self, holder: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], tuple[Any, ...], list[tuple[Any, ...]]]:
        """(education, tests, jobs) of the candidate or the spouse; each job as (NOC code, key part).

        Read afresh each time: people's lists differ from one document to the next (a memo of them by
        their JSON answered 4% of reads and cost more than it saved)."""
        education, tests, jobs, completed, taken, issued = _person(
            holder.get("education", _NONE),  # absent: an empty list (null is not)
            holder.get("language_tests", _NONE),
            holder.get("work_experience", _NONE),
        )
        facts, occupation = self.facts, self.occupation
        facts.calendar_dates += completed
        facts.test_days += taken
        facts.eca_days += issued
        return education, tests, [(noc, (occupation(noc), rest)) for noc, rest in jobs]


def _person(education: Any, tests: Any, jobs: Any) -> tuple[Any, ...]:
    """(education, tests, jobs as (NOC code, the rest), days completed, days taken, ECA days)."""
    read_education, completed, issued = [], [], []
    for item in _list(education):
        credential, day, eca = _credential(item)
        read_education.append(credential)
        completed.append(day)
        if eca is not None:
            issued.append(eca)
    read_tests, taken = [], []
    for item in _list(tests):
        test, day = _test(item)
        read_tests.append(test)
        taken.append(day)
    read_jobs = [_job(item) for item in _list(jobs)]
    return (
        tuple(read_education),
        tuple(read_tests),
        tuple(read_jobs),
        tuple(completed),
        tuple(taken),
        tuple(issued),
    )


def _credential(item: Any) -> tuple[tuple[Any, ...], date, date | None]:
    item = _keys(item, _CREDENTIAL_KEYS, _CREDENTIAL_REQUIRED)
    completed = _day(item["completed_on"])
    _country(item["country"])
    eca = item.get("eca")
    issued = None
    if eca is not None:
        eca = _exact_keys(eca, _ECA_KEYS)
        _text(eca["organization"])
        issued = _day(eca["issued_on"])
    credential = (
        _choice(item["level"], _LEVELS),
        _number(item["program_years"], 0, 10),
        completed,
        _bool(item["canadian"]),
        eca is not None,
        issued,
    )
    return credential, completed, issued


def _test(item: Any) -> tuple[tuple[Any, ...], date]:
    item = _exact_keys(item, _TEST_KEYS)
    test = item["test"]
    language = _TEST_LANGUAGE.get(test) if type(test) is str else None
    if language is None:  # not a test name
        raise _Unsure
    taken = _day(item["taken_on"])
    new_scale = taken >= TEF_NEW_SCALE_FROM  # the one day the scales and charts depend on
    scores = (item["speaking"], item["listening"], item["reading"], item["writing"])  # `_CLB_ORDER`
    if tuple(map(type, scores)) not in _NUMBER_TYPES:  # never a bool (1 and True are equal keys)
        raise _Unsure
    key = (test, new_scale, *scores)  # 7 and 7.0 alike: pydantic reads both as 7.0
    levels = _TEST_LEVELS.get(key)
    if levels is None:
        levels = _remember(_TEST_LEVELS, key, _test_levels(test, taken, new_scale, scores))
    if levels is _OFF_SCALE:
        raise _Unsure
    return (language, taken, levels), taken


_NUMBER_TYPES: Final = frozenset(itertools.product(_NUMBER, repeat=4))
_OFF_SCALE: Final = (-1, -1, -1, -1)
# The four levels of a test result (`_OFF_SCALE`: a score not on its scale), by test, scale and scores.
_TEST_LEVELS: TrackedDict[tuple[Any, ...], tuple[int, int, int, int]] = TrackedDict()


def _test_levels(
    test: Any, taken: date, new_scale: bool, scores: tuple[Any, ...]
) -> tuple[int, int, int, int]:
    levels = []
    for ability, score in zip(_CLB_ORDER, scores, strict=True):
        key = (test, new_scale, ability, score)
        level = _ABILITY_LEVELS.get(key)
        if level is None:
            level = _remember(_ABILITY_LEVELS, key, _ability_level(test, ability, taken, score))
        if level < 0:
            return _OFF_SCALE
        levels.append(level)
    speaking, listening, reading, writing = levels
    return (speaking, listening, reading, writing)


_CLB_ORDER: Final = ("speaking", "listening", "reading", "writing")  # as `Clb.abilities`
# The level of one ability's score (-1: not on the test's scale), by test, scale and score.
_ABILITY_LEVELS: TrackedDict[tuple[str, bool, str, float], int] = TrackedDict()


def _ability_level(test: Any, ability: Any, taken: date, score: float) -> int:
    if not _on_scale(score, score_scale(test, ability, taken)):
        return -1
    scores = dict.fromkeys(_CLB_ORDER, score)
    return clb_of_scores(test, taken, **scores)[_CLB_ORDER.index(ability)]


def _job(item: Any) -> tuple[str, tuple[Any, ...]]:
    """(NOC code, the rest of the job as the rules see it)."""
    item = _exact_keys(item, _JOB_KEYS)
    noc = _noc(item["noc_code"])
    end = None if item["end"] is None else _day(item["end"])
    rest = (
        _teer(item["teer"], noc),
        _country(item["country"]) == "CA",
        _day(item["start"]),
        end,
        _number(item["hours_per_week"], 0, 168),
        _bool(item["self_employed"]),
        _bool(item["while_full_time_student"]),
    )
    return noc, rest
