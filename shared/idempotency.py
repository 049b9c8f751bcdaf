"""`Idempotency-Key` for retried commands, stored in the platform table `idempotency_keys`.

Same key + same request → the stored response again (marked `Idempotent-Replayed: true`); same key
+ a different request → 422. The key is recorded in the command's own transaction, so either the
command and its key commit together or neither does.

```python
KEYS = IdempotencyKeys("applications.apply")

@router.post("/v1/invitations/{ita_id}/application", status_code=201)
async def apply(ita_id: str, body: ApplyBody, key: IdempotencyKey, principal: ..., runtime=...):
    fingerprint = request_fingerprint("POST", f"/v1/invitations/{ita_id}/application", body.model_dump())
    async with runtime.uow() as uow:
        stored = key and await KEYS.lookup(uow.session, key, fingerprint, caller=principal.sub)
        if stored:
            return stored.to_response()
        result = await handle_apply(uow, ...)
        if key is not None:
            await KEYS.save(uow.session, key, fingerprint, 201, result, caller=principal.sub)
        await uow.commit()
    return result
```

Two requests racing with the same key: the second `save` waits for the first transaction, finds
its row and raises 409 (its own transaction then rolls back); retrying returns the stored response.

The table is `shared.db.idempotency_keys` (every service's first migration creates it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import orjson
import sqlalchemy as sa
from fastapi import Depends, Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import idempotency_keys
from shared.problem import FieldError, Problem

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_KEY_LENGTH: Final = 255
_KEY_RE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII, no spaces


def request_fingerprint(method: str, path: str, body: Any = None) -> str:
    """A SHA-256 of the request's method, path and JSON body (key order does not matter)."""
    canonical = orjson.dumps([method.upper(), path, jsonable_encoder(body)], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def parse_idempotency_key(value: str | None, *, required: bool = False) -> str | None:
    """The key from the header; Problem 400 when malformed (or 428 when `required` and absent)."""
    if value is None or value == "":
        if required:
            raise Problem(
                428,
                "Idempotency-Key required",
                "Send an `Idempotency-Key` header (a UUID you generate) so that retrying this request "
                "cannot apply it twice; reuse the same key when you retry.",
            )
        return None
    if len(value) > MAX_KEY_LENGTH or not _KEY_RE.match(value):
        raise Problem(
            400,
            "Malformed Idempotency-Key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters without spaces "
            "(a UUID is ideal).",
            errors=[FieldError(field="header.Idempotency-Key", message="Use a UUID.")],
        )
    return value


async def _idempotency_key_header(
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="A unique value (e.g. a UUID) per command; resend it when retrying.",
        ),
    ] = None,
) -> str | None:
    return parse_idempotency_key(key)


IdempotencyKey = Annotated[str | None, Depends(_idempotency_key_header)]
"""Route parameter type: the validated `Idempotency-Key` header, or None (documented in OpenAPI)."""


async def _required_idempotency_key_header(
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="Required: a unique value (e.g. a UUID) per command; resend it when retrying.",
        ),
    ] = None,
) -> str:
    parsed = parse_idempotency_key(key, required=True)
    assert parsed is not None
    return parsed


RequiredIdempotencyKey = Annotated[str, Depends(_required_idempotency_key_header)]
"""Route parameter type: the validated `Idempotency-Key` header; 428 without it."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: Any

    def to_response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        """The stored response again, marked `Idempotent-Replayed: true`."""
        return JSONResponse(
            self.body, status_code=self.status_code, headers={REPLAYED_HEADER: "true", **(headers or {})}
        )


def _reused(key: str) -> Problem:
    return Problem(
        422,
        "Idempotency-Key reused",
        f"The Idempotency-Key {key!r} was already used for a different request; use a new key for a "
        "new request, and the same key only to retry the very same one.",
    )


class IdempotencyKeys:
    """Idempotency keys of one operation (`scope`, e.g. `"profile.create"`).

    Pass `caller` (the principal's `sub`) so that two callers' keys can never collide; it becomes
    part of the stored scope.
    """

    def __init__(self, scope: str) -> None:
        if not scope:
            raise ValueError("scope must name the operation, e.g. 'profile.create'")
        self.scope = scope

    def _scope(self, caller: str | None) -> str:
        return self.scope if caller is None else f"{self.scope}:{caller}"

    async def lookup(
        self, session: AsyncSession, key: str, request_hash: str, *, caller: str | None = None
    ) -> StoredResponse | None:
        """The stored response for `key`, None when unseen; Problem 422 if it was another request."""
        row = (
            await session.execute(
                sa.select(
                    idempotency_keys.c.request_hash,
                    idempotency_keys.c.status_code,
                    idempotency_keys.c.response,
                ).where(idempotency_keys.c.scope == self._scope(caller), idempotency_keys.c.key == key)
            )
        ).one_or_none()
        if row is None:
            return None
        if row.request_hash != request_hash:
            raise _reused(key)
        return StoredResponse(status_code=row.status_code, body=row.response)

    async def save(
        self,
        session: AsyncSession,
        key: str,
        request_hash: str,
        status_code: int,
        response: Any,
        *,
        caller: str | None = None,
        now: datetime | None = None,
    ) -> StoredResponse:
        """Record the response in the caller's transaction.

        If a concurrent request with the same key committed first: Problem 409 (same request; a retry
        returns its response) or 422 (a different request). Raise it out of the unit of work so this
        request's changes roll back.
        """
        body = jsonable_encoder(response)
        values: dict[str, Any] = {
            "scope": self._scope(caller),
            "key": key,
            "request_hash": request_hash,
            "status_code": status_code,
            "response": body,
        }
        if now is not None:
            values["created_at"] = now
        inserted = (
            await session.execute(
                pg_insert(idempotency_keys)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["scope", "key"])
                .returning(idempotency_keys.c.key)
            )
        ).scalar_one_or_none()
        if inserted is None:
            existing = await self.lookup(session, key, request_hash, caller=caller)  # 422 if different
            raise Problem(
                409,
                "Request already processed",
                f"A request with the Idempotency-Key {key!r} was processed at the same time as this one; "
                "send it again to get that request's response.",
                extensions={"stored_status": existing.status_code if existing else None},
            )
        return StoredResponse(status_code=status_code, body=body)

    async def amend(
        self, session: AsyncSession, key: str, response: Any, *, caller: str | None = None
    ) -> None:
        """Replace the stored response of `key`: for a command that goes on after the transaction that
        recorded it (and whose answer tells what it did since). Nothing when the key is unknown."""
        await session.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.scope == self._scope(caller), idempotency_keys.c.key == key)
            .values(response=jsonable_encoder(response))
        )

    @staticmethod
    async def purge(session: AsyncSession, older_than: datetime) -> int:
        """Delete keys recorded before `older_than` (all scopes); returns how many."""
        result = await session.execute(
            sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < older_than)
        )
        return int(getattr(result, "rowcount", 0) or 0)
