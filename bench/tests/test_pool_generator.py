"""The synthetic pool generator: valid documents, scores and programs as planned, IRCC's distribution,
determinism, and the events it writes (to a file, and to the real Kafka broker)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from rich.console import Console

from bench.ircc import citizenship_weights
from bench.pool_generator import (
    CHUNK_SIZE,
    NOMINATED_BIN,
    PROFILE_SOURCE,
    GeneratedCandidate,
    bin_label,
    build_templates,
    candidate_envelopes,
    compare_rows,
    compare_to_ircc,
    generate_documents,
    generate_records,
    ircc_distribution,
    write_jsonl,
    write_kafka,
)
from profile_service.domain.rules import pool_expiry
from shared import kafka_admin, testing
from shared.envelope import Envelope, decode
from shared.events.catalogue import Event, NominationIssued, ProfileCreated, ProfileSubmitted
from shared.events.registry import REGISTRY
from shared.rules.crs import calculate
from shared.rules.derive import DerivedProfile, derive_profile
from shared.rules.document import ProfileDocument, validate_document, whole_years_between
from shared.testing import PlatformTestSettings

AS_OF = date(2026, 8, 10)  # a week after IRCC's latest published distribution
SEED = 20260803
N = 5_000
TOLERANCE_POINTS = 1.0  # generated vs IRCC share of every bin, in percentage points


@pytest.fixture(scope="module")
def candidates() -> list[GeneratedCandidate]:
    return list(generate_documents(N, SEED, AS_OF))


@pytest.fixture(scope="module")
def derived(candidates: list[GeneratedCandidate]) -> list[tuple[ProfileDocument, DerivedProfile, int]]:
    """Each document parsed, derived as of AS_OF (with its nomination) and scored by the real engine."""
    out = []
    for candidate in candidates:
        doc = ProfileDocument.model_validate(candidate.document)
        profile = derive_profile(doc, AS_OF, nominated=candidate.nominated_by is not None)
        out.append((doc, profile, calculate(profile.factors).total))
    return out


# --- documents --------------------------------------------------------------------------------------


def test_every_document_is_a_valid_profile_document_v1(
    derived: list[tuple[ProfileDocument, DerivedProfile, int]],
) -> None:
    problems = {
        i: errors for i, (doc, _, _) in enumerate(derived) if (errors := validate_document(doc, AS_OF))
    }
    assert problems == {}


def test_each_candidate_can_enter_the_pool_and_scores_what_it_says(
    candidates: list[GeneratedCandidate], derived: list[tuple[ProfileDocument, DerivedProfile, int]]
) -> None:
    assert all(profile.programs for _, profile, _ in derived)
    wrong_programs = [c.profile_id for c, (_, p, _) in zip(candidates, derived, strict=True)
                      if tuple(p.programs) != c.eligible_programs]  # fmt: skip
    wrong_scores = [
        (c.crs, score) for c, (_, _, score) in zip(candidates, derived, strict=True) if c.crs != score
    ]
    assert wrong_programs == []
    assert wrong_scores == []
    assert all(c.bin == bin_label(c.crs) for c in candidates)


def test_candidates_were_eligible_on_the_day_they_submitted(
    candidates: list[GeneratedCandidate], derived: list[tuple[ProfileDocument, DerivedProfile, int]]
) -> None:
    sample = range(0, N, 10)
    late = [
        i
        for i in sample
        if not derive_profile(derived[i][0], candidates[i].submitted_at.date(), False).programs
    ]
    assert late == []


def test_the_crs_distribution_follows_ircc_latest_bins(
    derived: list[tuple[ProfileDocument, DerivedProfile, int]],
) -> None:
    rows = compare_rows(score for _, _, score in derived)
    assert [row.label for row in rows] == [b.label for b in ircc_distribution().bins]
    off = {
        row.label: round(row.difference_points, 2)
        for row in rows
        if abs(row.difference_points) > TOLERANCE_POINTS
    }
    assert off == {}


def test_provincial_nominations_only_for_the_601_1200_share(candidates: list[GeneratedCandidate]) -> None:
    nominated = [c for c in candidates if c.nominated_by is not None]
    assert all(c.crs > 600 and c.bin == NOMINATED_BIN for c in nominated)
    assert all(c.crs <= 600 for c in candidates if c.nominated_by is None)
    expected = N * ircc_distribution().share(NOMINATED_BIN)
    assert abs(len(nominated) - expected) <= 2
    assert all(c.submitted_at < c.nominated_at < datetime(2026, 8, 10, tzinfo=UTC) for c in nominated)  # type: ignore[operator]


def _dates(value: Any) -> list[date]:
    """Every date held anywhere in a JSON document."""
    if isinstance(value, dict):
        return [d for v in value.values() for d in _dates(v)]
    if isinstance(value, list):
        return [d for v in value for d in _dates(v)]
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return [date.fromisoformat(value)]
    return []


def test_instants_and_dates_are_consistent(
    candidates: list[GeneratedCandidate], derived: list[tuple[ProfileDocument, DerivedProfile, int]]
) -> None:
    start_of_as_of = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC)
    for candidate, (doc, _, _) in zip(candidates, derived, strict=True):
        assert start_of_as_of - timedelta(days=365) < candidate.submitted_at < start_of_as_of
        assert candidate.created_at < candidate.submitted_at
        assert candidate.expires_at == pool_expiry(candidate.submitted_at)
        assert max(_dates(candidate.document)) <= candidate.created_at.date()  # written before it was created
        for test in doc.language_tests:
            assert whole_years_between(test.taken_on, AS_OF) < 2
    ids = [c.profile_id for c in candidates]
    assert len(set(ids)) == N
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert len({c.submitted_at for c in candidates}) >= N - 2  # unique-ish microseconds
    months = Counter((c.submitted_at.year, c.submitted_at.month) for c in candidates)
    assert len(months) >= 12


def test_a_realistic_mix_of_candidates(
    candidates: list[GeneratedCandidate], derived: list[tuple[ProfileDocument, DerivedProfile, int]]
) -> None:
    docs = [doc for doc, _, _ in derived]
    factors = [profile.factors for _, profile, _ in derived]

    def share(flags: list[bool]) -> float:
        return sum(flags) / len(flags)

    assert {t.test for d in docs for t in d.language_tests} == {
        "IELTS_GENERAL", "CELPIP_G", "PTE_CORE", "TEF_CANADA", "TCF_CANADA",
    }  # fmt: skip
    ages = [f.age for f in factors]
    assert min(ages) >= 18 and 26 <= sorted(ages)[N // 2] <= 33
    assert len({f.education_level for f in factors}) == 8
    assert 0.2 <= share([f.spouse is not None for f in factors]) <= 0.5
    assert 0.4 <= share([f.canadian_work_years > 0 for f in factors]) <= 0.85
    assert 0.4 <= share([f.foreign_work_years > 0 for f in factors]) <= 0.85
    assert 0.05 <= share([f.canadian_education.value != "none" for f in factors]) <= 0.4
    assert 0.005 <= share([d.certificate_of_qualification is not None for d in docs]) <= 0.05
    assert 0.02 <= share([d.job_offer is not None for d in docs]) <= 0.15
    assert 0.02 <= share([d.sibling_in_canada for d in docs]) <= 0.15
    foreign = [
        c for d in docs for c in d.education if not c.canadian and c.level not in ("less_than_secondary",)
    ]
    assert share([c.eca is not None for c in foreign]) >= 0.75  # foreign credentials mostly assessed
    programs = Counter(p for _, profile, _ in derived for p in profile.programs)
    assert programs["cec"] > N / 3 and programs["fsw"] > N / 3 and programs["fst"] > 0
    citizenships = Counter(d.citizenship for d in docs)
    assert citizenships.most_common(1)[0][0] == "IN" and len(citizenships) >= 40
    assert len({job.noc_code for d in docs for job in d.work_experience}) >= 60
    assert len({c.owner for c in candidates}) > 10


# --- determinism and speed-ups ---------------------------------------------------------------------


def test_the_same_seed_gives_the_same_pool_and_another_seed_another() -> None:
    first = list(generate_documents(300, 11, AS_OF, templates=1_500))
    again = list(generate_documents(300, 11, AS_OF, templates=1_500))
    other = list(generate_documents(300, 12, AS_OF, templates=1_500))
    assert first == again
    assert [c.profile_id for c in first] != [c.profile_id for c in other]
    assert list(generate_documents(120, 11, AS_OF, templates=1_500)) == first[:120]  # a prefix


def test_two_worker_processes_give_the_same_candidates(candidates: list[GeneratedCandidate]) -> None:
    n = CHUNK_SIZE + 40  # two chunks, one per worker
    parallel = list(generate_documents(n, SEED, AS_OF, workers=2))
    assert parallel[:N] == candidates
    assert parallel == list(generate_documents(n, SEED, AS_OF, workers=1))


def test_templates_are_verified_and_every_bin_has_some() -> None:
    pool = build_templates(SEED, AS_OF)
    assert set(pool.by_bin) == {b.label for b in ircc_distribution().leaves} - {NOMINATED_BIN}
    assert min(len(templates) for templates in pool.by_bin.values()) >= 100
    assert pool.mismatches <= pool.size // 100  # the plan and the real derivation agree


# --- IRCC's figures -------------------------------------------------------------------------------


def test_the_target_is_ircc_latest_published_distribution() -> None:
    distribution = ircc_distribution()
    assert distribution.as_of == date(2026, 8, 3)
    assert distribution.total == 229_100
    assert len(distribution.bins) == 17 and len(distribution.leaves) == 15
    by_label = {b.label: b.count for b in distribution.bins}
    assert by_label["451-500"] == sum(by_label[f"{low}-{low + 9}"] for low in range(451, 500, 10))
    assert by_label["401-450"] == sum(by_label[f"{low}-{low + 9}"] for low in range(401, 450, 10))
    assert [bin_label(s) for s in (0, 300, 301, 450, 451, 600, 601, 1200)] == [
        "0-300", "0-300", "301-350", "441-450", "451-460", "501-600", "601-1200", "601-1200",
    ]  # fmt: skip


def test_citizenships_are_weighted_by_express_entry_admissions() -> None:
    codes, weights = citizenship_weights()
    ranked = [code for _, code in sorted(zip(weights, codes, strict=True), reverse=True)]
    assert ranked[:3] == ["IN", "NG", "CN"]
    assert all(len(code) == 2 and code.isupper() for code in codes) and "CA" not in codes


def test_compare_to_ircc_prints_both_distributions_per_bin() -> None:
    table = compare_to_ircc([250, 420, 455, 455, 700])
    console = Console(record=True, width=120)
    console.print(table)
    text = console.export_text()
    assert table.row_count == 18  # 17 published bins and the total
    assert "601-1200" in text and "229,100" in text and "19,705" in text
    rows = {row.label: row for row in compare_rows([250, 420, 455, 455, 700])}
    assert rows["451-500"].generated == 2 and rows["451-460"].generated == 2
    assert rows["601-1200"].generated_share == pytest.approx(0.2)


# --- events ------------------------------------------------------------------------------------------


def _check_stream(envelopes: list[Envelope], candidate: GeneratedCandidate) -> None:
    types: list[type[Event]] = [ProfileCreated, ProfileSubmitted]
    types += [NominationIssued] if candidate.nominated_by else []
    assert [e.type for e in envelopes] == [t.event_type() for t in types]
    assert [e.aggregateversion for e in envelopes] == list(range(1, len(types) + 1))
    for envelope in envelopes:
        assert envelope.source == PROFILE_SOURCE
        assert envelope.subject == envelope.aggregateid == candidate.profile_id
        event = REGISTRY.parse(envelope)
        assert event.key() == candidate.profile_id
        assert getattr(event, "owner") == candidate.owner  # noqa: B009
    created, submitted = (REGISTRY.parse(e) for e in envelopes[:2])
    assert isinstance(created, ProfileCreated) and isinstance(submitted, ProfileSubmitted)
    assert created.document == submitted.document == candidate.document
    assert submitted.eligible_programs == list(candidate.eligible_programs)
    assert submitted.submitted_at == candidate.submitted_at and envelopes[1].time == candidate.submitted_at


def test_envelopes_of_a_candidate(candidates: list[GeneratedCandidate]) -> None:
    nominated = next(c for c in candidates if c.nominated_by)
    for candidate in (candidates[0], nominated):
        envelopes = candidate_envelopes(candidate)
        _check_stream(envelopes, candidate)
        assert [e.id for e in envelopes] == [
            e.id for e in candidate_envelopes(candidate)
        ]  # deterministic ids


def test_jsonl_holds_every_event_once(tmp_path: Path) -> None:
    path = tmp_path / "pool.jsonl"
    result = write_jsonl(generate_records(60, 5, AS_OF, templates=1_500), path)
    people = list(generate_documents(60, 5, AS_OF, templates=1_500))
    lines = path.read_bytes().splitlines()
    assert result.events == len(lines) == 120 + sum(1 for c in people if c.nominated_by)
    by_profile: dict[str, list[Envelope]] = {}
    for line in lines:
        envelope = decode(line)
        by_profile.setdefault(envelope.aggregateid or "", []).append(envelope)
    for candidate in people:
        _check_stream(by_profile[candidate.profile_id], candidate)


# --- the real broker ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def kafka_settings(make_settings: Any) -> AsyncIterator[PlatformTestSettings]:
    settings: PlatformTestSettings = make_settings(PlatformTestSettings)
    try:
        await kafka_admin.ensure_topics(settings.kafka_bootstrap_servers, settings.topic_prefix, partitions=3)
    except Exception as exc:
        pytest.fail(f"Kafka does not answer at {settings.kafka_bootstrap_servers} ({exc!r}): start it first")
    yield settings
    await testing.delete_topics(settings)


@pytest.mark.infra
async def test_kafka_writer_publishes_every_candidate_keyed_by_profile(
    kafka_settings: PlatformTestSettings,
) -> None:
    seed, n = 2, 200
    people = list(generate_documents(n, seed, AS_OF, templates=1_500))
    nominations = sum(1 for c in people if c.nominated_by)
    assert nominations >= 1  # this seed also exercises the third event
    topic = kafka_settings.topic(ProfileCreated.topic)
    result = await write_kafka(
        generate_records(n, seed, AS_OF, templates=1_500),
        bootstrap=kafka_settings.kafka_bootstrap_servers,
        topic=topic,
    )
    assert result.events == 2 * n + nominations
    async with testing.KafkaReader(kafka_settings, topic) as reader:
        await reader.read(result.events, timeout=30)
        records = await reader.drain()
    assert len(records) == 2 * n + nominations  # 400 ProfileCreated + ProfileSubmitted, and the nominations
    streams: dict[str, list[tuple[int, int, Envelope]]] = {}
    for record in records:
        envelope = decode(record.value)
        assert record.key is not None and record.key.decode() == envelope.subject
        streams.setdefault(record.key.decode(), []).append((record.partition, record.offset, envelope))
    assert set(streams) == {c.profile_id for c in people}
    partitions = sorted({partition for held in streams.values() for partition, _, _ in held})
    assert len(partitions) == 3
    for candidate in people:
        held = streams[candidate.profile_id]
        # keyed: the partition every producer's default partitioner gives the profile id
        expected = DefaultPartitioner()(candidate.profile_id.encode(), partitions, partitions)
        assert {partition for partition, _, _ in held} == {expected}
        _check_stream([envelope for _, _, envelope in sorted(held, key=lambda item: item[1])], candidate)
