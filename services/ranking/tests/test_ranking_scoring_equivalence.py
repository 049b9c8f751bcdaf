"""`score_profile` (one raw read, a cache keyed by the scoring facts) against `score_reference`
(pydantic, the derivation, the grid): the same result to the point, field by field, for every
generated profile, on days either side of the 2025-03-25 grid change, pinned or in-force rules,
nominated or not, and the same refusal for every bad document."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from bench.pool_generator import generate_documents
from ranking_service.domain import scoring
from ranking_service.domain.scoring import (
    CACHE_STATS,
    Scored,
    UnscorableProfile,
    clear_caches,
    score_profile,
    score_reference,
)
from shared.rules.asof import AsOf
from shared.rules.crs import RULES_2020_10_27, RULES_2025_03_25, RulesVersion, rules_for_day
from shared.rules.derive import derive_profile
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE, ProfileDocument
from shared.rules.eligibility import UNEXPLAINED, ProgramAssessment, assess_facts

AS_OF = date(2026, 6, 1)
COUNT = 2_000
DAYS = (AS_OF, date(2025, 3, 24), date(2025, 3, 25), AS_OF + timedelta(days=45))


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    # Fewer templates than the bench's: more documents share their scoring facts, so most of them are
    # answered from the cache with results computed for another document.
    generated = generate_documents(COUNT, 3, AS_OF, templates=400)
    return [orjson.loads(orjson.dumps(candidate.document)) for candidate in generated]


def _outcome(score: Callable[..., Scored], *args: Any) -> Scored | str:
    try:
        return score(*args)
    except UnscorableProfile:
        return "unscorable"


@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize(
    "rules", [RULES_2020_10_27, RULES_2025_03_25, None], ids=["2020-10-27", "2025-03-25", "in-force"]
)
def test_the_fast_path_scores_every_generated_profile_as_the_reference(
    documents: list[dict[str, Any]], day: date, rules: RulesVersion | None
) -> None:
    version = rules_for_day(rules, day)
    for nominated in (False, True):
        clear_caches()
        fast = [_outcome(score_profile, document, day, nominated, version) for document in documents]
        assert CACHE_STATS.unread == 0  # every generated document is read by the fast reader
        # A quarter or more answered from the cache, with the results computed for another document.
        assert CACHE_STATS.misses < len(documents) * 3 // 4
        different = [
            (index, fast[index], expected)
            for index, document in enumerate(documents)
            if fast[index] != (expected := _outcome(score_reference, document, day, nominated, version))
        ]
        assert different == []


def test_the_scores_are_the_generators(documents: list[dict[str, Any]]) -> None:
    """The generator's own CRS, from its verified templates: the cache cannot agree with a wrong
    reference by sharing its mistake with every document."""
    clear_caches()
    generated = generate_documents(COUNT, 3, AS_OF, templates=400)
    wrong = [
        candidate.profile_id
        for candidate, document in zip(generated, documents, strict=True)
        if score_profile(document, AS_OF, candidate.nominated_by is not None, RULES_2025_03_25).crs
        != candidate.crs
    ]
    assert wrong == []


# --- bad documents: refused exactly when the reference refuses --------------------------------------

_GOOD: dict[str, Any] = {
    **copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE),
    "marital_status": "married",
    "family_size": 2,
    "settlement_funds_cad": 30_000,
    "spouse": {
        "accompanying": True,
        "canadian_citizen_or_pr": False,
        "education": [
            {
                "level": "masters",
                "program_years": 2,
                "completed_on": "2018-06-30",
                "country": "FR",
                "canadian": False,
                "eca": {"organization": "WES", "issued_on": "2024-05-01"},
            }
        ],
        "language_tests": [
            {
                "test": "TEF_CANADA",
                "taken_on": "2025-01-10",
                "listening": 560,
                "reading": 560,
                "writing": 560,
                "speaking": 560,
            }
        ],
        "work_experience": [],
    },
    "certificate_of_qualification": {"province": "ON", "noc_code": "72200", "issued_on": "2020-01-15"},
    "job_offer": {
        "noc_code": "21231",
        "teer": 1,
        "employer": "Acme",
        "full_time": True,
        "non_seasonal": True,
        "duration_months": None,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    },
}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        holder: Any = document
        for part in parents:
            holder = holder[int(part)] if part.isdigit() else holder[part]
        if value is _DELETE:
            del holder[last]
        elif isinstance(holder, list):
            holder[int(last)] = value
        else:
            holder[last] = value

    return change


_DELETE = object()

MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bool as 1": _set("sibling_in_canada", 1),
    "1.0 as a bool": _set("work_experience.0.self_employed", 0.0),
    "true as hours": _set("work_experience.0.hours_per_week", True),
    "NaN hours": _set("work_experience.0.hours_per_week", math.nan),
    "NaN end": _set("work_experience.0.end", math.nan),
    "infinite ECA": _set("education.0.eca", math.inf),
    "a number as a date": _set("date_of_birth", 19940314),
    "a compact date": _set("date_of_birth", "19940314"),
    "a datetime string": _set("language_tests.0.taken_on", "2025-02-08T00:00:00"),
    "a date object": _set("date_of_birth", date(1994, 3, 14)),
    "30 February": _set("education.0.completed_on", "2016-02-30"),
    "unknown key": _set("favourite_colour", "blue"),
    "unknown key in a job": _set("work_experience.0.manager", "Ann"),
    "missing key": _set("relative_in_canada", _DELETE),
    "missing job end": _set("work_experience.0.end", _DELETE),
    "null list": _set("education", None),
    "absent list": _set("language_tests", _DELETE),
    "a tuple as a list": _set("work_experience", ()),
    "score off the scale": _set("language_tests.0.reading", 7.25),
    "true as a score": _set("language_tests.0.listening", True),
    "a whole number as a score": _set("language_tests.0.writing", 7),
    "a score of another test's scale": _set("spouse.language_tests.0.test", "TCF_CANADA"),
    "score above the scale": _set("spouse.language_tests.0.reading", 700),
    "TEER not the NOC's": _set("work_experience.0.teer", 2),
    "NOC of 4 digits": _set("job_offer.noc_code", "2123"),
    "lower-case country": _set("citizenship", "in"),
    "blank employer": _set("job_offer.employer", "   "),
    "employer too long": _set("job_offer.employer", "x" * 201),
    "unknown province": _set("certificate_of_qualification.province", "XX"),
    "duration 0": _set("job_offer.duration_months", 0),
    "family of 21": _set("family_size", 21),
    "negative funds": _set("settlement_funds_cad", -1),
    "first language klingon": _set("first_official_language", "klingon"),
    "first language french": _set("first_official_language", "french"),
    "identity present": _set(
        "identity", {"family_name": "Doe", "email": "a@b.example", "given_names": "", "uci": None}
    ),
    "bad identity": _set("identity", {"family_name": ""}),
    "born after the day": _set("date_of_birth", "2027-01-01"),
    "spouse not accompanying": _set("spouse.accompanying", False),
    "spouse as a list": _set("spouse", []),
    "unknown test": _set("language_tests.0.test", "TOEFL"),
    "unknown level": _set("education.0.level", "kindergarten"),
    "program of 11 years": _set("education.0.program_years", 11),
    # valid changes of one scoring fact each: a cache answering with the good document's result fails
    "too little money": _set("settlement_funds_cad", 100),
    "authorized to work": _set("authorized_to_work_in_canada", True),
    "bound for Quebec": _set("intends_to_reside_in_quebec", True),
    "a relative": _set("relative_in_canada", True),
    "a sibling": _set("sibling_in_canada", True),
    "a family of 5": _set("family_size", 5),
    "an expired test": _set("language_tests.0.taken_on", "2023-01-10"),
    "a lower listening": _set("language_tests.0.listening", 6.0),
    "a CELPIP": _set("language_tests.0.test", "CELPIP_G"),
    "an expired ECA": _set("education.0.eca.issued_on", "2019-01-20"),
    "no ECA": _set("education.0.eca", None),
    "a Canadian degree": lambda d: d["education"][0].update(country="CA", canadian=True, eca=None),
    "a secondary diploma": _set("education.0.level", "secondary"),
    "a 1-year program": lambda d: d["education"][0].update(level="one_year", program_years=1),
    "a job ended in 2019": _set("work_experience.0.end", "2019-06-30"),
    "part-time": _set("work_experience.0.hours_per_week", 10),
    "self-employed": _set("work_experience.0.self_employed", True),
    "work in Canada": _set("work_experience.0.country", "CA"),
    "a trade job": lambda d: d["work_experience"][0].update(noc_code="72200", teer=2),
    "a second job, same occupation": lambda d: d["work_experience"].append(
        {**d["work_experience"][0], "start": "2010-01-01", "end": "2012-12-31"}
    ),
    "a second job, other occupation": lambda d: d["work_experience"].append(
        {**d["work_experience"][0], "noc_code": "21232", "start": "2010-01-01", "end": "2012-12-31"}
    ),
    "an offer of 6 months": _set("job_offer.duration_months", 6),
    "an offer without LMIA": _set("job_offer.lmia_or_exempt", False),
    "a senior manager's offer": lambda d: d["job_offer"].update(noc_code="00012", teer=0),
    "an armed forces offer": _set("job_offer.canadian_armed_forces", True),
    "a certificate outside the trades": _set("certificate_of_qualification.noc_code", "21231"),
    "a certificate issued later": _set("certificate_of_qualification.issued_on", "2026-09-01"),
    "a citizen spouse": _set("spouse.canadian_citizen_or_pr", True),
    "a spouse with a bachelor's": _set("spouse.education.0.level", "bachelors"),
    "a spouse's lower French": _set("spouse.language_tests.0.speaking", 300),
    "a spouse working in Canada": _set(
        "spouse.work_experience",
        [{**PROFILE_DOCUMENT_EXAMPLE["work_experience"][0], "country": "CA", "start": "2023-01-01"}],
    ),
    "no spouse": lambda d: d.update(spouse=None, marital_status="single", family_size=1),
}


@pytest.mark.parametrize("rules", [RULES_2020_10_27, RULES_2025_03_25], ids=["2020-10-27", "2025-03-25"])
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_changed_document_is_refused_or_scored_as_the_reference_does(
    name: str, rules: RulesVersion
) -> None:
    clear_caches()
    good = orjson.loads(orjson.dumps(_GOOD))
    assert score_profile(good, AS_OF, False, rules) == score_reference(good, AS_OF, False, rules)
    changed = copy.deepcopy(good)
    MUTATIONS[name](changed)
    for _ in range(2):  # the second time with whatever the first remembered
        expected = _outcome(score_reference, changed, AS_OF, False, rules)
        assert _outcome(score_profile, changed, AS_OF, False, rules) == expected


def test_the_mutations_include_refusals_and_other_results() -> None:
    """The table above must test both ways, or it could not catch a fast path too strict or too lax,
    and its valid changes must change the result, or they could not catch a cache key missing a fact."""
    refused, other = 0, 0
    for change in MUTATIONS.values():
        changed = orjson.loads(orjson.dumps(_GOOD))
        change(changed)
        outcomes = [
            _outcome(score_reference, document, AS_OF, False, rules)
            for document in (orjson.loads(orjson.dumps(_GOOD)), changed)
            for rules in (RULES_2020_10_27, RULES_2025_03_25)
        ]
        refused += outcomes[2] == "unscorable"
        other += outcomes[2] != "unscorable" and outcomes[:2] != outcomes[2:]
    assert refused >= 30 and other >= 28


def test_the_cache_answers_only_for_the_same_facts() -> None:
    """Two documents differing in one scoring fact each get their own result."""
    clear_caches()
    good = orjson.loads(orjson.dumps(_GOOD))
    other = copy.deepcopy(good)
    other["work_experience"][0]["start"] = "2025-09-01"  # under a year of foreign work
    first = score_profile(good, AS_OF, False, RULES_2025_03_25)
    second = score_profile(other, AS_OF, False, RULES_2025_03_25)
    assert first == score_reference(good, AS_OF, False, RULES_2025_03_25)
    assert second == score_reference(other, AS_OF, False, RULES_2025_03_25)
    assert first.crs != second.crs
    assert scoring.CACHE_STATS.misses == 2


# --- verdicts without their sentences (what scoring asks of the eligibility rules) ------------------


def _verdicts(assessments: dict[str, ProgramAssessment]) -> dict[str, tuple[bool, int | None, int]]:
    return {name: (a.eligible, a.points, len(a.reasons)) for name, a in assessments.items()}


def test_unexplained_assessments_give_the_same_verdicts(documents: list[dict[str, Any]]) -> None:
    """`explain=False` runs the same checks and lists the same number of unmet requirements, none
    written out, for the generated profiles and every valid change of the table above."""
    changed = []
    for change in MUTATIONS.values():
        document = orjson.loads(orjson.dumps(_GOOD))
        change(document)
        changed.append(document)
    unmet = 0
    for document in [*documents[:500], *changed]:
        try:
            doc = ProfileDocument.model_validate(document)
        except ValidationError:
            continue
        for day in DAYS:
            explained = assess_facts(AsOf(doc, day))
            unexplained = assess_facts(AsOf(doc, day), explain=False)
            assert _verdicts(unexplained) == _verdicts(explained)
            for assessment in unexplained.values():
                assert set(assessment.reasons) <= {UNEXPLAINED}
            unmet += sum(len(a.reasons) for a in explained.values())
            assert UNEXPLAINED not in [r for a in explained.values() for r in a.reasons]
            derived = derive_profile(doc, day, False, explain=False)
            assert derived.factors == derive_profile(doc, day, False).factors
    assert unmet > 1_000  # enough unmet requirements met the comparison
