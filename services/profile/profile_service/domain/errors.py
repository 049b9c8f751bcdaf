"""The profile's refusals, in the platform's one hierarchy (`shared.errors`): each carries a sentence a
person can act on, and `shared.web` maps it to problem+json by its class."""

from __future__ import annotations

from shared.errors import DomainError, NotFound, TransitionNotAllowed, Unprocessable

__all__ = [
    "DomainError",
    "NominationConflict",
    "NominationNotFound",
    "NotEligible",
    "ProfileLocked",
    "TransitionNotAllowed",
]


class ProfileLocked(TransitionNotAllowed):
    """An open invitation or an application locks the profile (HTTP 409)."""

    title = "Profile locked"


class NominationConflict(TransitionNotAllowed):
    """A candidate holds at most one active nomination (HTTP 409)."""

    title = "Nomination already held"


class NotEligible(Unprocessable):
    """The profile meets no program's minimum requirements (HTTP 422), with every reason."""

    title = "Not eligible for any program"
    slug = "not-eligible"

    def __init__(self, detail: str, reasons: list[str]) -> None:
        super().__init__(detail, extensions={"reasons": reasons})
        self.reasons = reasons


class NominationNotFound(NotFound):
    """The province holds no active nomination of this profile (HTTP 404)."""

    title = "No such nomination"
