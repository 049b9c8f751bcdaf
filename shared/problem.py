"""RFC 9457 problem details: the one shape of every HTTP error.

`raise Problem(409, "Profile locked", "Profile 123 has an invitation; decline it or apply first.")`
from anywhere (route, dependency, command handler); `shared.web` turns it into an
`application/problem+json` response. Kept apart from `shared.web` so that `shared.auth` and the
services' application layers can raise it without importing the app factory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:ee:problem:"

_SLUGS: dict[int, str] = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition-failed",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "validation",
    428: "precondition-required",
    429: "too-many-requests",
    500: "internal",
    503: "unavailable",
    504: "timeout",
}


def problem_type(status: int) -> str:
    """The default `type` URI for a status, e.g. `urn:ee:problem:not-found` for 404."""
    return PROBLEM_TYPE_BASE + _SLUGS.get(status, f"http-{status}")


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class FieldError(TypedDict):
    field: str
    message: str


class Problem(Exception):
    """An error with an HTTP status and a message a person can act on.

    `title` is short and the same for every occurrence of this kind of problem; `detail` explains
    this occurrence and what to do about it. `errors` lists field-level problems (validation);
    `headers` are added to the response (e.g. `Retry-After`, `WWW-Authenticate`); `extensions` are
    extra members of the JSON body (e.g. `{"current_version": 7}`).
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str | None = None,
        errors: Sequence[FieldError | Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        instance: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ or problem_type(status)
        self.errors: list[FieldError] | None = (
            [FieldError(field=str(e["field"]), message=str(e["message"])) for e in errors]
            if errors is not None
            else None
        )
        self.headers: dict[str, str] = dict(headers or {})
        self.instance = instance
        self.extensions: dict[str, Any] = dict(extensions or {})

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.instance or instance:
            body["instance"] = self.instance or instance
        if self.errors is not None:
            body["errors"] = list(self.errors)
        for key, value in self.extensions.items():
            body.setdefault(key, value)
        return body


class FieldErrorModel(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `work_history.0.start`.")
    message: str = Field(description="What is wrong and how to fix it.")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:ee:problem:validation",
                    "title": "Invalid request",
                    "status": 422,
                    "detail": "1 field is invalid; correct it and send the request again.",
                    "instance": "/v1/profiles",
                    "errors": [{"field": "age", "message": "Must be 17 or more."}],
                    "correlation_id": "0b6f8a1e-6c1b-4b5e-9d0a-1f3e5c7a9b2d",
                }
            ]
        },
    )

    type: str = Field(description="URI identifying the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="What went wrong this time and what to do about it.")
    instance: str | None = Field(default=None, description="The request path that had the problem.")
    errors: list[FieldErrorModel] | None = Field(
        default=None, description="Field-level problems (validation errors only)."
    )
    correlation_id: str | None = Field(default=None, description="Quote it when reporting the problem.")
