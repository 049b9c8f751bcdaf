"""The domain's errors: each says what is wrong and what to do (the API maps them to problem+json)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class DomainError(Exception):
    title = "Not allowed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidSubscription(DomainError):
    """Bad input in a subscription (HTTP 422 with the fields)."""

    title = "Invalid subscription"

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class UnsafeUrl(InvalidSubscription):
    """A webhook URL this service refuses to call (private, link-local, metadata, ...)."""

    title = "Webhook URL refused"

    def __init__(self, message: str) -> None:
        super().__init__([FieldProblem("url", message)])


class SubscriptionDeleted(DomainError):
    title = "Subscription deleted"
