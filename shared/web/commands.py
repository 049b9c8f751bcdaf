"""A state-changing command over HTTP, the one way every service runs it.

The rule (the same in the four services):

- a command on an existing resource takes `If-Match` with the ETag of the caller's last read
  (`shared.web.conditional.IfMatch`: 428 without it, 412 when stale);
- every command takes an optional `Idempotency-Key` (`shared.idempotency.IdempotencyKey`): the first
  answer is recorded in the command's own transaction, and the same key with the same request gets
  that answer again (`Idempotent-Replayed: true`), the same key with another request a 422;
- the answer carries the resource's `ETag` (and `Location` when the command creates it).

```python
@router.post("/v1/things/{thing_id}/close")
async def close(thing_id: str, expected: IfMatch, key: IdempotencyKey, principal: ..., runtime: Runtime,
                request: Request) -> Response:
    command = IdempotentCommand("things.close", key, request, principal.sub)
    return await command.run(runtime.uow, lambda uow: close_thing(uow, thing_id, expected), ThingView.of)
```

A command whose handler opens its own transactions (with retries) records the key in the transaction
that saves, through a callback: `await command.run_in_handler(runtime.uow, lambda record:
handler(..., on_saved=lambda session, result: record(session, View.of(result))))`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import orjson
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.idempotency import REPLAYED_HEADER, IdempotencyKeys, request_fingerprint
from shared.uow import one_write_commits_alone
from shared.web.conditional import etag_header

__all__ = ["IdempotentCommand", "answer_headers"]

Answer = dict[str, Any]


class _UnitOfWork(Protocol):
    @property
    def session(self) -> AsyncSession: ...

    async def commit(self) -> None: ...


def answer_headers(
    answer: Answer, location: str | None = None, *, version_field: str = "version"
) -> dict[str, str]:
    """`ETag` from the answer's `version` (or `version_field`, when it has one) and `Location` when
    given."""
    headers: dict[str, str] = {}
    version = answer.get(version_field)
    if isinstance(version, int) and not isinstance(version, bool):
        headers["ETag"] = etag_header(version)
    if location is not None:
        headers["Location"] = location
    return headers


class IdempotentCommand:
    """One command request: its `Idempotency-Key` (or None), the caller and the request's fingerprint.

    `scope` names the operation (`"profile.submit"`); keys are per caller, so two callers' keys never
    collide. `body` is the request's JSON body, or the pydantic model it was read into (part of the
    fingerprint with the method and path; computed only when the request has a key).
    `status` is the success status; `location(answer)` gives the `Location` of a created resource (or None).
    `version_field` names the answer's field that is the resource's ETag (`version` by default).
    `store(answer)` / `restore(stored)` turn an answer into what the key's row holds and back (an
    answer holding a secret is stored with it sealed, e.g.); by default the answer as it is.
    """

    def __init__(
        self,
        scope: str,
        key: str | None,
        request: Request,
        caller: str,
        *,
        body: Any = None,
        status: int = 200,
        location: Callable[[Answer], str | None] | None = None,
        version_field: str = "version",
        store: Callable[[Answer], Answer] | None = None,
        restore: Callable[[Answer], Answer] | None = None,
    ) -> None:
        self.keys = IdempotencyKeys(scope)
        self.key = key
        self.caller = caller
        self.status = status
        self.location = location
        self.version_field = version_field
        self.store = store or _as_is
        self.restore = restore or _as_is
        self._request = request
        self._body = body
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """The request's fingerprint (method, path, body), made the first time a key needs it."""
        if self._fingerprint is None:
            body = self._body
            if isinstance(body, BaseModel):
                body = body.model_dump(mode="json")
            self._fingerprint = request_fingerprint(self._request.method, self._request.url.path, body)
        return self._fingerprint

    def respond(self, answer: Answer, *, replayed: bool = False) -> Response:
        """The answer with its `ETag` (and `Location`); no body for a 204."""
        location = self.location(answer) if self.location else None
        headers = answer_headers(answer, location, version_field=self.version_field)
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        if self.status == 204:
            return Response(status_code=204, headers=headers)
        return Response(
            orjson.dumps(answer), status_code=self.status, headers=headers, media_type="application/json"
        )

    async def replay(self, session: AsyncSession) -> Response | None:
        """The recorded answer for this key and request, None when the key is new (or absent)."""
        if self.key is None:
            return None
        stored = await self.keys.lookup(session, self.key, self.fingerprint, caller=self.caller)
        if stored is None:
            return None
        self.status = stored.status_code
        return self.respond(self.restore(stored.body), replayed=True)

    async def record(self, session: AsyncSession, answer: Answer) -> None:
        """Record `answer` for this key in the command's transaction (nothing without a key)."""
        if self.key is not None:
            stored = self.store(answer)
            await self.keys.save(session, self.key, self.fingerprint, self.status, stored, caller=self.caller)

    async def amend(self, session: AsyncSession, answer: Answer) -> None:
        """Replace the answer recorded for this key (a command that went on after recording it)."""
        if self.key is not None:
            await self.keys.amend(session, self.key, self.store(answer), caller=self.caller)

    async def run(
        self,
        uow_factory: Callable[[], AbstractAsyncContextManager[Any]],
        work: Callable[[Any], Awaitable[Any]],
        shape: Callable[[Any], Any],
    ) -> Response:
        """In one transaction: replay a known key, or run `work(uow)`, shape its result into the JSON
        answer (`shape(result)`, a pydantic model or a dict), record it under the key, and commit."""
        async with uow_factory() as uow:
            # Without a key, no session: the command's statements go through the unit of work's
            # connection alone (`shared.db.Transaction`), and its one append, written after its reads,
            # commits by itself (nothing is recorded after it).
            replayed = None if self.key is None else await self.replay(uow.session)
            if replayed is not None:
                return replayed
            if self.key is None:
                one_write_commits_alone(uow)
            answer = _json(shape(await work(uow)))
            if self.key is not None:
                await self.record(uow.session, answer)
            await uow.commit()
        return self.respond(answer)

    async def run_in_handler(
        self,
        uow_factory: Callable[[], AbstractAsyncContextManager[Any]],
        act: Callable[[Recorder], Awaitable[object]],
    ) -> Response:
        """For a handler that opens its own transactions (and retries a lost race): replay a known key,
        or run `act(record)`, the handler calling `await record(session, answer)` inside the
        transaction that saves (so the key is recorded with the change, once even if it retried);
        answer with the last answer recorded."""
        async with uow_factory() as uow:
            replayed = await self.replay(uow.session)
        if replayed is not None:
            return replayed
        answers: list[Answer] = []

        async def record(session: AsyncSession, answer: Any) -> None:
            answers.append(_json(answer))
            await self.record(session, answers[-1])

        await act(record)
        return self.respond(answers[-1])


Recorder = Callable[[AsyncSession, Any], Awaitable[None]]
"""`record(session, answer)`: record a command's answer (a pydantic model or a dict) in `session`."""


def _as_is(answer: Answer) -> Answer:
    return answer


def _json(value: Any) -> Answer:
    dumped = value.model_dump(mode="json") if hasattr(value, "model_dump") else jsonable_encoder(value)
    assert isinstance(dumped, dict), f"a command answers with a JSON object, not {type(dumped).__name__}"
    return dumped
