"""Refusals of the application layer, in the platform's hierarchy (`shared.errors`)."""

from __future__ import annotations

from shared.errors import NotFound, StaleVersion, Unprocessable
from shared.rules.document import FieldError

__all__ = ["InvalidDocument", "ProfileNotFound", "StaleVersion"]


class ProfileNotFound(NotFound):
    """No such profile for this caller (HTTP 404: another owner's profile is not revealed either)."""

    title = "Profile not found"

    def __init__(self, profile_id: str) -> None:
        super().__init__(f"There is no profile {profile_id} among yours; check the id.")
        self.profile_id = profile_id


class InvalidDocument(Unprocessable):
    """The document fails the checks against today (HTTP 422 naming each field)."""

    title = "Invalid profile document"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(
            f"{len(errors)} field(s) of the document are invalid (see `errors`); correct them, resend.",
            errors=[(e.field, e.message) for e in errors],
        )
        self.field_errors = errors
