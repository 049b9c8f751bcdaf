"""Errors of the application layer (the domain's own live in `domain.errors`)."""

from __future__ import annotations


class NotFound(Exception):
    def __init__(self, what: str, identifier: str) -> None:
        super().__init__(f"No {what} {identifier} exists; check the id.")
        self.detail = str(self)


class Forbidden(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StaleVersion(Exception):
    """The client's If-Match is not the subscription's version (HTTP 412)."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"The subscription changed since you read it (you sent version {expected}, it is now at "
            f"version {current}); GET it again and retry with the new ETag."
        )
        self.detail = str(self)
        self.current = current
