"""The refusals every layer raises: one `DomainError` hierarchy for the four services (pure Python).

A domain rule, a command handler or a query refuses a request by raising one of these, with a
sentence the caller can act on; `shared.web.errors` maps every one of them to RFC 9457 problem+json
(status, title and problem type come from the class), so no service keeps its own ladder of
`except` clauses.

| class | status | for |
|---|---|---|
| `NotFound` | 404 | no such resource, or not the caller's to see (never 403: ids do not leak) |
| `Conflict` | 409 | the request clashes with the resource's state (`TransitionNotAllowed`) |
| `StaleVersion` | 412 | the client's `If-Match` is not the current version |
| `Unprocessable` | 422 | the request is well-formed but the rules refuse it (`errors` names fields) |
| `Unavailable` | 503 | a peer or the service's own state is not ready; retry after `retry_after` |

A service subclasses them to give its own `title` (and `slug`, the problem type's last part).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "Conflict",
    "DomainError",
    "NotFound",
    "StaleVersion",
    "TransitionNotAllowed",
    "Unavailable",
    "Unprocessable",
]


class DomainError(Exception):
    """A request the service refuses. `detail` says what happened this time and what to do."""

    status: ClassVar[int] = 409
    title: ClassVar[str] = "Request refused"
    slug: ClassVar[str | None] = None
    """The problem type's last part (`urn:ee:problem:<slug>`); None: the status's default."""

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[tuple[str, str]] = (),
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[tuple[str, str]] = list(errors)
        """(field, message) pairs, for refusals that name input fields."""
        self.extensions: dict[str, Any] = dict(extensions or {})
        """Extra members of the problem body (e.g. `{"reasons": [...]}`)."""

    @property
    def current_version(self) -> int | None:
        """The resource's version when the refusal knows it (sent back as its `ETag`)."""
        value = self.extensions.get("current_version")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def retry_after(self) -> int | None:
        """Seconds after which a retry may succeed (`Retry-After`), for temporary refusals."""
        return None


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class TransitionNotAllowed(Conflict):
    """The command is not allowed in the resource's current state."""

    title = "Not allowed in the current state"
    slug = "transition-not-allowed"


class StaleVersion(DomainError):
    """The client's `If-Match` (`expected`) is not the resource's version (`current`, None if unknown)."""

    status = 412
    title = "Precondition failed"

    def __init__(self, expected: int, current: int | None, *, what: str = "resource") -> None:
        now = f"it is at version {current}" if current is not None else "it changed meanwhile"
        super().__init__(
            f"The {what} changed since you read it (you sent version {expected}, {now}): read it "
            "again, re-apply your change and retry with the new ETag.",
            extensions={"current_version": current, "expected_version": expected},
        )
        self.expected = expected
        self.current = current


class Unprocessable(DomainError):
    status = 422
    title = "Invalid request"


class Unavailable(DomainError):
    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self._retry_after = retry_after

    @property
    def retry_after(self) -> int | None:
        return self._retry_after
