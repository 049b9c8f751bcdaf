"""The fan-out: each consumed event is logged and turned into one delivery per enabled subscription
that asked for its type and may see it, in the consumer's transaction (so an event is fanned out
exactly once, whatever the redeliveries and crashes).

The consumer hands over each batch at once (`shared.consumer`'s batch handler): one read of the
subscriptions and nominations, one insert of events, one of deliveries per batch.
Nominations are applied in event order as the batch is walked, so a NominationIssued followed by an
Invited in the same batch reaches the nominating province.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from notifications_service.application.events import EVENT_TYPES
from notifications_service.application.ports import Target, UnitOfWork
from notifications_service.domain.scope import Audience, matches, may_see
from shared.envelope import Envelope, encode
from shared.events.catalogue import NominationIssued, NominationWithdrawn, PersonalDataErased

NOMINATION_ISSUED = f"ee.profile.{NominationIssued.__name__}"
NOMINATION_WITHDRAWN = f"ee.profile.{NominationWithdrawn.__name__}"
PERSONAL_DATA_ERASED = f"ee.profile.{PersonalDataErased.__name__}"


class FanOut:
    def __init__(self, on_new_deliveries: Callable[[], None] | None = None) -> None:
        self.on_new_deliveries = on_new_deliveries
        self.events = 0
        self.deliveries = 0

    async def handle_batch(self, uow: UnitOfWork, envelopes: Sequence[Envelope]) -> None:
        """Log the batch's events and fan them out, in the consumer's transaction."""
        if not envelopes:
            return
        store, now = uow.deliveries, uow.clock.now()
        event_rows = [_event_row(envelope) for envelope in envelopes]
        await store.record_events(event_rows)
        targets = await store.enabled_targets()
        facts = [EVENT_TYPES.facts_of(e.type, e.data) for e in envelopes]
        standing = await store.nominating_provinces(f.profile_id for f in facts if f.profile_id)
        changed: dict[str, str | None] = {}
        rows: list[dict[str, Any]] = []
        for envelope, fact, event_row in zip(envelopes, facts, event_rows, strict=True):
            pid = fact.profile_id
            if fact.family == NOMINATION_ISSUED and pid is not None:
                standing[pid] = changed[pid] = str(envelope.data.get("province"))
            nominated_by = standing.get(pid) if pid is not None else None
            if fact.family == NOMINATION_WITHDRAWN and pid is not None:
                if standing.get(pid) == envelope.data.get("province"):
                    standing[pid] = changed[pid] = None
            for target in targets:
                if matches(target.event_types, fact.family) and may_see(
                    _audience(target), fact, nominated_by
                ):
                    rows.append(store.pending_row(target.id, envelope.id, event_row["ordering_key"], now))
        await store.save_nominations(changed, now)
        added = await store.add_deliveries(rows) if rows else 0
        for envelope, fact in zip(envelopes, facts, strict=True):
            if fact.family == PERSONAL_DATA_ERASED and fact.profile_id is not None:
                # docs/PRIVACY.md: the person's earlier events and their webhook payloads go (sent or
                # not); the erasure itself is still delivered, so that subscribers drop their copies.
                await store.forget_person(fact.profile_id, keep_event_id=envelope.id)
        self.events += len(event_rows)
        self.deliveries += added
        if added and self.on_new_deliveries is not None:
            uow.after_commit(self.on_new_deliveries)


def _audience(target: Target) -> Audience:
    return Audience(target.subscriber, target.role, target.province, target.candidates)


def _event_row(envelope: Envelope) -> dict[str, Any]:
    return {
        "event_id": envelope.id,
        "type": envelope.type,
        "time": envelope.time,
        "ordering_key": envelope.subject or envelope.id,
        # its JSON, stored as is: decoding it here only to encode it again cost CPU on every event
        "envelope": encode(envelope),
    }
