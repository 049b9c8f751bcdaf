"""A seeded synthetic Express Entry pool whose CRS distribution follows IRCC's published one.

    python -m bench.pool_generator --count 1000000 --seed 7 --kafka --prefix bench.
    python -m bench.pool_generator --count 100000 --seed 7 --jsonl /tmp/pool.jsonl
    python -m bench.pool_generator --count 100000 --seed 7            # generate, time and compare only

How the distribution is matched. IRCC publishes the pool's CRS scores in bins (the last row of
``ee_pool_distribution_current_bins.csv``, see ``bench.ircc``). Each candidate first gets a target bin,
drawn with IRCC's shares (in blocks of ``CHUNK_SIZE`` the counts are exact, then shuffled), and is then
a variation of a *template* from that bin. Templates (``bench.pool_templates``) are candidates drawn
from a factor model, written out as profile documents v1 and verified with the real rules (document
validation, ``derive_profile`` + ``calculate``, eligibility on ``as_of`` and on the submission day).

A candidate copies its template and varies only what cannot change its score or programs: ids and
instants, date of birth within the same age, citizenship (within the francophone or the other group,
with the countries that were the citizenship), NOC codes within the same TEER, trade status and
category lists, the test taken (same language) and its scores (same CLB per ability), ECA body,
employer, settlement funds on the same side of the requirement.

Provincial nominations (+600) go only to the share of the 601-1200 bin: such a candidate is a template
of a lower bin, nominated (its events include NominationIssued).

Time: ``submitted_at`` falls in the 12 months before ``as_of`` (never on ``as_of`` itself), every date
in the document is before the profile was created, language tests are under 2 years old and ECAs under
5 on ``as_of``. Scores are those on ``as_of`` under the CRS rules in force that day.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import multiprocessing
import multiprocessing.pool
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.ircc import (
    DATA_DIR,
    NOMINATED_BIN,
    BinComparison,
    IrccBin,
    IrccDistribution,
    bin_label,
    compare_rows,
    compare_to_ircc,
    ircc_distribution,
)
from bench.pool_templates import (
    DEFAULT_TEMPLATES,
    TESTS_BY_LANGUAGE,
    Choices,
    Context,
    Template,
    TemplatePool,
    build_templates,
    employer_name,
    language_test_scores,
    no_cyclic_gc,
    occupation_key,
    settlement_funds,
)
from profile_service.domain.rules import pool_expiry
from shared.envelope import Envelope, encode
from shared.events.catalogue import NominationIssued, ProfileCreated, ProfileSubmitted
from shared.kafka_admin import ensure_topics, topic_name
from shared.messages import envelope_for
from shared.rules.document import whole_years_between, years_before
from shared.rules.factors import Language

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_TEMPLATES",
    "NOMINATED_BIN",
    "PROFILE_SOURCE",
    "BinComparison",
    "GeneratedCandidate",
    "IrccBin",
    "IrccDistribution",
    "RecordChunk",
    "TemplatePool",
    "WriteResult",
    "bin_label",
    "build_templates",
    "candidate_envelopes",
    "compare_rows",
    "compare_to_ircc",
    "generate_documents",
    "generate_records",
    "ircc_distribution",
    "main",
    "write_jsonl",
    "write_kafka",
]

T = TypeVar("T")

CHUNK_SIZE: Final = 5_000  # candidates per unit of work; bin counts are exact within each
PROFILE_SOURCE: Final = "ee/profile"
_EVENT_IDS: Final = uuid.UUID("5b0c2f0e-3f57-4d0c-9a43-ee0b3e1c5a11")  # namespace of event ids (uuid5)
_US_PER_DAY: Final = 86_400_000_000


# ============================================================================================
# The candidates
# ============================================================================================


@dataclass(frozen=True, slots=True)
class GeneratedCandidate:
    profile_id: str
    owner: str  # the partner's `sub`
    document: dict[str, Any]  # profile document v1, JSON-ready (dates as ISO strings)
    created_at: datetime
    submitted_at: datetime
    expires_at: datetime
    eligible_programs: tuple[str, ...]  # as of `as_of`
    crs: int  # the score on `as_of`, nomination included
    bin: str  # IRCC bin of `crs`
    nominated_by: str | None = None  # province code
    nominated_at: datetime | None = None


# ============================================================================================
# Candidates, varied from the templates
# ============================================================================================


def _vary(rng: random.Random, template: Template, ctx: Context) -> dict[str, Any]:
    """A copy of the template's document with everything varied that leaves score and programs alone."""
    as_of = ctx.as_of
    source = template.document
    # Date of birth: any day giving the same age on as_of.
    low = (years_before(as_of, template.age + 1) + timedelta(days=1)).toordinal()
    dob = date.fromordinal(rng.randint(low, years_before(as_of, template.age).toordinal()))
    if whole_years_between(dob, as_of) != template.age:
        dob = date.fromisoformat(source["date_of_birth"])
    # Citizenship within the same group; the countries that were the citizenship follow it.
    old = source["citizenship"]
    new = old
    if rng.random() < 0.9:
        new = (ctx.francophone if template.francophone else ctx.other).pick(rng)
    countries = {old: new}
    nocs = _noc_mapping(rng, source, ctx)

    def country(code: str) -> str:
        return countries.get(code, code)

    def credential(item: dict[str, Any]) -> dict[str, Any]:
        eca = item["eca"]
        return {
            **item,
            "country": country(item["country"]),
            "eca": None
            if eca is None
            else {"organization": ctx.eca_bodies.pick(rng), "issued_on": eca["issued_on"]},
        }

    def job(item: dict[str, Any]) -> dict[str, Any]:
        return {
            **item,
            "noc_code": nocs.get(item["noc_code"], item["noc_code"]),
            "country": country(item["country"]),
        }

    tests = {
        person: list(holder["language_tests"])
        for person, holder in (("", source), ("spouse", source["spouse"]))
        if holder
    }
    for person, index, levels in template.test_levels:
        test = tests[person][index]
        language: Language = "en" if test["test"] in TESTS_BY_LANGUAGE["en"][0] else "fr"
        names, weights = TESTS_BY_LANGUAGE[language]
        tests[person][index] = language_test_scores(
            rng, rng.choices(names, weights)[0], date.fromisoformat(test["taken_on"]), levels
        )

    spouse = source["spouse"]
    if spouse is not None:
        spouse = {
            **spouse,
            "education": [credential(c) for c in spouse["education"]],
            "language_tests": tests["spouse"],
            "work_experience": [job(j) for j in spouse["work_experience"]],
        }
    certificate = source["certificate_of_qualification"]
    if certificate is not None:
        certificate = {**certificate, "noc_code": nocs.get(certificate["noc_code"], certificate["noc_code"])}
    offer = source["job_offer"]
    if offer is not None and not offer["canadian_armed_forces"]:
        offer = {
            **offer,
            "noc_code": nocs.get(offer["noc_code"], offer["noc_code"]),
            "employer": employer_name(rng),
        }
    return {
        **source,
        "date_of_birth": dob.isoformat(),
        "citizenship": new,
        "country_of_residence": country(source["country_of_residence"]),
        "settlement_funds_cad": settlement_funds(rng, source["family_size"], as_of, template.funds_needed),
        "education": [credential(c) for c in source["education"]],
        "language_tests": tests[""],
        "work_experience": [job(j) for j in source["work_experience"]],
        "spouse": spouse,
        "certificate_of_qualification": certificate,
        "job_offer": offer,
    }


def _noc_mapping(rng: random.Random, document: dict[str, Any], ctx: Context) -> dict[str, str]:
    """Each occupation of the document to one of the same class; one-to-one, so runs stay runs."""
    jobs = list(document["work_experience"])
    if document["spouse"]:
        jobs += document["spouse"]["work_experience"]
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for noc in dict.fromkeys(job["noc_code"] for job in jobs):
        choices = ctx.occupation_classes.get(occupation_key(noc))
        options = (choices.pick(rng), noc, *choices.values) if choices is not None else (noc,)
        pick = next((option for option in options if option not in used), None)
        if pick is None:
            return {}  # no one-to-one choice: keep every occupation as it is
        mapping[noc] = pick
        used.add(pick)
    return mapping


def _bin_sequence(rng: random.Random, distribution: IrccDistribution) -> list[str]:
    """CHUNK_SIZE bin labels in IRCC's shares (largest remainders), shuffled."""
    leaves = distribution.leaves
    exact = [CHUNK_SIZE * b.count / distribution.total for b in leaves]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(leaves)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: CHUNK_SIZE - sum(counts)]:
        counts[i] += 1
    labels = [b.label for b, count in zip(leaves, counts, strict=True) for _ in range(count)]
    rng.shuffle(labels)
    return labels


class _Generator:
    """Everything one process needs to turn (seed, chunk index) into candidates."""

    def __init__(self, pool: TemplatePool, data_dir: Path) -> None:
        self.pool = pool
        self.ctx = Context(pool.as_of, data_dir)
        self.distribution = ircc_distribution(data_dir)
        labels = [label for label in pool.by_bin if pool.by_bin[label]]
        self.base_bins = Choices.of((label, float(self.distribution.share(label))) for label in labels)
        self.as_of_midnight = datetime.combine(pool.as_of, datetime.min.time(), tzinfo=UTC)

    def chunk(self, index: int, count: int) -> list[GeneratedCandidate]:
        rng = random.Random(f"chunk:{self.pool.seed}:{index}")
        labels = _bin_sequence(rng, self.distribution)[:count]
        with no_cyclic_gc():
            return [self._candidate(rng, label) for label in labels]

    def _candidate(self, rng: random.Random, label: str) -> GeneratedCandidate:
        nominated = label == NOMINATED_BIN
        base = self.base_bins.pick(rng) if nominated else label
        template = rng.choice(self.pool.by_bin[base])
        document = _vary(rng, template, self.ctx)
        day = datetime.combine(template.submitted_on, datetime.min.time(), tzinfo=UTC)
        submitted_at = day + timedelta(microseconds=rng.randrange(_US_PER_DAY))
        created_at = submitted_at - timedelta(
            days=template.created_gap, microseconds=rng.randrange(60_000_000, 21_600_000_000)
        )
        profile_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        province = nominated_at = None
        crs = template.crs_nominated if nominated else template.crs
        if nominated:
            province = self.ctx.provinces.pick(rng)
            room = int((self.as_of_midnight - submitted_at).total_seconds() * 1_000_000)
            nominated_at = submitted_at + timedelta(microseconds=rng.randrange(max(room, 1)))
        return GeneratedCandidate(
            profile_id=profile_id,
            owner=self.ctx.partners.pick(rng),
            document=document,
            created_at=created_at,
            submitted_at=submitted_at,
            expires_at=pool_expiry(submitted_at),  # the profile service's rule, not a copy
            eligible_programs=template.programs,
            crs=crs,
            bin=label,
            nominated_by=province,
            nominated_at=nominated_at,
        )


# --- worker processes ------------------------------------------------------------------------------

_WORKER: _Generator | None = None


def _init_worker(pool: TemplatePool, data_dir: Path) -> None:
    global _WORKER
    _WORKER = _Generator(pool, data_dir)


def _worker_candidates(job: tuple[int, int]) -> list[GeneratedCandidate]:
    assert _WORKER is not None
    return _WORKER.chunk(*job)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(instant: datetime | None) -> int | None:
    return None if instant is None else (instant - _EPOCH) // timedelta(microseconds=1)


def _instant(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def _worker_packed(job: tuple[int, int]) -> bytes:
    """A chunk as JSON: far cheaper to send between processes than pickled objects."""
    assert _WORKER is not None
    chunk = _WORKER.chunk(*job)
    return orjson.dumps(
        [
            [
                c.profile_id, c.owner, c.document, _micros(c.created_at), _micros(c.submitted_at),
                _micros(c.expires_at), c.eligible_programs, c.crs, c.bin, c.nominated_by,
                _micros(c.nominated_at),
            ]
            for c in chunk
        ]
    )  # fmt: skip


def _unpack(packed: bytes) -> list[GeneratedCandidate]:
    with no_cyclic_gc():
        return _unpacked(packed)


def _unpacked(packed: bytes) -> list[GeneratedCandidate]:
    candidates = []
    for (
        pid,
        owner,
        document,
        created,
        submitted,
        expires,
        programs,
        crs,
        label,
        province,
        nominated,
    ) in orjson.loads(packed):
        candidates.append(
            GeneratedCandidate(
                pid, owner, document, _EPOCH + timedelta(microseconds=created),
                _EPOCH + timedelta(microseconds=submitted), _EPOCH + timedelta(microseconds=expires),
                tuple(programs), crs, label, province, _instant(nominated),
            )
        )  # fmt: skip
    return candidates


@dataclass(frozen=True, slots=True)
class RecordChunk:
    """A chunk of candidates as Kafka records (key, encoded envelope), with the candidates' scores."""

    records: list[tuple[bytes, bytes]]
    scores: list[int]


def _worker_records(job: tuple[int, int]) -> RecordChunk:
    assert _WORKER is not None
    candidates = _WORKER.chunk(*job)
    with no_cyclic_gc():
        records = [record for c in candidates for record in _records(c)]
    return RecordChunk(records, [c.crs for c in candidates])


def _jobs(n: int) -> list[tuple[int, int]]:
    return [(i, min(CHUNK_SIZE, n - i * CHUNK_SIZE)) for i in range((n + CHUNK_SIZE - 1) // CHUNK_SIZE)]


class _Chunks(Iterator[T]):
    """The results of `work` over the chunks of `n` candidates, in order.

    With several workers the processes start at once, in the caller's thread (forking later, from a
    thread serving an event loop, would copy a process in the middle of its work).
    """

    def __init__(
        self, work: Callable[[tuple[int, int]], T], n: int, pool: TemplatePool, workers: int, data_dir: Path
    ) -> None:
        jobs = _jobs(n)
        self._processes: multiprocessing.pool.Pool | None = None
        if workers > 1 and len(jobs) > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._processes = multiprocessing.get_context(method).Pool(
                workers, _init_worker, (pool, data_dir)
            )
            self._results: Iterator[T] = self._processes.imap(work, jobs)
        else:
            _init_worker(pool, data_dir)
            self._results = map(work, jobs)

    def __next__(self) -> T:
        try:
            return next(self._results)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        """Let the worker processes finish and exit (after the last chunk)."""
        if self._processes is not None:
            self._processes.close()
            self._processes.join()
            self._processes = None

    def terminate(self) -> None:
        """Stop the worker processes now (when the consumer gives up early)."""
        if self._processes is not None:
            self._processes.terminate()
            self._processes.join()
            self._processes = None


def generate_documents(
    n: int,
    seed: int,
    as_of: date | None = None,
    *,
    workers: int = 1,
    templates: int = DEFAULT_TEMPLATES,
    data_dir: Path = DATA_DIR,
) -> Iterator[GeneratedCandidate]:
    """`n` candidates for `seed`, scored as of `as_of` (default: today, UTC).

    The same (n, seed, as_of, templates) always gives the same candidates, whatever `workers`; a smaller
    `n` gives a prefix of a larger one. The verified templates are built on the first call for a seed
    and kept (a few seconds for the default 6,000).
    """
    as_of = as_of or datetime.now(UTC).date()
    pool = build_templates(seed, as_of, templates, data_dir)
    if workers <= 1:
        for chunk in _Chunks(_worker_candidates, n, pool, workers, data_dir):
            yield from chunk
    else:
        for packed in _Chunks(_worker_packed, n, pool, workers, data_dir):
            yield from _unpack(packed)


def generate_records(
    n: int,
    seed: int,
    as_of: date | None = None,
    *,
    workers: int = 1,
    templates: int = DEFAULT_TEMPLATES,
    data_dir: Path = DATA_DIR,
) -> Iterator[RecordChunk]:
    """The candidates' events as Kafka records, a chunk at a time, encoded in the worker processes.

    Eager: the templates are built and the worker processes started when this is called.
    """
    as_of = as_of or datetime.now(UTC).date()
    pool = build_templates(seed, as_of, templates, data_dir)
    return _Chunks(_worker_records, n, pool, workers, data_dir)


# ============================================================================================
# Events
# ============================================================================================


def _event_id(profile_id: str, version: int) -> str:
    return str(uuid.uuid5(_EVENT_IDS, f"{profile_id}/{version}"))


def candidate_envelopes(candidate: GeneratedCandidate) -> list[Envelope]:
    """ProfileCreated (version 1), ProfileSubmitted (2) and, when nominated, NominationIssued (3)."""
    ids = {"profile_id": candidate.profile_id, "owner": candidate.owner}
    events: list[tuple[Any, datetime]] = [
        (
            ProfileCreated(**ids, document=candidate.document, created_at=candidate.created_at),
            candidate.created_at,
        ),
        (
            ProfileSubmitted(
                **ids,
                document=candidate.document,
                eligible_programs=list(candidate.eligible_programs),
                submitted_at=candidate.submitted_at,
                expires_at=candidate.expires_at,
            ),
            candidate.submitted_at,
        ),
    ]
    if candidate.nominated_by is not None and candidate.nominated_at is not None:
        nomination = NominationIssued(
            **ids, province=candidate.nominated_by, nominated_at=candidate.nominated_at
        )
        events.append((nomination, candidate.nominated_at))
    envelopes = []
    for version, (event, at) in enumerate(events, start=1):
        event_id = _event_id(candidate.profile_id, version)
        envelopes.append(
            envelope_for(
                event,
                source=PROFILE_SOURCE,
                time=at,
                aggregate_id=candidate.profile_id,
                aggregate_version=version,
                correlation_id=event_id,
                event_id=event_id,
            )
        )
    return envelopes


def _records(candidate: GeneratedCandidate) -> list[tuple[bytes, bytes]]:
    key = candidate.profile_id.encode()
    return [(key, encode(envelope)) for envelope in candidate_envelopes(candidate)]


@dataclass(frozen=True, slots=True)
class WriteResult:
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def _chunks_async(chunks: Iterator[RecordChunk]) -> AsyncIterator[RecordChunk]:
    """The chunks, each fetched in a thread (one ahead), so the event loop keeps sending meanwhile."""
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next, chunks, None)
    while True:
        chunk = await pending
        if chunk is None:
            return
        pending = loop.run_in_executor(None, next, chunks, None)
        yield chunk


async def write_kafka(
    chunks: Iterator[RecordChunk],
    *,
    bootstrap: str,
    topic: str,
    on_chunk: Callable[[RecordChunk], None] | None = None,
    linger_ms: int = 20,
) -> WriteResult:
    """Produce the records with an idempotent producer; return once every one is acknowledged.

    Records are grouped into one batch per partition (the partition the default partitioner gives the
    key, murmur2 as in the Java client, so per-profile order and placement match every other producer):
    about twice the rate of one `send` per record. At most two chunks are in flight.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.codec import has_lz4

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="ee-bench-pool-generator",
        enable_idempotence=True,  # implies acks=all
        linger_ms=linger_ms,
        max_batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
        compression_type="lz4" if has_lz4() else None,
    )
    await producer.start()
    started = time.perf_counter()
    events = 0
    try:
        partitions = sorted(await producer.partitions_for(topic))
        in_flight: list[asyncio.Future[Any]] = []
        async for chunk in _chunks_async(chunks):
            sent = await _send_batched(producer, topic, partitions, chunk.records)
            await asyncio.gather(*in_flight)  # the previous chunk's acknowledgements
            in_flight = sent
            events += len(chunk.records)
            if on_chunk is not None:
                on_chunk(chunk)
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
    return WriteResult(events=events, seconds=time.perf_counter() - started)


async def _send_batched(
    producer: Any, topic: str, partitions: list[int], records: list[tuple[bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    """Append the records to one batch per partition, submitting each batch when it is full."""
    from aiokafka.partitioner import DefaultPartitioner

    choose = DefaultPartitioner()
    batches: dict[int, Any] = {}
    sent: list[asyncio.Future[Any]] = []
    for key, value in records:
        partition = choose(key, partitions, partitions)
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            sent.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {len(value):,} bytes does not fit in a batch")
    for partition, batch in batches.items():
        sent.append(await producer.send_batch(batch, topic, partition=partition))
    return sent


def write_jsonl(
    chunks: Iterable[RecordChunk], path: Path, on_chunk: Callable[[RecordChunk], None] | None = None
) -> WriteResult:
    """One envelope per line (its `subject` is the Kafka key)."""
    started = time.perf_counter()
    events = 0
    with path.open("wb") as handle:
        for chunk in chunks:
            handle.writelines(value + b"\n" for _, value in chunk.records)
            events += len(chunk.records)
            if on_chunk is not None:
                on_chunk(chunk)
    return WriteResult(events=events, seconds=time.perf_counter() - started)


# ============================================================================================
# Command line
# ============================================================================================


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pool_generator",
        description="Generate a synthetic Express Entry pool shaped like IRCC's published CRS distribution.",
    )
    parser.add_argument("--count", type=int, default=100_000, help="candidates (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--as-of", type=date.fromisoformat, default=None, help="scoring day (default: today, UTC)"
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--templates", type=int, default=DEFAULT_TEMPLATES)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--kafka", action="store_true", help="write the events to the profile topic")
    target.add_argument("--jsonl", type=Path, help="write the events to this file, one envelope a line")
    parser.add_argument("--prefix", default=os.environ.get("EE_TOPIC_PREFIX", ""), help="topic prefix")
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092",
        help="Kafka servers",
    )
    parser.add_argument(
        "--no-compare", action="store_true", help="do not print the comparison with IRCC's bins"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    # aiokafka logs every refused connection and retried request; the outcome is printed below.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return _run(args, console)
    except (KafkaError, OSError) as exc:
        target = f"Kafka at {args.bootstrap}" if args.kafka else str(args.jsonl)
        console.print(f"[red]could not write to {target}: {exc}[/red]")
        return 1


def _run(args: argparse.Namespace, console: Console) -> int:
    as_of: date = args.as_of or datetime.now(UTC).date()
    pool = build_templates(args.seed, as_of, args.templates)
    console.print(
        f"templates: {pool.size:,} in {pool.seconds:.1f}s ({pool.attempts:,} factor draws, {pool.rejected:,} "
        f"could not enter the pool, {pool.mismatches} failed verification); scores as of {as_of}"
    )
    scores: list[int] = []
    with _progress(console) as progress:
        started = time.perf_counter()
        if args.kafka or args.jsonl:
            task = progress.add_task("events", total=None, rate="")

            def advance(chunk: RecordChunk) -> None:
                scores.extend(chunk.scores)
                done = progress.tasks[task].completed + len(chunk.records)
                rate = done / max(time.perf_counter() - started, 1e-9)
                progress.update(task, completed=done, rate=f"{rate:,.0f} events/s")

            topic = topic_name(ProfileCreated.topic, args.prefix)
            if args.kafka:  # the broker creates no topics on its own; and fail early when it is down
                asyncio.run(ensure_topics(args.bootstrap, args.prefix))
            chunks = generate_records(
                args.count, args.seed, as_of, workers=args.workers, templates=args.templates
            )
            try:
                if args.kafka:
                    result = asyncio.run(
                        write_kafka(chunks, bootstrap=args.bootstrap, topic=topic, on_chunk=advance)
                    )
                    where = f"Kafka topic {topic} at {args.bootstrap}"
                else:
                    result = write_jsonl(chunks, args.jsonl, on_chunk=advance)
                    where = str(args.jsonl)
            finally:
                if isinstance(chunks, _Chunks):
                    chunks.terminate()
            progress.update(task, total=result.events)
            summary = (
                f"wrote {result.events:,} events of {len(scores):,} candidates to {where} "
                f"in {result.seconds:.1f}s with {args.workers} generating worker(s): "
                f"{result.events_per_second:,.0f} events/s"
            )
        else:
            task = progress.add_task("candidates", total=args.count, rate="")
            candidates = generate_documents(
                args.count, args.seed, as_of, workers=args.workers, templates=args.templates
            )
            for candidate in candidates:
                scores.append(candidate.crs)
                if len(scores) % CHUNK_SIZE == 0 or len(scores) == args.count:
                    rate = len(scores) / max(time.perf_counter() - started, 1e-9)
                    progress.update(task, completed=len(scores), rate=f"{rate:,.0f} docs/s")
            seconds = time.perf_counter() - started
            summary = (
                f"generated {len(scores):,} candidates in {seconds:.1f}s with {args.workers} worker(s): "
                f"{len(scores) / seconds:,.0f} docs/s"
            )
    console.print(summary)
    if not args.no_compare:
        console.print(compare_to_ircc(scores))
    return 0


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


if __name__ == "__main__":
    sys.exit(main())
