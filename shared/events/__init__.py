"""The event catalogue and its registry."""

from shared.events.catalogue import *  # noqa: F403
from shared.events.catalogue import CATALOGUE, EVENT_TOPICS, Event
from shared.events.registry import REGISTRY, EventRegistry, UnknownEventType

__all__ = ["CATALOGUE", "EVENT_TOPICS", "REGISTRY", "Event", "EventRegistry", "UnknownEventType"]
