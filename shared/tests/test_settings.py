"""Service settings: exact environment names, per-service database, production refusals."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from shared.auth import DEV_SECRET
from shared.settings import LingerMs, ServiceSettings, env_var_names, with_database

ENV_NAMES = [
    "EE_ENV",
    "EE_AUTH_SECRET",
    "KAFKA_BOOTSTRAP_SERVERS",
    "EE_TOPIC_PREFIX",
    "EE_DB_SUFFIX",
    "EE_RELAY_POLL_INTERVAL_MS",
    "EE_RELAY_IDLE_POLL_MAX_MS",
    "EE_PROFILE_DATABASE_URL",
    "EE_PROFILE_DB_POOL_SIZE",
    "EE_PROFILE_DB_MAX_OVERFLOW",
    "EE_PROFILE_CONSUMER_LINGER_MS",
    "EE_RANKING_CONSUMER_LINGER_MS",
    "EE_RANKING_DATABASE_URL",
    "DATABASE_URL",
    "EE_DATABASE_URL",
]
STRONG_SECRET = "x" * 48


class ProfileSettings(ServiceSettings):
    service_name: ClassVar[str] = "profile"
    default_port: ClassVar[int] = 8001


class RankingSettings(ServiceSettings):
    service_name: ClassVar[str] = "ranking"
    default_port: ClassVar[int] = 8002


class LingeringSettings(ServiceSettings):
    """A service whose consumers linger by default (as ranking's, applications' and notifications')."""

    service_name: ClassVar[str] = "ranking"
    consumer_linger_ms: LingerMs = 20


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` exports some of these; each test starts from none."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = ProfileSettings()
    assert settings.env == "development" and not settings.is_production
    assert settings.auth_secret == DEV_SECRET
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.database_url == "postgresql+asyncpg://ee:ee@/profile"
    assert settings.database_name == "profile"
    assert (settings.db_pool_size, settings.db_max_overflow, settings.relay_poll_interval_ms) == (10, 2, 20)
    assert settings.relay_idle_poll_max_ms == 200
    assert settings.source == "ee/profile"
    assert settings.topic("ee.profile.events") == "ee.profile.events"


def test_prefix_and_suffix_name_topics_and_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_TOPIC_PREFIX", "test1700000000.")
    monkeypatch.setenv("EE_DB_SUFFIX", "_test")
    settings = RankingSettings()
    assert settings.topic("ee.profile.events") == "test1700000000.ee.profile.events"
    assert settings.dlq_topic("ee.profile.events") == "test1700000000.ee.profile.events.dlq"
    assert settings.consumer_group("ranking") == "test1700000000.ranking"
    assert settings.database_url.endswith("/ranking_test")


def test_per_service_variables_reach_only_their_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_PROFILE_DATABASE_URL", "postgresql+asyncpg://u:p@db.internal:5433/profiles")
    monkeypatch.setenv("EE_PROFILE_DB_POOL_SIZE", "4")
    monkeypatch.setenv("EE_PROFILE_DB_MAX_OVERFLOW", "0")
    profile, ranking = ProfileSettings(), RankingSettings()
    assert profile.database_url == "postgresql+asyncpg://u:p@db.internal:5433/profiles"
    assert (profile.db_pool_size, profile.db_max_overflow) == (4, 0)
    assert ranking.database_url.endswith("/ranking") and ranking.db_pool_size == 10


def test_generic_names_other_tools_set_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone:else@elsewhere/app")
    monkeypatch.setenv("EE_DATABASE_URL", "postgresql://someone:else@elsewhere/app")
    assert ProfileSettings().database_url == "postgresql+asyncpg://ee:ee@/profile"


def test_common_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_ENV", "test")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("EE_RELAY_POLL_INTERVAL_MS", "50")
    monkeypatch.setenv("EE_RELAY_IDLE_POLL_MAX_MS", "800")
    settings = ProfileSettings()
    assert settings.relay_idle_poll_max_ms == 800
    assert (settings.env, settings.kafka_bootstrap_servers, settings.relay_poll_interval_ms) == (
        "test",
        "k1:9092,k2:9092",
        50,
    )


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_ENV", "")
    monkeypatch.setenv("EE_PROFILE_DB_POOL_SIZE", "")
    settings = ProfileSettings()
    assert settings.env == "development" and settings.db_pool_size == 10


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_TOPIC_PREFIX", "from-env.")
    monkeypatch.setenv("EE_PROFILE_DB_POOL_SIZE", "7")
    settings = ProfileSettings(topic_prefix="from-test.", db_pool_size=2, db_suffix="_x")
    assert settings.topic_prefix == "from-test." and settings.db_pool_size == 2
    assert settings.database_name == "profile_x"


def test_a_plain_postgresql_url_gets_the_async_driver() -> None:
    settings = ProfileSettings(database_url="postgresql://ee:ee@h:5432/p")
    assert settings.database_url == "postgresql+asyncpg://ee:ee@h:5432/p"


def test_another_database_is_refused_with_the_variable_named() -> None:
    with pytest.raises(ValidationError, match="EE_PROFILE_DATABASE_URL must be a postgresql"):
        ProfileSettings(database_url="mysql://u:p@h/db")


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_ENV", "staging")
    with pytest.raises(ValidationError, match="env"):
        ProfileSettings()
    monkeypatch.delenv("EE_ENV")
    with pytest.raises(ValidationError):
        ProfileSettings(db_pool_size=0)
    with pytest.raises(ValidationError):
        ProfileSettings(unknown_field=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("secret", [None, DEV_SECRET, "short-secret"])
def test_production_refuses_a_missing_default_or_short_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    monkeypatch.setenv("EE_ENV", "production")
    if secret is not None:
        monkeypatch.setenv("EE_AUTH_SECRET", secret)
    with pytest.raises(ValidationError, match="EE_AUTH_SECRET") as caught:
        ProfileSettings()
    assert "short-secret" not in str(caught.value)  # the error never echoes the secret


def test_production_accepts_a_strong_secret_and_never_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_ENV", "production")
    monkeypatch.setenv("EE_AUTH_SECRET", STRONG_SECRET)
    settings = ProfileSettings()
    assert settings.is_production and settings.auth_secret == STRONG_SECRET
    assert STRONG_SECRET not in repr(settings) and STRONG_SECRET not in str(settings)


def test_settings_are_frozen() -> None:
    settings = ProfileSettings()
    with pytest.raises(ValidationError):
        settings.db_pool_size = 3  # type: ignore[misc]


def test_env_var_names_document_the_mapping() -> None:
    names = env_var_names(RankingSettings)
    assert names["database_url"] == "EE_RANKING_DATABASE_URL"
    assert names["kafka_bootstrap_servers"] == "KAFKA_BOOTSTRAP_SERVERS"
    assert set(names) == set(ServiceSettings.model_fields)


def test_the_consumer_linger_is_per_service_with_the_service_default_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ProfileSettings().consumer_linger_ms == 0  # the platform's default: never wait
    assert LingeringSettings().consumer_linger_ms == 20  # a service's own default
    monkeypatch.setenv("EE_RANKING_CONSUMER_LINGER_MS", "75")
    assert LingeringSettings().consumer_linger_ms == 75
    assert ProfileSettings().consumer_linger_ms == 0  # another service's variable is not read
    monkeypatch.setenv("EE_PROFILE_CONSUMER_LINGER_MS", "5000")
    with pytest.raises(ValidationError, match="consumer_linger_ms"):
        ProfileSettings()
    monkeypatch.setenv("EE_RANKING_CONSUMER_LINGER_MS", "-1")
    with pytest.raises(ValidationError, match="consumer_linger_ms"):  # a service's default keeps the bound
        LingeringSettings()


def test_the_database_name_and_another_database_s_url_keep_the_query() -> None:
    url = "postgresql+asyncpg://ee:p%40ss@/profile_x?host=/run/postgresql"
    assert ProfileSettings(database_url=url).database_name == "profile_x"
    sibling = make_url(with_database(url, "ranking_rebuild"))
    assert (sibling.drivername, sibling.password, sibling.host) == ("postgresql+asyncpg", "p@ss", None)
    assert (sibling.database, sibling.query) == ("ranking_rebuild", {"host": "/run/postgresql"})
    dsn = make_url(with_database(url, "postgres", driver="postgresql"))
    assert (dsn.drivername, dsn.database, dsn.query) == (
        "postgresql",
        "postgres",
        {"host": "/run/postgresql"},
    )
    assert with_database("postgresql+asyncpg://ee:ee@h:5432/a", "b") == "postgresql+asyncpg://ee:ee@h:5432/b"
