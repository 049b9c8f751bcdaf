"""The notifications' refusals, in the platform's one hierarchy (`shared.errors`): each says what is
wrong and what to do, and `shared.web` maps it to problem+json by its class."""

from __future__ import annotations

from dataclasses import dataclass

from shared import errors
from shared.errors import DomainError

__all__ = ["DomainError", "FieldProblem", "InvalidSubscription", "UnsafeUrl"]


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class InvalidSubscription(errors.Unprocessable):
    """Bad input in a subscription (HTTP 422 naming the fields)."""

    title = "Invalid subscription"
    slug = "invalid-subscription"

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(
            "; ".join(f"{p.field}: {p.message}" for p in problems),
            errors=[(p.field, p.message) for p in problems],
        )
        self.problems = problems


class UnsafeUrl(InvalidSubscription):
    """A webhook URL this service refuses to call (private, link-local, metadata, ...)."""

    title = "Webhook URL refused"
    slug = "unsafe-webhook-url"

    def __init__(self, message: str) -> None:
        super().__init__([FieldProblem("url", message)])
