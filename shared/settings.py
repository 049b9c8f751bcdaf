"""Service settings from the environment (pydantic-settings).

Every service subclasses `ServiceSettings` and names itself::

    class ProfileSettings(ServiceSettings):
        service_name: ClassVar[str] = "profile"
        default_port: ClassVar[int] = 8001

Environment variables are read by their exact names (table below), not by a generic prefix: the
database URL and pool size are per service (`EE_PROFILE_DATABASE_URL`), and a generic rule would also
pick up names such as `DATABASE_URL` that other tools set on the same machine.

| field                   | variable                     | default                                      |
|-------------------------|------------------------------|----------------------------------------------|
| env                     | EE_ENV                       | development                                  |
| auth_secret             | EE_AUTH_SECRET               | a development-only secret                    |
| kafka_bootstrap_servers | KAFKA_BOOTSTRAP_SERVERS      | 127.0.0.1:9092                               |
| topic_prefix            | EE_TOPIC_PREFIX              | ""                                           |
| db_suffix               | EE_DB_SUFFIX                 | ""                                           |
| database_url            | EE_<SERVICE>_DATABASE_URL    | postgresql+asyncpg://ee:ee@/<service><suffix>|
|                         |                              | (no host: this machine's Unix socket)        |
| db_pool_size            | EE_<SERVICE>_DB_POOL_SIZE    | 10                                           |
| db_max_overflow         | EE_<SERVICE>_DB_MAX_OVERFLOW | 2                                            |
| consumer_linger_ms      | EE_<SERVICE>_CONSUMER_LINGER_MS | 0 (the service may set its own default)   |
| requests_in_progress    | EE_<SERVICE>_REQUESTS_IN_PROGRESS | 4 (per process; shared.web.admission)   |
| requests_waiting_max    | EE_<SERVICE>_REQUESTS_WAITING_MAX | 1000 (beyond it: 503, Retry-After)      |
| relay_poll_interval_ms  | EE_RELAY_POLL_INTERVAL_MS    | 20                                           |
| relay_idle_poll_max_ms  | EE_RELAY_IDLE_POLL_MAX_MS    | 200 (the slowest poll of an idle relay)      |
| outbox_retention_days   | EE_OUTBOX_RETENTION_DAYS     | 7 (published outbox rows)                    |
| processed_retention_days| EE_PROCESSED_RETENTION_DAYS  | 30 (consumers' processed-message records)    |
| idempotency_retention_days | EE_IDEMPOTENCY_RETENTION_DAYS | 7 (stored Idempotency-Key answers)        |
| housekeeping_interval_s | EE_HOUSEKEEPING_INTERVAL_S   | 3600 (how often the purge runs)              |

The consumer linger (`shared.consumer`): a batch smaller than the consumer's batch size waits up to
`consumer_linger_ms` for more records (0: never), so a steady trickle of events is applied in fewer,
larger transactions, at the cost of at most that much latency. Each service picks its default by what
its readers wait for (ranking 20 ms: update -> visible; applications 100 ms and notifications 50 ms:
nothing interactive waits on a single event there).

The outbox relay (`shared.outbox`) is woken at once by its own process's commits. Rows that another
process commits (another worker or instance of the service) it finds by polling: every
`relay_poll_interval_ms` while it finds rows, then, pass after empty pass, twice as long each time, up
to `relay_idle_poll_max_ms`. An idle service then polls a few times a second instead of fifty, and the
first row another process commits after a quiet spell waits at most that long.

Keyword arguments win over the environment (tests build settings that way).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from shared.auth_secret import DEV_SECRET, InsecureSecretError, check_auth_secret
from shared.kafka_admin import dlq_topic

# The secret and its production rule belong to shared.auth_secret (re-exported by shared.auth, which
# signs with it; kept apart so that settings import no web framework): one rule, one place.
DEV_AUTH_SECRET = DEV_SECRET
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# No host: asyncpg connects to this machine's server over its Unix socket (/run/postgresql, then
# /var/run/postgresql, /tmp, and only then localhost over TCP). A round trip over the socket costs both
# sides about half the CPU of one over TCP loopback; at 150 updates/s that was 6% of the machine.
DEFAULT_DB_HOST = "ee:ee@"


def with_database(url: str, database: str, *, driver: str | None = None) -> str:
    """`url` pointing at another database on the same server, everything else kept: the query too
    (`?host=/run/postgresql` names a socket directory, which cutting the URL at its last `/` breaks).
    `driver`: another scheme as well (`"postgresql"`: a DSN for asyncpg or libpq)."""
    changed = make_url(url).set(database=database)
    if driver is not None:
        changed = changed.set(drivername=driver)
    return changed.render_as_string(hide_password=False)


Environment = Literal["development", "test", "production"]
LingerMs = Annotated[int, Field(ge=0, le=1_000)]
"""`consumer_linger_ms`: a service setting its own default writes `consumer_linger_ms: LingerMs = 100`."""

# Variables shared by every service: field -> variable.
_COMMON_ENV = {
    "env": "EE_ENV",
    "auth_secret": "EE_AUTH_SECRET",
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "topic_prefix": "EE_TOPIC_PREFIX",
    "db_suffix": "EE_DB_SUFFIX",
    "relay_poll_interval_ms": "EE_RELAY_POLL_INTERVAL_MS",
    "relay_idle_poll_max_ms": "EE_RELAY_IDLE_POLL_MAX_MS",
    "outbox_retention_days": "EE_OUTBOX_RETENTION_DAYS",
    "processed_retention_days": "EE_PROCESSED_RETENTION_DAYS",
    "idempotency_retention_days": "EE_IDEMPOTENCY_RETENTION_DAYS",
    "housekeeping_interval_s": "EE_HOUSEKEEPING_INTERVAL_S",
}
# Variables named after the service: field -> suffix of EE_<SERVICE>_.
_SERVICE_ENV = {
    "database_url": "DATABASE_URL",
    "db_pool_size": "DB_POOL_SIZE",
    "db_max_overflow": "DB_MAX_OVERFLOW",
    "consumer_linger_ms": "CONSUMER_LINGER_MS",
    "requests_in_progress": "REQUESTS_IN_PROGRESS",
    "requests_waiting_max": "REQUESTS_WAITING_MAX",
}


def env_var_names(settings_cls: type[ServiceSettings]) -> dict[str, str]:
    """Field name -> the environment variable it is read from, for this service."""
    service = settings_cls.service_name.upper().replace("-", "_")
    names = dict(_COMMON_ENV)
    names.update({field: f"EE_{service}_{suffix}" for field, suffix in _SERVICE_ENV.items()})
    names.update(settings_cls.own_env_vars)
    return names


class _ExactEnvSource(PydanticBaseSettingsSource):
    """Reads each field from exactly one environment variable (see `env_var_names`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = env_var_names(self.settings_cls)[field_name]  # type: ignore[arg-type]
        return os.environ.get(name), name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, var in env_var_names(self.settings_cls).items():  # type: ignore[arg-type]
            raw = os.environ.get(var)
            # An empty variable means "not set" (shell scripts often export VAR= ), except for the
            # prefix and suffix, where empty is a meaningful value and also the default.
            if raw is not None and (raw != "" or field_name in ("topic_prefix", "db_suffix")):
                values[field_name] = raw
        return values


class ServiceSettings(BaseSettings):
    """Settings every service shares; subclass and set `service_name` and `default_port`."""

    # Validation errors must not echo the input: it holds the auth secret.
    model_config = SettingsConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000
    own_env_vars: ClassVar[dict[str, str]] = {}
    """A subclass's own fields: field -> the one variable it is read from."""

    env: Environment = "development"
    auth_secret: str = Field(default=DEV_AUTH_SECRET, repr=False)
    kafka_bootstrap_servers: str = DEFAULT_BOOTSTRAP
    topic_prefix: str = ""
    db_suffix: str = ""
    database_url: str = Field(default="", description="filled from service_name and db_suffix when empty")
    db_pool_size: int = Field(default=10, ge=1, le=100)
    # Kept small on purpose: PostgreSQL allows ~300 connections for four services, their replicas and
    # the tests; a burst should queue for a pooled connection rather than open many more.
    db_max_overflow: int = Field(default=2, ge=0, le=50)
    # Requests worked on at once by one process; the next wait their turn (shared.web.admission).
    requests_in_progress: int = Field(default=4, ge=1, le=1_000)
    requests_waiting_max: int = Field(default=1_000, ge=0, le=100_000)
    relay_poll_interval_ms: int = Field(default=20, ge=1, le=60_000)
    relay_idle_poll_max_ms: int = Field(default=200, ge=1, le=60_000)
    consumer_linger_ms: LingerMs = 0
    # Housekeeping (shared.housekeeping): how long rows the platform no longer needs are kept.
    outbox_retention_days: float = Field(default=7, gt=0, le=3650)
    processed_retention_days: float = Field(default=30, gt=0, le=3650)
    idempotency_retention_days: float = Field(default=7, gt=0, le=3650)
    housekeeping_interval_s: float = Field(default=3600, gt=0, le=86_400)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _ExactEnvSource(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _database_url(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        url = data.get("database_url")
        if not url:
            suffix = data.get("db_suffix") or ""
            url = f"postgresql+asyncpg://{DEFAULT_DB_HOST}/{cls.service_name}{suffix}"
        elif isinstance(url, str) and url.startswith(("postgresql://", "postgres://")):
            # SQLAlchemy would pick the synchronous psycopg driver for a bare postgresql:// URL.
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        return {**data, "database_url": url}

    @model_validator(mode="after")
    def _check(self) -> ServiceSettings:
        if not self.database_url.startswith("postgresql+asyncpg://"):
            raise ValueError(
                f"{env_var_names(type(self))['database_url']} must be a postgresql+asyncpg:// URL, "
                f"got {self.database_url.split('://', 1)[0]}://..."
            )
        try:
            check_auth_secret(self.auth_secret, self.env)
        except InsecureSecretError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def database_name(self) -> str:
        return make_url(self.database_url).database or ""

    @property
    def source(self) -> str:
        """CloudEvents `source` of the events this service emits: `ee/<service>`."""
        return f"ee/{self.service_name}"

    def topic(self, base: str) -> str:
        """The real topic name: `settings.topic("ee.profile.events")` adds the prefix."""
        return f"{self.topic_prefix}{base}"

    def dlq_topic(self, base: str) -> str:
        """The dead-letter twin of an event topic, prefixed: `<prefix><base>.dlq`."""
        return dlq_topic(self.topic(base))

    def consumer_group(self, base: str) -> str:
        """The real Kafka consumer group, under the topic prefix (a test run never joins the live group)."""
        return f"{self.topic_prefix}{base}"
