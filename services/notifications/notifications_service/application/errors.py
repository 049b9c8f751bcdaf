"""Errors of the application layer, in the platform's hierarchy (`shared.errors`)."""

from __future__ import annotations

from shared.errors import NotFound, StaleVersion

__all__ = ["NotFound", "StaleVersion", "not_found"]


def not_found(what: str, identifier: str) -> NotFound:
    """No such resource, or not the caller's to see (404 either way: ids do not leak)."""
    return NotFound(f"No {what} {identifier} among yours; check the id.")
