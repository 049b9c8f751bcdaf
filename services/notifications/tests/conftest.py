"""Fixtures of the notifications service's tests: settings, a migrated database and the topics per
module, and the service running in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from notifications_harness import Service, fresh_database, running_service

from notifications_service.settings import NotificationsSettings
from shared import testing
from shared.testing import SettingsFactory

# Retries come quickly in tests (the production schedule is 5 s, 5 min, 30 min, ... ): 20 steps of at
# most 0.5 s keep a delivery pending through a receiver outage of a few seconds.
FAST_SCHEDULE = (0.1, 0.2, 0.3, 0.5) + (0.5,) * 16


@pytest.fixture(scope="module")
def settings(make_settings: SettingsFactory) -> NotificationsSettings:
    return make_settings(NotificationsSettings, retry_schedule_s=FAST_SCHEDULE, poll_interval_s=0.1)


@pytest.fixture(scope="module")
async def infra(settings: NotificationsSettings) -> AsyncIterator[NotificationsSettings]:
    await testing.ensure_topics(settings)
    try:
        async with fresh_database(settings):
            yield settings
    finally:
        await testing.delete_topics(settings)


@pytest.fixture(scope="module")
async def service(infra: NotificationsSettings) -> AsyncIterator[Service]:
    async with running_service(infra) as running:
        yield running
