"""The notifications API (thin: parse, authorise by role, call a handler, shape the answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from notifications_service.application.handlers import NotificationsHandlers, OnQueued, OnSaved
from notifications_service.domain.subscription import Spec, Subscriber, Subscription
from notifications_service.schemas import (
    DeliveryOut,
    DeliveryPage,
    Queued,
    ReplayIn,
    RotateIn,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionWithSecret,
)
from shared.auth import Principal, require_roles
from shared.idempotency import IdempotencyKey
from shared.problem import Problem
from shared.web import IfMatch, etag_header
from shared.web.commands import IdempotentCommand, Recorder

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Subscribers = Annotated[Principal, Depends(require_roles("partner", "province", "ops"))]


def get_handlers(request: Request) -> NotificationsHandlers:
    handlers: NotificationsHandlers = request.app.state.notifications
    return handlers


Handlers = Annotated[NotificationsHandlers, Depends(get_handlers)]


def subscriber(principal: Principal) -> Subscriber:
    return Subscriber(principal.sub, principal.role, principal.province)


def _answer(subscription: Subscription, response: Response) -> SubscriptionOut:
    response.headers["ETag"] = etag_header(subscription.version)
    return SubscriptionOut.of(subscription)


def _shown(subscription: Subscription, secret: str | None) -> dict[str, Any]:
    """A command's answer: the subscription as saved, with its new secret when it has one."""
    out = SubscriptionOut.of(subscription)
    if secret is None:
        return out.model_dump(mode="json")
    return SubscriptionWithSecret(**out.model_dump(), secret=secret).model_dump(mode="json")


def _command(
    scope: str,
    key: str | None,
    request: Request,
    principal: Principal,
    handlers: NotificationsHandlers,
    *,
    body: Any = None,
    status: int = 200,
) -> IdempotentCommand:
    """A command with its Idempotency-Key; an answer holding a secret is stored with it sealed."""
    return IdempotentCommand(
        f"notifications.{scope}", key, request, principal.sub, body=body, status=status,
        location=lambda answer: f"/v1/webhooks/subscriptions/{answer['id']}" if "secret" in answer else None,
        store=handlers.seal_answer, restore=handlers.open_answer,
    )  # fmt: skip


async def _run(
    command: IdempotentCommand,
    handlers: NotificationsHandlers,
    act: Callable[[OnSaved], Awaitable[object]],
    shape: Callable[[Subscription, str | None], dict[str, Any]] = _shown,
) -> Response:
    """Replay a known key, or run the command: its answer is recorded in the transaction that saves."""

    def saved(record: Recorder) -> OnSaved:
        return lambda session, subscription, secret: record(session, shape(subscription, secret))

    response = await command.run_in_handler(handlers.uow, lambda record: act(saved(record)))
    if "Location" in response.headers:  # the answer holds a signing secret
        response.headers["Cache-Control"] = "no-store"
    return response


@router.post(
    "/subscriptions", status_code=201, response_model=SubscriptionWithSecret,
    responses={201: {"description": "Created; the answer holds the secret (shown once, or again to a "
                     "retry with the same Idempotency-Key)."}},
)  # fmt: skip
async def create_subscription(
    body: SubscriptionIn, principal: Subscribers, key: IdempotencyKey, handlers: Handlers, request: Request
) -> Response:
    """Subscribe a URL to event types. The answer holds the signing secret: it is never shown again
    (rotate it to get a new one), except to a retry with the same `Idempotency-Key` and body, which
    gets the first answer again: the same subscription and the same secret (stored sealed with the
    subscription secrets' key), even if the secret was rotated since. A URL that resolves to a
    private, link-local or metadata address is a 422."""
    spec = Spec(body.url, tuple(body.event_types), body.description, tuple(body.candidates))
    command = _command(
        "create", key, request, principal, handlers, body=body.model_dump(mode="json"), status=201
    )
    return await _run(command, handlers, lambda record: handlers.create(subscriber(principal), spec, record))


@router.get("/subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(principal: Subscribers, handlers: Handlers) -> list[SubscriptionOut]:
    """Your subscriptions (ops: everyone's)."""
    return [SubscriptionOut.of(s) for s in await handlers.list_for(subscriber(principal))]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
async def get_subscription(
    subscription_id: str, principal: Subscribers, handlers: Handlers, response: Response
) -> SubscriptionOut:
    return _answer(await handlers.get(subscriber(principal), subscription_id), response)


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
async def update_subscription(
    subscription_id: str,
    body: SubscriptionPatch,
    principal: Subscribers,
    expected: IfMatch,
    key: IdempotencyKey,
    handlers: Handlers,
    request: Request,
) -> Response:
    """Change the URL, event types, description or followed candidates; `enabled` pauses or resumes."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    command = _command("update", key, request, principal, handlers, body=body.model_dump(mode="json"))
    return await _run(
        command, handlers,
        lambda record: handlers.update(subscriber(principal), subscription_id, expected, changes, record),
    )  # fmt: skip


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(
    subscription_id: str,
    principal: Subscribers,
    expected: IfMatch,
    key: IdempotencyKey,
    handlers: Handlers,
    request: Request,
) -> Response:
    command = _command("delete", key, request, principal, handlers, status=204)
    return await _run(
        command, handlers,
        lambda record: handlers.delete(subscriber(principal), subscription_id, expected, record),
        lambda _subscription, _secret: {},
    )  # fmt: skip


@router.post("/subscriptions/{subscription_id}/secret/rotate", response_model=SubscriptionWithSecret)
async def rotate_secret(
    subscription_id: str,
    body: RotateIn,
    principal: Subscribers,
    expected: IfMatch,
    key: IdempotencyKey,
    handlers: Handlers,
    request: Request,
) -> Response:
    """A new secret (shown once, or again to a retry with the same `Idempotency-Key`); the previous
    one keeps signing too for `overlap_seconds`."""
    overlap = timedelta(seconds=body.overlap_seconds)
    command = _command("rotate", key, request, principal, handlers, body=body.model_dump(mode="json"))
    return await _run(
        command, handlers,
        lambda record: handlers.rotate(subscriber(principal), subscription_id, expected, overlap, record),
    )  # fmt: skip


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    subscription_id: str,
    principal: Subscribers,
    handlers: Handlers,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, description="`seq` to page back from")] = None,
) -> DeliveryPage:
    """The delivery log, newest first: attempts, status, latency, last error."""
    rows = await handlers.deliveries(subscriber(principal), subscription_id, status, limit, before)
    items = [DeliveryOut.of(row) for row in rows]
    return DeliveryPage(items=items, next_before=items[-1].seq if len(items) == limit else None)


@router.post("/subscriptions/{subscription_id}/deliveries/{delivery_id}/retry", status_code=202,
             response_model=Queued)  # fmt: skip
async def retry_delivery(
    subscription_id: str,
    delivery_id: str,
    principal: Subscribers,
    key: IdempotencyKey,
    handlers: Handlers,
    request: Request,
) -> Response:
    """Send this delivery again now (same `webhook-id`), whatever its status."""
    command = _command("retry", key, request, principal, handlers, status=202)
    return await _queue(
        command, handlers,
        lambda record: handlers.retry(subscriber(principal), subscription_id, delivery_id, record),
        lambda queued: Queued(delivery_id=delivery_id, queued=queued),
    )  # fmt: skip


@router.post("/subscriptions/{subscription_id}/replay", status_code=202, response_model=Queued)
async def replay(
    subscription_id: str,
    body: ReplayIn,
    principal: Subscribers,
    key: IdempotencyKey,
    handlers: Handlers,
    request: Request,
) -> Response:
    """After an outage: send again every event of a time window (at most 31 days) this subscription
    asks for and may see; ones delivered before keep their `webhook-id`."""
    until = body.until or handlers.clock.now()
    if body.since.tzinfo is None or until.tzinfo is None:
        raise Problem(422, "Invalid window", "Give `since` and `until` with a time zone (e.g. ...Z).",
                      errors=[{"field": "since", "message": "timezone required"}])  # fmt: skip
    if not body.since < until or until - body.since > timedelta(days=31):
        raise Problem(422, "Invalid window", "`since` must be before `until`, at most 31 days apart.",
                      errors=[{"field": "since", "message": "window of 0 to 31 days"}])  # fmt: skip
    command = _command(
        "replay", key, request, principal, handlers, body=body.model_dump(mode="json"), status=202
    )
    return await _queue(
        command, handlers,
        lambda record: handlers.replay(subscriber(principal), subscription_id, body.since, until, record),
        lambda queued: Queued(queued=queued),
    )  # fmt: skip


async def _queue(
    command: IdempotentCommand,
    handlers: NotificationsHandlers,
    act: Callable[[OnQueued], Awaitable[object]],
    shape: Callable[[int], Queued],
) -> Response:
    """Replay a known key, or queue the deliveries: the answer is recorded in the same transaction."""
    return await command.run_in_handler(
        handlers.uow, lambda record: act(lambda session, queued: record(session, shape(queued)))
    )
