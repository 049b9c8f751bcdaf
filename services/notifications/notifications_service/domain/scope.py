"""Who hears of what (pure): the event types a subscription asks for, the role's scope, and the data it
may see.

- **ops**: every event (the notifications service's own included, e.g. a subscription disabled).
- **partner**: events about the profiles it owns (`owner` is its `sub`), nothing else.
- **province**: rounds of invitations; events about candidates it nominated (the latest
  NominationIssued not withdrawn is its own) or that it follows (the `candidates` list of its
  subscription: profiles it found with the ranking service's search), unless another province
  nominated them. It never sees the profile document or the owner's account.
- **officer**, **candidate**: no subscriptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SUBSCRIBER_ROLES = frozenset({"partner", "province", "ops"})
# Fields a province never receives: the whole profile document and the account behind the profile.
PROVINCE_HIDDEN_FIELDS = frozenset({"document", "owner", "sealed"})


def family_of(event_type: str) -> str:
    """`ee.draws.Invited.v1` -> `ee.draws.Invited`."""
    family, _, version = event_type.rpartition(".v")
    return family if family and version.isdigit() else event_type


@dataclass(frozen=True)
class EventTypes:
    """The platform's event types as scope sees them (families `ee.<service>.<Name>`, no version):
    every one, those about one candidate, and the rounds of invitations. The application layer builds
    it from the catalogue (`application.events.EVENT_TYPES`): the domain never reads the wire models."""

    producers: tuple[str, ...]
    families: frozenset[str]
    candidate: frozenset[str]
    rounds: frozenset[str]

    def visible_to(self, role: str) -> frozenset[str]:
        if role == "ops":
            return self.families
        if role == "partner":
            return self.candidate
        if role == "province":
            return self.candidate | self.rounds
        return frozenset()

    def facts_of(self, event_type: str, data: Mapping[str, Any]) -> EventFacts:
        family = family_of(event_type)
        if family in self.candidate:
            return EventFacts(family, str(data.get("profile_id")), str(data.get("owner")))
        return EventFacts(family, None, None, round=family in self.rounds)


def pattern_problem(pattern: str, role: str, types: EventTypes) -> str | None:
    """Why `pattern` is not an acceptable event type filter for `role`, or None when it is."""
    visible = types.visible_to(role)
    producers = types.producers
    if pattern == "*":
        return None
    if pattern.endswith(".*"):
        producer = pattern.removeprefix("ee.").removesuffix(".*")
        if not pattern.startswith("ee.") or producer not in producers:
            return f"unknown service in {pattern!r}: use ee.<service>.* with one of {', '.join(producers)}"
        if not any(f.startswith(f"ee.{producer}.") for f in visible):
            return f"a {role} receives no event of {pattern}"
        return None
    if pattern not in types.families:
        return (
            f"unknown event type {pattern!r}: use a name like ee.draws.Invited (no version), "
            "ee.<service>.* or *"
        )
    if pattern not in visible:
        return f"a {role} never receives {pattern}"
    return None


def matches(patterns: Iterable[str], family: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == family:
            return True
        if pattern.endswith(".*") and family.startswith(pattern[:-1]):
            return True
    return False


@dataclass(frozen=True)
class Audience:
    """The part of a subscription that decides what it may hear of."""

    subscriber: str
    role: str
    province: str | None
    candidates: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EventFacts:
    family: str
    profile_id: str | None
    owner: str | None
    round: bool = False
    """A round of invitations (every province hears of it)."""


def may_see(audience: Audience, facts: EventFacts, nominated_by: str | None) -> bool:
    """Is this event within the audience's scope? `nominated_by`: the province whose nomination of
    the event's candidate stands, if any (as of this event)."""
    if audience.role == "ops":
        return True
    if audience.role == "partner":
        return facts.profile_id is not None and facts.owner == audience.subscriber
    if audience.role == "province":
        if facts.round:
            return True
        if facts.profile_id is None or audience.province is None:
            return False
        if nominated_by is not None:
            return nominated_by == audience.province
        return facts.profile_id in audience.candidates
    return False


def redact(role: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The event data the role may receive."""
    if role == "province":
        return {k: v for k, v in data.items() if k not in PROVINCE_HIDDEN_FIELDS}
    return dict(data)
