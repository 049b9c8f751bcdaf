"""The HTTP edge every service serves, one module per concern.

| module | concern |
|---|---|
| `shared.web.app` | `create_service_app`: the FastAPI app of a service, wired from the modules below |
| `shared.web.errors` | every error as RFC 9457 problem+json; `problem_of` maps `shared.errors` |
| `shared.web.middleware` | correlation id in and out, HTTP metrics, access log, the last-resort 500 |
| `shared.web.conditional` | ETag / If-Match: `etag_header`, `IfMatch`, `parse_if_match`, `check_version` |
| `shared.web.commands` | a command over HTTP: one transaction, one Idempotency-Key rule, the answer's ETag |
| `shared.web.admin_clock` | `GET`/`PUT /v1/admin/clock` (ops), outside production |
| `shared.web.ops` | `/healthz`, `/readyz` (named checks a service can add to), `/metrics` |
| `shared.web.openapi` | error responses documented as problem+json |

The names services use most are exported here.
"""

from shared.problem import PROBLEM_JSON, Problem, ProblemDetails
from shared.web.admin_clock import ClockState, ClockUpdate
from shared.web.app import RuntimeLike, SettingsLike, create_service_app, get_runtime
from shared.web.conditional import IfMatch, check_version, etag_header, expected_version, parse_if_match
from shared.web.errors import problem_of, problem_response

__all__ = [
    "PROBLEM_JSON",
    "ClockState",
    "ClockUpdate",
    "IfMatch",
    "Problem",
    "ProblemDetails",
    "RuntimeLike",
    "SettingsLike",
    "check_version",
    "create_service_app",
    "etag_header",
    "expected_version",
    "get_runtime",
    "parse_if_match",
    "problem_of",
    "problem_response",
]
