"""The applications' refusals, in the platform's one hierarchy (`shared.errors`): each carries a
sentence a person can act on, and `shared.web` maps it to problem+json by its class."""

from __future__ import annotations

from dataclasses import dataclass

from shared import errors
from shared.errors import DomainError

__all__ = [
    "ApplicationIncomplete",
    "CoprCannotBeExtended",
    "CoprExpiredError",
    "DeadlinePassed",
    "DomainError",
    "FieldProblem",
    "InvalidCommand",
    "TransitionNotAllowed",
]


class TransitionNotAllowed(errors.TransitionNotAllowed):
    """The command is not allowed from the aggregate's current state (HTTP 409), naming both."""

    def __init__(self, action: str, state: str, detail: str) -> None:
        super().__init__(detail, extensions={"state": str(state), "action": action})
        self.action = action
        self.state = state


class DeadlinePassed(TransitionNotAllowed):
    title = "The invitation's deadline has passed"
    slug = "deadline-passed"


class CoprExpiredError(TransitionNotAllowed):
    title = "The COPR has expired"


class CoprCannotBeExtended(TransitionNotAllowed):
    title = "A COPR cannot be extended"
    slug = "copr-cannot-be-extended"


class InvalidCommand(errors.Unprocessable):
    """The command itself is malformed for the rules (HTTP 422)."""

    title = "Invalid command"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[("reasons", detail)])


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str  # dotted path, e.g. "passport.expiry"
    message: str


class ApplicationIncomplete(errors.Unprocessable):
    """The application lacks documents or a document does not meet the rules (HTTP 422)."""

    title = "The application is incomplete"
    slug = "application-incomplete"

    def __init__(self, missing: list[str], problems: list[FieldProblem]) -> None:
        parts = []
        if missing:
            parts.append(f"Missing: {', '.join(missing)}.")
        invalid = [p for p in problems if p.field not in missing]
        if invalid:
            parts.append(" ".join(p.message for p in invalid))
        super().__init__(
            " ".join(parts) + " Complete the application and submit it again.",
            errors=[(p.field, p.message) for p in problems],
            extensions={"missing": missing},
        )
        self.missing = missing
        self.problems = problems


class EvidenceExpired(ApplicationIncomplete):
    """A language result or ECA the invitation relied on has expired by the filing day (HTTP 422)."""

    title = "Evidence the invitation relied on has expired"
    slug = "evidence-expired"

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__([], problems)
        self.detail = " ".join(problem.message for problem in problems)
        self.args = (self.detail,)
