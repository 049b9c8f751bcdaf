"""Fixtures of the ranking service's tests (helpers live in modules with unique names: `ranking_*`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ranking_world import World, database, ranking_settings

from shared import testing


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = ranking_settings("ranking")
    try:
        await testing.ensure_topics(settings)
    except Exception as exc:
        pytest.fail(
            f"Kafka does not answer at {settings.kafka_bootstrap_servers} ({exc!r}): "
            "start it with `make test`"
        )
    try:
        async with database(settings):
            yield World(settings)
    finally:
        await testing.delete_topics(settings)
