"""Merging the replayed events into facts in memory, then scoring each changed profile once.

The merge of facts is deterministic whatever the order and the batching (`domain.candidate`): profile
facts follow the stream's `aggregateversion` (an old or repeated version changes nothing), invitation
states only move up. A profile event without a stream version, the only kind a redelivery could
apply twice, is deduplicated by event id (what the consumer's `processed_messages` would do).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson

from ranking_service.adapters.repository import copy_record
from ranking_service.domain.candidate import NO_STANDING, CandidateRow, ProfileFacts, apply_event, evaluate
from ranking_service.replay.decode import DOCUMENT_EVENTS, Item
from shared.domain_events import PersonalDataErased
from shared.rules.crs import pinned_rules


@dataclass
class Stats:
    events: int = 0  # records read
    applied: int = 0  # events that changed a profile's facts
    unchanged: int = 0  # old versions and repeats
    skipped: int = 0  # unknown types, and known types the projection has no handler for
    dead_lettered: int = 0
    written: int = 0  # rows written
    scored_reference: int = 0  # profiles scored the reference way (facts new to the scoring cache)

    def add(self, other: Stats) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


PENDING_DOCUMENTS: Final = 4_096
"""Documents held as decoded before being encoded to JSON text: a profile's next document event
within this many (its Submitted after its Created, an Updated) replaces it unencoded."""


@dataclass
class Merge:
    """Facts of every profile heard of, merged in memory; documents kept as compact JSON."""

    facts: dict[str, ProfileFacts] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    documents: dict[str, str] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest documents, not encoded yet
    seen: set[str] = field(default_factory=set)  # ids of profile events without a stream version
    stats: Stats = field(default_factory=Stats)

    def apply(self, item: Item) -> None:
        if item.version is None and isinstance(item.event, DOCUMENT_EVENTS):
            if item.event_id in self.seen:  # the consumer's processed_messages would drop it
                self.stats.unchanged += 1
                return
            self.seen.add(item.event_id)
        facts = self.facts.get(item.profile_id)
        if facts is None:
            facts = ProfileFacts(item.profile_id, item.owner)
        if not apply_event(facts, item.event, item.version):
            self.stats.unchanged += 1
            return
        self.stats.applied += 1
        self.facts[item.profile_id] = facts
        self.changed.add(item.profile_id)
        if facts.document is not None:  # a document event: kept as JSON text (a dict costs ~5x more),
            # encoded only once no later event of the profile replaced it among the next few thousand.
            self.pending[item.profile_id] = facts.document
            facts.document = None
            if len(self.pending) >= PENDING_DOCUMENTS:
                self.encode_pending()
        elif isinstance(item.event, PersonalDataErased):  # docs/PRIVACY.md: the document goes
            self.pending.pop(item.profile_id, None)
            self.documents.pop(item.profile_id, None)

    def encode_pending(self) -> None:
        """The documents held decoded, encoded to JSON text."""
        documents, dumps = self.documents, orjson.dumps
        for profile_id, document in self.pending.items():
            # As text, not orjson's bytes: those keep the encoder's whole buffer (~8 KB), text is exact.
            documents[profile_id] = dumps(document).decode()
        self.pending.clear()

    def rows(self, now: datetime, rules_name: str, ids: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        """COPY records of these changed profiles, each evaluated once as of `now`."""
        rules = pinned_rules(rules_name)  # None: the version in force on the day of `now`
        self.encode_pending()
        for profile_id in ids:
            facts = self.facts[profile_id]
            packed = self.documents.get(profile_id)
            facts.document = None if packed is None else orjson.loads(packed)
            standing = evaluate(facts, NO_STANDING, now, rules)
            record = copy_record(CandidateRow(facts, standing, 1), now, packed)
            facts.document = None
            yield record
