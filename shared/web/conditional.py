"""Conditional requests: the aggregate's version as its `ETag`, and `If-Match` on every command.

One rule for every service: a command that changes an existing resource takes `If-Match` with the
ETag of the caller's last read of it (428 without it, 400 when malformed, 412 when stale).

```python
@router.post("/v1/things/{thing_id}/close")
async def close(thing_id: str, expected: IfMatch, ...) -> ...:
    ...  # handler raises shared.errors.StaleVersion when `expected` is not the current version
```
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from shared.errors import StaleVersion
from shared.problem import FieldError, Problem

__all__ = ["IfMatch", "check_version", "etag_header", "expected_version", "parse_if_match"]

_ETAG_RE = re.compile(r'^"(0|[1-9][0-9]{0,17})"$')


def etag_header(version: int) -> str:
    """The `ETag` value for an aggregate at `version`: `"7"` (quotes included)."""
    if version < 0:
        raise ValueError(f"version must be >= 0, got {version}")
    return f'"{version}"'


def parse_if_match(value: str | None) -> int:
    """The version in an `If-Match` header; Problem 428 when absent, 400 when malformed."""
    if value is None or not value.strip():
        raise Problem(
            428,
            "Precondition required",
            "This request changes a resource: send `If-Match` with the ETag from your last read of it "
            '(for example `If-Match: "3"`), so that you do not overwrite a change you have not seen.',
        )
    match = _ETAG_RE.match(value.strip())
    if match is None:
        raise Problem(
            400,
            "Malformed If-Match",
            f'If-Match must be exactly one ETag as returned in the ETag header, like "3" (with the '
            f"quotes; no W/ prefix, no *, no list); got {value.strip()[:64]!r}.",
            errors=[FieldError(field="header.If-Match", message='Expected an ETag like "3".')],
        )
    return int(match.group(1))


def expected_version(request: Request) -> int:
    """The version the client expects (from `If-Match`): 428 without it, 400 when malformed."""
    return parse_if_match(request.headers.get("If-Match"))


async def _if_match_dependency(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The ETag from your last read of the resource, e.g. `"3"`. Required.',
        ),
    ] = None,
) -> int:
    return parse_if_match(if_match)


IfMatch = Annotated[int, Depends(_if_match_dependency)]
"""Route parameter type: `expected: IfMatch` gives the If-Match version (documented in OpenAPI)."""


def check_version(expected: int, current: int, *, what: str = "resource") -> None:
    """Raise `StaleVersion` (412 with the current ETag) when `expected` (If-Match) is not `current`."""
    if expected != current:
        raise StaleVersion(expected, current, what=what)
