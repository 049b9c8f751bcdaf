"""Domain errors. Each carries a sentence a person can act on; the API maps them to problem+json."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule the domain refuses to break."""

    title = "Request refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TransitionNotAllowed(DomainError):
    """The command is not allowed in the profile's current status (HTTP 409)."""

    title = "Not allowed in the profile's current status"


class ProfileLocked(TransitionNotAllowed):
    """An open invitation or an application locks the profile (HTTP 409)."""

    title = "Profile locked"


class NominationConflict(TransitionNotAllowed):
    """A candidate holds at most one active nomination (HTTP 409)."""

    title = "Nomination already held"


class NotEligible(DomainError):
    """The profile meets no program's minimum requirements (HTTP 422), with every reason."""

    title = "Not eligible for any program"

    def __init__(self, detail: str, reasons: list[str]) -> None:
        super().__init__(detail)
        self.reasons = reasons


class NominationNotFound(DomainError):
    """The province holds no active nomination of this profile (HTTP 404)."""

    title = "No such nomination"
