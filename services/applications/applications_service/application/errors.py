"""Refusals of the application layer, in the platform's hierarchy (`shared.errors`)."""

from __future__ import annotations

from shared.errors import DomainError, NotFound, StaleVersion

__all__ = ["Forbidden", "NotFound", "StaleVersion", "not_found"]


def not_found(what: str, identifier: str) -> NotFound:
    return NotFound(f"No {what} {identifier} exists; check the id.")


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
