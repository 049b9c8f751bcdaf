"""The Kafka consumer: every event of the five topics goes through the fan-out (`application.fanout`).

One consumer, one group (under the topic prefix): an event is fanned out in the same transaction that
records it as processed, so a redelivery or a crash never fans it out twice or loses it.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifications_service.adapters.secrets import SecretBox
from notifications_service.adapters.uow import NotificationsUnitOfWork
from notifications_service.application.fanout import FanOut
from notifications_service.settings import NotificationsSettings
from shared.consumer import Delivery, IdempotentConsumer
from shared.events.catalogue import CATALOGUE, EVENT_TOPICS
from shared.runtime import ServiceRuntime
from shared.uow import UnitOfWork

CONSUMER = "notifications.fanout"


def fanout_consumer(runtime: ServiceRuntime, fanout: FanOut, box: SecretBox) -> IdempotentConsumer:
    async def on_batch(uow: UnitOfWork, deliveries: Sequence[Delivery]) -> None:
        await fanout.handle_batch(NotificationsUnitOfWork(uow, box), [d.envelope for d in deliveries])

    settings = runtime.settings
    batch = settings.consumer_batch_size if isinstance(settings, NotificationsSettings) else 500
    return IdempotentConsumer(
        CONSUMER,
        settings,
        runtime.session_factory,
        runtime.clock,
        topics=list(EVENT_TOPICS),
        handlers={},
        batch_handler=on_batch,
        batch_types=[event.event_name() for event in CATALOGUE],
        group_id=CONSUMER,
        batch_size=batch,
    )
