"""Fixtures every test suite can use (shared/ and the four services).

Cheap by design: nothing here touches PostgreSQL or Kafka unless a test asks for a fixture that
needs them. `make test` starts both before pytest; these fixtures only create what one test module
needs and remove it afterwards:

- `topic_prefix`, `db_suffix`: names no other module uses (under `EE_TOPIC_PREFIX`/`EE_DB_SUFFIX`);
- `make_settings(SettingsClass, **overrides)`: settings for this module's prefix and suffix;
- `platform_settings`, `platform_db`: a fresh database with the platform tables (shared's tests);
- `platform_topics`: the event topics and their `.dlq` twins under this module's prefix.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared import testing
from shared.testing import PlatformDatabase, PlatformTestSettings, S, SettingsFactory


def _label(request: pytest.FixtureRequest) -> str:
    """A short name for the module asking (`test_outbox` -> `outbox`), to recognise its leftovers."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    return re.sub(r"[^a-z0-9]", "", name.lower())[:12] or "t"


@pytest.fixture(scope="module")
def topic_prefix(request: pytest.FixtureRequest) -> str:
    return testing.unique_topic_prefix(_label(request))


@pytest.fixture(scope="module")
def db_suffix(request: pytest.FixtureRequest) -> str:
    return testing.unique_db_suffix(_label(request))


@pytest.fixture(scope="module")
def make_settings(topic_prefix: str, db_suffix: str) -> SettingsFactory:
    def make(cls: type[S], /, **overrides: Any) -> S:
        values: dict[str, Any] = {"env": "test", "topic_prefix": topic_prefix, "db_suffix": db_suffix}
        values.update(overrides)
        return cls(**values)

    return make


@pytest.fixture(scope="module")
def platform_settings(make_settings: SettingsFactory) -> PlatformTestSettings:
    return make_settings(PlatformTestSettings)


@pytest.fixture(scope="module")
async def platform_db(platform_settings: PlatformTestSettings) -> AsyncIterator[PlatformDatabase]:
    async with testing.fresh_platform_database(platform_settings) as db:
        yield db


@pytest.fixture(scope="module")
async def platform_topics(platform_settings: PlatformTestSettings) -> AsyncIterator[PlatformTestSettings]:
    try:
        await testing.ensure_topics(platform_settings)
    except Exception as exc:
        pytest.fail(
            f"Kafka does not answer at {platform_settings.kafka_bootstrap_servers} ({exc!r}): "
            "start it with `make test` or `deploy/local/kafka.sh start`"
        )
    yield platform_settings
    await testing.delete_topics(platform_settings)
