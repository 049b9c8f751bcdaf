"""The cost of encrypting personal data (issue 16, docs/PRIVACY.md), on a PUT and on the rebuild.

    python -m bench.privacy [--puts 300] [--events 20000]

- **PUT**: the profile service's write path without HTTP (load the aggregate, update the document,
  save: event store + outbox + projection, commit), in a database of its own migrated by the profile
  service's Alembic scripts, one profile after another for `puts` rounds; a document with an
  identity block and a job offer's employer (sealed: one more query for the data key, AES-GCM on
  save and load) against the same document without them (nothing sealed). Median and p99 per PUT.
- **rebuild**: ranking's rebuild reads every profile event (`ranking_service.replay.decode.read_item`,
  what the rebuild runs per record) and never opens the sealed part: `events` ProfileUpdated
  envelopes with and without a sealed value, decoded; and the profile aggregate's replay, which does
  open every sealed event (`ProfileRepository` with the key in hand). Records per second.

Wall-clock figures on a shared machine: read the ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.settings import with_database

ROOT = Path(__file__).resolve().parents[1]
PROFILE_ALEMBIC = ROOT / "services/profile/alembic.ini"

IDENTITY = {
    "family_name": "Benchmark",
    "given_names": "Ada Maria",
    "email": "ada.benchmark@example.org",
    "uci": "1234567890",
    "passport_number": "P1234567",
}
JOB_OFFER = {
    "noc_code": "21231",
    "teer": 1,
    "employer": "Benchmark Software Ltd.",
    "full_time": True,
    "non_seasonal": True,
    "duration_months": None,
    "lmia_or_exempt": True,
    "canadian_armed_forces": False,
}


def documents() -> tuple[dict[str, Any], dict[str, Any]]:
    """(without personal fields, with them): the example document, valid and FSWP-eligible."""
    from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE

    plain = copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)
    plain["job_offer"] = {**JOB_OFFER, "employer": "x"}
    personal = {**copy.deepcopy(plain), "identity": dict(IDENTITY), "job_offer": dict(JOB_OFFER)}
    return plain, personal


def _summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


async def measure_puts(server_url: str, puts: int) -> dict[str, Any]:
    """PUTs through the application layer, with and without personal fields."""
    from profile_service.adapters.uow import profile_uow
    from profile_service.application.handlers import create_profile, update_profile
    from profile_service.settings import ProfileSettings
    from shared.clock import Clock
    from shared.db import create_engine, session_factory
    from shared.migrations import upgrade_to_head
    from shared.rules.document import ProfileDocument
    from shared.testing import create_database, drop_database
    from shared.uow import UnitOfWork

    name = f"profile_privacy_bench_{uuid.uuid4().hex[:6]}"
    url = with_database(server_url, name)
    await create_database(url)
    try:
        await upgrade_to_head(PROFILE_ALEMBIC, url)
        settings = ProfileSettings(database_url=url, topic_prefix="privacybench.", db_pool_size=2)
        engine = create_engine(settings)
        sessions = session_factory(engine)
        clock = Clock()
        clock.set_now(datetime(2025, 6, 1, 9, 30, tzinfo=UTC))
        factory = profile_uow(lambda: UnitOfWork(sessions, settings, clock))
        results: dict[str, Any] = {}
        try:
            plain, personal = documents()
            labels = ("without_personal_fields", "with_personal_fields")
            variants: dict[str, list[ProfileDocument]] = {}
            state: dict[str, tuple[str, int]] = {}
            samples: dict[str, list[float]] = {label: [] for label in labels}
            for label, raw in zip(labels, (plain, personal), strict=True):
                variants[label] = [
                    ProfileDocument.model_validate({**raw, "sibling_in_canada": flag})
                    for flag in (False, True)
                ]
                async with factory() as uow:
                    profile = await create_profile(uow, "bench", variants[label][0])
                    await uow.commit()
                state[label] = (profile.profile_id, profile.version)
            # Interleaved, one PUT of each in turn, so that the machine's load weighs on both alike.
            for i in range(puts):
                for label in labels if i % 2 else labels[::-1]:
                    profile_id, version = state[label]
                    started = time.perf_counter()
                    async with factory() as uow:
                        updated = await update_profile(
                            uow, profile_id, "bench", version, variants[label][(i + 1) % 2]
                        )
                        await uow.commit()
                    samples[label].append((time.perf_counter() - started) * 1000)
                    state[label] = (profile_id, updated.version)
            for label in labels:
                results[label] = {"puts": puts, **_summary(samples[label])}
        finally:
            await engine.dispose()
        base, sealed = results["without_personal_fields"], results["with_personal_fields"]
        results["p50_overhead_ms"] = round(sealed["p50_ms"] - base["p50_ms"], 3)
        results["p50_ratio"] = round(sealed["p50_ms"] / base["p50_ms"], 3)
        return results
    finally:
        await drop_database(url)


def measure_rebuild(events: int) -> dict[str, Any]:
    """Records per second: ranking's decode of sealed vs plain events, and the profile replay opening them."""
    from profile_service.application.events import EVENTS
    from profile_service.domain.profile import Profile
    from ranking_service.replay.decode import read_item
    from shared.crypto import new_data_key
    from shared.envelope import encode
    from shared.events.catalogue import ProfileCreated, ProfileUpdated
    from shared.messages import envelope_for
    from shared.personal import open_document, seal_document

    plain, personal = documents()
    now = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
    key, pid = new_data_key(), str(uuid.uuid4())
    readable, sealed = seal_document(personal, key, pid)

    def updated(document: dict[str, Any], sealed_value: str | None) -> ProfileUpdated:
        return ProfileUpdated(
            profile_id=pid,
            owner="bench",
            document=document,
            status="in_pool",
            eligible_programs=["fsw"],
            submitted_at=now,
            expires_at=now,
            updated_at=now,
            sealed=sealed_value,
        )

    figures: dict[str, Any] = {"events": events}
    raws = {}
    for label, event in (("plain", updated(plain, None)), ("sealed", updated(readable, sealed))):
        envelope = envelope_for(event, source="ee/profile", time=now, aggregate_id=pid, aggregate_version=2)
        raws[label] = encode(envelope)
        figures[f"bytes_per_event_{label}"] = len(raws[label])
    # Five alternating rounds, the best of each kept: the machine is shared, the best is the cost.
    best = {"plain": 0.0, "sealed": 0.0}
    for _ in range(5):
        for label, raw in raws.items():
            started = time.perf_counter()
            for _ in range(events // 5):
                assert read_item(raw) is not None
            best[label] = max(best[label], (events // 5) / (time.perf_counter() - started))
    for label, rate in best.items():
        figures[f"ranking_decode_{label}_per_s"] = round(rate)

    created = ProfileCreated(profile_id=pid, owner="bench", document=plain, created_at=now)
    for label, opener in (
        ("plain", lambda e: e),
        ("sealed", lambda e: replace(e, document=open_document(e.document, e.sealed, key, pid), sealed=None)),
    ):
        one = updated(plain, None) if label == "plain" else updated(readable, sealed)
        stream = [created, *([one] * events)]
        started = time.perf_counter()
        # As the repository loads a stream: each wire event as the domain's, then opened.
        Profile.replay(opener(EVENTS.to_domain(event)) for event in stream)
        elapsed = time.perf_counter() - started
        figures[f"profile_replay_{label}_per_s"] = round(len(stream) / elapsed)
    figures["ranking_decode_ratio"] = round(
        figures["ranking_decode_sealed_per_s"] / figures["ranking_decode_plain_per_s"], 3
    )
    figures["profile_replay_ratio"] = round(
        figures["profile_replay_sealed_per_s"] / figures["profile_replay_plain_per_s"], 3
    )
    return figures


async def measure(server_url: str, puts: int = 300, events: int = 20_000) -> dict[str, Any]:
    return {"put": await measure_puts(server_url, puts), "rebuild": measure_rebuild(events)}


def describe(figures: dict[str, Any]) -> list[str]:
    put, rebuild = figures["put"], figures["rebuild"]
    return [
        f"  PUT without personal fields p50 {put['without_personal_fields']['p50_ms']:.2f} ms, "
        f"with them (sealed) p50 {put['with_personal_fields']['p50_ms']:.2f} ms "
        f"(+{put['p50_overhead_ms']:.2f} ms, x{put['p50_ratio']})",
        f"  rebuild: ranking decodes {rebuild['ranking_decode_plain_per_s']:,} plain / "
        f"{rebuild['ranking_decode_sealed_per_s']:,} sealed events/s (x{rebuild['ranking_decode_ratio']}, "
        f"{rebuild['bytes_per_event_plain']} / {rebuild['bytes_per_event_sealed']} bytes); profile replay "
        f"{rebuild['profile_replay_plain_per_s']:,} plain / {rebuild['profile_replay_sealed_per_s']:,} "
        f"opened events/s (x{rebuild['profile_replay_ratio']})",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    from profile_service.settings import ProfileSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--puts", type=int, default=300)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args(argv)
    server_url = ProfileSettings().database_url
    figures = asyncio.run(measure(server_url, args.puts, args.events))
    print("personal data encryption (issue 16)")
    for line in describe(figures):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
