"""Every error as RFC 9457 `application/problem+json`, and the one mapper of `shared.errors`.

`install_error_handlers(app)` (the app factory calls it) answers:

- `shared.errors.DomainError` (any service's refusal) by `problem_of`: status, title and type from
  its class, `errors` for the fields it names, `ETag` when it knows the current version,
  `Retry-After` when temporary;
- `shared.problem.Problem` raised anywhere, as it is;
- validation errors with `errors: [{field, message}]`, 404/405 from routing, 401/403 from
  `shared.auth`;
- `shared.eventstore.ConcurrencyError` escaping a route as 409 (a concurrent write won);
- 422 when PostgreSQL refuses a value of the request (SQLSTATE class 22), never taken for an outage;
- 503 with `Retry-After` when PostgreSQL or Kafka is unreachable;
- 500 for anything else, logged.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import context
from shared.errors import DomainError
from shared.eventstore import ConcurrencyError
from shared.failures import rejected_data
from shared.problem import PROBLEM_JSON, PROBLEM_TYPE_BASE, FieldError, Problem, status_title
from shared.web.conditional import etag_header

__all__ = [
    "RETRY_AFTER_SECONDS",
    "install_error_handlers",
    "internal_error",
    "problem_of",
    "problem_response",
    "unhandled_error",
]

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def problem_of(error: DomainError) -> Problem:
    """The problem+json of a service's refusal: the one mapping every service uses."""
    headers: dict[str, str] = {}
    current = error.current_version
    if current is not None:
        headers["ETag"] = etag_header(current)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    errors = [FieldError(field=field, message=message) for field, message in error.errors] or None
    return Problem(
        error.status,
        error.title,
        error.detail,
        type_=PROBLEM_TYPE_BASE + error.slug if error.slug else None,
        errors=errors,
        headers=headers,
        extensions=error.extensions,
    )


async def _domain_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return problem_response(request, problem_of(exc))


async def _concurrency_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConcurrencyError)
    current = exc.actual_version
    return problem_response(
        request,
        Problem(
            409,
            "Concurrent update",
            "Someone else changed this resource while your request was being handled; read it "
            "again and retry with its new ETag.",
            headers={"ETag": etag_header(current)} if current is not None else None,
            extensions={"current_version": current} if current is not None else None,
        ),
    )


def problem_response(request: Request | None, problem: Problem) -> JSONResponse:
    """The `application/problem+json` response for `problem`."""
    body = problem.to_dict(instance=request.url.path if request is not None else None)
    correlation = context.correlation_id.get()
    if correlation:
        body.setdefault("correlation_id", correlation)
    return JSONResponse(
        jsonable_encoder(body), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status < 400 or status in (204, 304):
        return Response(status_code=status, headers=headers)
    generic = exc.detail == status_title(status)  # Starlette's default detail is the status phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail and not generic else None
    extensions: dict[str, Any] = {}
    if not isinstance(exc.detail, str) and exc.detail is not None:
        extensions["data"] = exc.detail
    method, path = request.method, request.url.path
    if detail is None:
        if status == 404:
            detail = f"There is nothing at {path}; check the path and version prefix (the API is at /docs)."
        elif status == 405:
            allowed = headers.get("Allow") or headers.get("allow") or ""
            detail = f"{method} is not supported on {path}" + (f"; use {allowed}." if allowed else ".")
        elif status == 401:
            detail = "This endpoint needs a bearer token: send `Authorization: Bearer <token>`."
            headers.setdefault("WWW-Authenticate", "Bearer")
        elif status == 403:
            detail = "Your token does not allow this action."
        elif status == 415:
            detail = "Send the body as JSON with `Content-Type: application/json`."
        else:
            detail = f"The request to {method} {path} failed with {status} {status_title(status)}."
    return problem_response(
        request, Problem(status, status_title(status), detail, headers=headers, extensions=extensions)
    )


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def _field_message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "Invalid value"))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "This field is required."
    if kind == "extra_forbidden":
        return "Unknown field; remove it or check its spelling."
    if kind in ("value_error", "assertion_error"):
        inner = ctx.get("error")
        msg = str(inner) if inner else msg.split(", ", 1)[-1]
    elif kind == "timezone_aware":
        msg = "Give a timezone, e.g. 2025-01-31T12:00:00Z"
    msg = msg[:1].upper() + msg[1:]
    return msg if msg.endswith((".", "!", "?")) else msg + "."


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    bad_json = next((e for e in raw if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        ctx = bad_json.get("ctx") or {}
        position = bad_json["loc"][1] if len(bad_json.get("loc", ())) > 1 else None
        where = f" at character {position}" if position is not None else ""
        reason = f"{ctx.get('error', 'syntax error')}{where}"
        return problem_response(
            request,
            Problem(
                400,
                "Malformed JSON body",
                f"The request body is not valid JSON ({reason}); fix the syntax and send it again.",
                errors=[FieldError(field="body", message=f"Not valid JSON: {reason}.")],
            ),
        )
    errors = [FieldError(field=_field_path(e.get("loc", ())), message=_field_message(e)) for e in raw]
    if len(errors) == 1:
        detail = f"{errors[0]['field']}: {errors[0]['message']} Correct it and send the request again."
    else:
        detail = f"{len(errors)} fields are invalid (see `errors`); correct them and send the request again."
    return problem_response(request, Problem(422, "Invalid request", detail, errors=errors))


_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def _outage_of(exc: BaseException) -> str | None:
    """Which dependency `exc` says is unavailable ("database", "Kafka", ...), or None if it is not an
    outage (then it is a bug: 500).

    A database-layer error can also be the *consequence* of an outage: SQLAlchemy refusing a session
    whose connection died mid-transaction ("Can't reconnect until invalid transaction is rolled back"),
    or asyncpg refusing a statement or a rollback on a connection the restarting server closed. Such an
    error names the outage in its `__cause__` / `__context__`, so the chain is searched for one; other
    exceptions (a bug in an `except` block, say) are not, so they stay 500s.
    """
    import asyncpg.exceptions as pg_errors
    import sqlalchemy.exc as sa_errors

    current: BaseException | None = exc
    for _ in range(_CHAIN_DEPTH):
        if current is None:
            return None
        dependency = _outage_named_by(current)
        if dependency is not None:
            return dependency
        if not isinstance(current, sa_errors.SQLAlchemyError | pg_errors.InterfaceError):
            return None
        current = current.__cause__ or current.__context__
    return None


_CHAIN_DEPTH = 6

# asyncpg's words (an `InterfaceError`, not a `PostgresError`) for a statement, or a rollback, sent on a
# connection that the server closed under it, e.g. while PostgreSQL restarts.
_CLOSED_CONNECTION_MESSAGES = ("connection is closed", "underlying connection is closed")


def _outage_named_by(exc: BaseException) -> str | None:
    """`_outage_of` for one exception, without looking at what caused it."""
    import aiokafka.errors as kafka_errors
    import asyncpg.exceptions as pg_errors
    import sqlalchemy.exc as sa_errors

    if isinstance(exc, sa_errors.DBAPIError):
        lost = isinstance(exc, sa_errors.OperationalError | sa_errors.InterfaceError)
        return "database" if lost or exc.connection_invalidated or _server_unavailable(exc) else None
    if isinstance(exc, sa_errors.TimeoutError | sa_errors.DisconnectionError):
        return "database"
    if isinstance(
        exc,
        pg_errors.PostgresConnectionError
        | pg_errors.CannotConnectNowError
        | pg_errors.TooManyConnectionsError,
    ):
        return "database"
    if isinstance(exc, pg_errors.InterfaceError) and any(
        words in str(exc) for words in _CLOSED_CONNECTION_MESSAGES
    ):
        return "database"
    if isinstance(
        exc,
        kafka_errors.KafkaConnectionError
        | kafka_errors.KafkaTimeoutError
        | kafka_errors.NoBrokersAvailable
        | kafka_errors.KafkaUnavailableError
        | kafka_errors.BrokerNotAvailableError,
    ):
        return "Kafka"
    if isinstance(exc, TimeoutError | ConnectionError):  # TimeoutError is asyncio.TimeoutError too
        return "a dependency"
    if isinstance(exc, OSError) and (
        exc.errno in _NETWORK_ERRNOS
        or "connect call failed" in str(exc).lower()
        or str(exc).startswith("Multiple exceptions")
    ):
        return "a dependency"
    if _still_consuming_an_error(exc):
        return "database"
    if _server_unavailable(exc):
        # Raised outside SQLAlchemy's wrapping: asyncpg's own errors on the direct statement path
        # (AdminShutdownError while PostgreSQL restarts), or the dialect's PEP 249 adapter error from
        # a BEGIN sent by `shared.db.driver_connection`, its asyncpg cause carrying the SQLSTATE.
        return "database"
    return None


def _still_consuming_an_error(exc: BaseException) -> bool:
    """asyncpg's "cannot switch to state N; another operation (2) is in progress" (under the dialect's
    PEP 249 adapter error of a BEGIN): a pooled connection whose server has just failed it (state 2:
    consuming that error) and is closing it, e.g. while PostgreSQL restarts; it looks open until the
    socket's end arrives."""
    import asyncpg.exceptions as pg_errors

    current: BaseException | None = exc
    for _ in range(3):
        if current is None:
            return False
        if isinstance(current, pg_errors.InternalClientError) and "another operation (2)" in str(current):
            return True
        current = current.__cause__
    return False


# SQLSTATEs of a server that cannot serve now: connection exceptions (class 08), shutting down or
# restarting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now), too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _server_unavailable(exc: BaseException) -> bool:
    """Whether a database error, or the driver error under it, says the server is not serving (SQLAlchemy
    wraps e.g. asyncpg's CannotConnectNowError, "the database system is shutting down", in a plain
    DBAPIError, not an OperationalError)."""
    current: BaseException | None = exc
    for _ in range(6):
        if current is None:
            return False
        state = str(getattr(current, "sqlstate", None) or "")
        if state.startswith("08") or state in _UNAVAILABLE_SQLSTATES:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def outage_exception_types() -> tuple[type[Exception], ...]:
    """The exception classes `create_service_app` maps to 503 (when `_outage_of` agrees)."""
    import aiokafka.errors as kafka_errors
    import asyncpg.exceptions as pg_errors
    import sqlalchemy.exc as sa_errors

    return (
        sa_errors.DBAPIError,
        sa_errors.TimeoutError,
        sa_errors.DisconnectionError,
        pg_errors.PostgresConnectionError,
        pg_errors.CannotConnectNowError,
        pg_errors.TooManyConnectionsError,
        pg_errors.PostgresError,  # e.g. AdminShutdownError from a direct asyncpg statement
        sa_errors.EmulatedDBAPIException,  # the dialect's PEP 249 errors, when raised unwrapped
        kafka_errors.KafkaError,
        OSError,  # ConnectionError, TimeoutError (asyncio.TimeoutError) and refused connects
    )


def internal_error(request: Request | None, exc: BaseException) -> JSONResponse:
    where = f"{request.method} {request.url.path}" if request is not None else "request"
    log.error("unhandled error in %s", where, exc_info=(type(exc), exc, exc.__traceback__))
    return problem_response(
        request,
        Problem(
            500,
            "Internal server error",
            "The service failed to handle this request; nothing was changed unless the response says "
            "otherwise. Retry later and quote the correlation_id if it keeps happening.",
        ),
    )


async def _outage_handler(request: Request, exc: Exception) -> Response:
    refused = rejected_data(exc)
    if refused is not None:
        # A value the database cannot take (SQLSTATE class 22: a NUL byte, a number out of range) came
        # with the request: its fault, not an outage. The edge bounds what it can; this is the net.
        log.warning("database refused a value of %s %s: %s", request.method, request.url.path, refused)
        return problem_response(
            request,
            Problem(
                422,
                "Value not accepted",
                f"A value in the request cannot be stored or searched for ({refused}); correct it "
                "(no NUL characters, numbers within range) and send the request again.",
            ),
        )
    dependency = _outage_of(exc)
    if dependency is None:
        return internal_error(request, exc)
    log.warning(
        "%s unavailable during %s %s: %s",
        dependency,
        request.method,
        request.url.path,
        exc,
        extra={"dependency": dependency, "exc_type": type(exc).__name__},
    )
    subject = (
        "The database is"
        if dependency == "database"
        else ("Kafka is" if dependency == "Kafka" else "A service this request needs is")
    )
    return problem_response(
        request,
        Problem(
            503,
            "Service unavailable",
            f"{subject} unavailable or not answering in time; retry in {RETRY_AFTER_SECONDS} seconds.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extensions={"dependency": dependency},
        ),
    )


async def unhandled_error(request: Request, exc: Exception) -> Response:
    """The answer to an exception no handler claimed: 503 when it is the aftermath of an outage, else
    a logged 500 (the app's catch-all handler, and the request middleware's net)."""
    if _outage_of(exc) is not None:  # e.g. asyncpg's "connection is closed", SQLAlchemy's refusals after it
        return await _outage_handler(request, exc)
    return internal_error(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of `app` as problem+json (see the module's docstring)."""
    app.add_exception_handler(DomainError, _domain_error_handler)
    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ConcurrencyError, _concurrency_handler)
    for exc_type in outage_exception_types():
        app.add_exception_handler(exc_type, _outage_handler)
    app.add_exception_handler(Exception, unhandled_error)
