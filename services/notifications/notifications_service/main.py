"""The notifications service's ASGI app: `uvicorn notifications_service.main:app --port 8005`.

Runs the API (subscriptions, delivery log, retry, replay), the outbox relay (subscription events on
`ee.notifications.events`), the consumer that fans every event out to the subscriptions that may
see it, and the dispatcher that signs and sends the webhooks (one active instance: advisory lock).
"""

from __future__ import annotations

from fastapi import FastAPI

from notifications_service import api
from notifications_service.adapters.consumers import fanout_consumer
from notifications_service.adapters.dispatcher import Dispatcher
from notifications_service.adapters.secrets import SecretBox
from notifications_service.adapters.sender import UrlGuard, WebhookSender
from notifications_service.adapters.uow import notifications_uow
from notifications_service.application.fanout import FanOut
from notifications_service.application.handlers import NotificationsHandlers
from notifications_service.settings import NotificationsSettings
from shared.clock import Clock
from shared.runtime import ServiceRuntime
from shared.web import create_service_app

DESCRIPTION = """Signed webhooks for partner portals, provinces and operations.

Subscribe an https URL to event types (`ee.draws.Invited`, `ee.applications.*`, `*`); every event
you may see is POSTed to it per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256>`), the body being the event's CloudEvents JSON. At least
once, a stable `webhook-id` per (event, subscription), in order per candidate; retried with backoff
on 5xx, timeouts and connection errors; `410 Gone` disables the subscription. The secret (`whsec_...`)
is shown once, at creation and at each rotation.
"""


def build_app(settings: NotificationsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(settings, clock=clock)
    guard = UrlGuard(allow_loopback=settings.allow_loopback)
    sender = WebhookSender(
        guard,
        timeout_s=settings.timeout_s,
        max_response_bytes=settings.max_response_bytes,
        max_connections=settings.max_in_flight,
    )
    box = SecretBox(settings.secret_key_bytes)
    handlers = NotificationsHandlers(notifications_uow(runtime.uow, box), runtime.clock, settings, guard, box)
    dispatcher = Dispatcher(
        runtime.engine,
        handlers,
        sender,
        runtime.clock,
        max_in_flight=settings.max_in_flight,
        poll_interval_s=settings.poll_interval_s,
    )
    handlers.on_new_deliveries = dispatcher.wake
    fanout = FanOut(on_new_deliveries=dispatcher.wake)
    runtime.add_consumer(lambda rt: fanout_consumer(rt, fanout, box))
    runtime.add_background(dispatcher)
    app = create_service_app(runtime, [api.router], title="Notifications service", description=DESCRIPTION)
    app.state.notifications = handlers
    app.state.dispatcher = dispatcher
    app.state.fanout = fanout
    return app


app = build_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=NotificationsSettings.default_port)
