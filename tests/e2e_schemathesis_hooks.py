"""Schemathesis hooks for the end-to-end bad-input test (`SCHEMATHESIS_HOOKS=e2e_schemathesis_hooks`).

`error_is_problem_json`: every 4xx/5xx answer is RFC 9457 `application/problem+json` with `type`,
`title`, `status` (equal to the HTTP status) and `detail`.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

PROBLEM_JSON = "application/problem+json"


@schemathesis.check
def error_is_problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith(PROBLEM_JSON):
        raise AssertionError(f"{response.status_code} answered as {content_type!r}, not {PROBLEM_JSON}")
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code}: the problem body is not JSON ({exc})") from None
    missing = [
        name
        for name in ("type", "title", "status", "detail")
        if not isinstance(body, dict) or name not in body
    ]
    if missing:
        raise AssertionError(f"{response.status_code}: problem+json without {', '.join(missing)}")
    if body["status"] != response.status_code:
        raise AssertionError(
            f"problem status {body['status']} differs from the HTTP status {response.status_code}"
        )
    return None
