"""Errors of the application layer (the API maps them, with the domain's, to problem+json)."""

from __future__ import annotations

from shared.rules.document import FieldError


class ProfileNotFound(Exception):
    """No such profile for this caller (HTTP 404: another owner's profile is not revealed either)."""

    def __init__(self, profile_id: str) -> None:
        super().__init__(f"There is no profile {profile_id} among yours; check the id.")
        self.profile_id = profile_id
        self.detail = str(self)


class VersionMismatch(Exception):
    """The client's If-Match is not the profile's current version (HTTP 412)."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"expected version {expected}, current {current}")
        self.expected = expected
        self.current = current


class InvalidDocument(Exception):
    """The document fails the checks against today (HTTP 422 naming each field)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors
