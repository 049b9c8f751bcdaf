"""Domain errors. Each carries a sentence a person can act on; the API maps them to problem+json."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every rule the domain refuses to break."""

    title = "Request refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TransitionNotAllowed(DomainError):
    """The command is not allowed from the aggregate's current state (HTTP 409)."""

    title = "Not allowed in the current state"

    def __init__(self, action: str, state: str, detail: str) -> None:
        super().__init__(detail)
        self.action = action
        self.state = state


class DeadlinePassed(TransitionNotAllowed):
    title = "The invitation's deadline has passed"


class CoprExpiredError(TransitionNotAllowed):
    title = "The COPR has expired"


class CoprCannotBeExtended(TransitionNotAllowed):
    title = "A COPR cannot be extended"


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str  # dotted path, e.g. "passport.expiry"
    message: str


class ApplicationIncomplete(DomainError):
    """The application lacks documents or a document does not meet the rules (HTTP 422)."""

    title = "The application is incomplete"

    def __init__(self, missing: list[str], problems: list[FieldProblem]) -> None:
        parts = []
        if missing:
            parts.append(f"Missing: {', '.join(missing)}.")
        invalid = [p for p in problems if p.field not in missing]
        if invalid:
            parts.append(" ".join(p.message for p in invalid))
        super().__init__(" ".join(parts) + " Complete the application and submit it again.")
        self.missing = missing
        self.problems = problems
