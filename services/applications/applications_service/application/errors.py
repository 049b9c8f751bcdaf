"""Refusals of the application layer, in the platform's hierarchy (`shared.errors`)."""

from __future__ import annotations

from shared.errors import NotFound, StaleVersion

__all__ = ["NotFound", "StaleVersion", "not_found"]


def not_found(what: str, identifier: str) -> NotFound:
    """No such invitation or application, or not the caller's (never told apart: ids do not leak)."""
    return NotFound(f"There is no {what} {identifier} among yours; check the id.")
