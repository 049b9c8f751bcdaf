"""The notifications API (thin: parse, authorise by role, call a handler, shape the answer)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from notifications_service.application.handlers import NotificationsHandlers
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
from shared.problem import Problem
from shared.web import IfMatch, etag_header

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


def _with_secret(subscription: Subscription, secret: str, status: int) -> JSONResponse:
    body = SubscriptionWithSecret(**SubscriptionOut.of(subscription).model_dump(), secret=secret)
    headers = {
        "ETag": etag_header(subscription.version),
        "Location": f"/v1/webhooks/subscriptions/{subscription.id}",
        "Cache-Control": "no-store",
    }
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


@router.post("/subscriptions", status_code=201, response_model=SubscriptionWithSecret)
async def create_subscription(
    body: SubscriptionIn, principal: Subscribers, handlers: Handlers
) -> JSONResponse:
    """Subscribe a URL to event types. The answer holds the signing secret: it is never shown again
    (rotate it to get a new one). A URL that resolves to a private, link-local or metadata address
    is a 422."""
    spec = Spec(body.url, tuple(body.event_types), body.description, tuple(body.candidates))
    created = await handlers.create(subscriber(principal), spec)
    return _with_secret(created.subscription, created.secret, 201)


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
    handlers: Handlers,
    response: Response,
) -> SubscriptionOut:
    """Change the URL, event types, description or followed candidates; `enabled` pauses or resumes."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    updated = await handlers.update(subscriber(principal), subscription_id, expected, changes)
    return _answer(updated, response)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(
    subscription_id: str, principal: Subscribers, expected: IfMatch, handlers: Handlers
) -> Response:
    await handlers.delete(subscriber(principal), subscription_id, expected)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/secret/rotate", response_model=SubscriptionWithSecret)
async def rotate_secret(
    subscription_id: str, body: RotateIn, principal: Subscribers, expected: IfMatch, handlers: Handlers
) -> JSONResponse:
    """A new secret (shown once); the previous one keeps signing too for `overlap_seconds`."""
    rotated = await handlers.rotate(
        subscriber(principal), subscription_id, expected, timedelta(seconds=body.overlap_seconds)
    )
    return _with_secret(rotated.subscription, rotated.secret, 200)


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
    subscription_id: str, delivery_id: str, principal: Subscribers, handlers: Handlers
) -> Queued:
    """Send this delivery again now (same `webhook-id`), whatever its status."""
    await handlers.retry(subscriber(principal), subscription_id, delivery_id)
    return Queued(delivery_id=delivery_id, queued=1)


@router.post("/subscriptions/{subscription_id}/replay", status_code=202, response_model=Queued)
async def replay(subscription_id: str, body: ReplayIn, principal: Subscribers, handlers: Handlers) -> Queued:
    """After an outage: send again every event of a time window (at most 31 days) this subscription
    asks for and may see; ones delivered before keep their `webhook-id`."""
    until = body.until or handlers.clock.now()
    if body.since.tzinfo is None or until.tzinfo is None:
        raise Problem(422, "Invalid window", "Give `since` and `until` with a time zone (e.g. ...Z).",
                      errors=[{"field": "since", "message": "timezone required"}])  # fmt: skip
    if not body.since < until or until - body.since > timedelta(days=31):
        raise Problem(422, "Invalid window", "`since` must be before `until`, at most 31 days apart.",
                      errors=[{"field": "since", "message": "window of 0 to 31 days"}])  # fmt: skip
    queued = await handlers.replay(subscriber(principal), subscription_id, body.since, until)
    return Queued(queued=queued)
