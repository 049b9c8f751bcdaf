"""Settings of the notifications service: the platform's, plus the delivery knobs and the secret key.

| field                | variable                              | default                                  |
|----------------------|---------------------------------------|------------------------------------------|
| secret_key           | EE_NOTIFICATIONS_SECRET_KEY           | a development-only key (refused in       |
|                      |                                       | production): base64 of 32 bytes          |
| retry_schedule_s     | EE_NOTIFICATIONS_RETRY_SCHEDULE       | 5,300,1800,7200,18000,36000,36000        |
| retry_jitter         | EE_NOTIFICATIONS_RETRY_JITTER         | 0.2 (each wait is ±20 %)                 |
| disable_after_s      | EE_NOTIFICATIONS_DISABLE_AFTER_S      | 432000 (5 days of failures)              |
| timeout_s            | EE_NOTIFICATIONS_TIMEOUT_S            | 5                                        |
| max_in_flight        | EE_NOTIFICATIONS_MAX_IN_FLIGHT        | 64 requests at once                      |
| poll_interval_s      | EE_NOTIFICATIONS_POLL_INTERVAL_S      | 0.5 (new deliveries also wake it at once)|
| consumer_linger_ms   | EE_NOTIFICATIONS_CONSUMER_LINGER_MS   | 50 (`shared.settings`)                   |

Secrets of subscriptions are stored encrypted (AES-256-GCM) with `secret_key`; losing the key loses
every secret (subscribers then rotate).
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from shared.settings import LingerMs, ServiceSettings

DEV_SECRET_KEY = base64.b64encode(b"ee-notifications-dev-key-32bytes").decode()
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
FIVE_DAYS_S = 5 * 24 * 3600.0


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _schedule_from_env() -> tuple[float, ...]:
    raw = os.environ.get("EE_NOTIFICATIONS_RETRY_SCHEDULE", "").strip()
    return tuple(float(x) for x in raw.split(",")) if raw else DEFAULT_RETRY_SCHEDULE


class NotificationsSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifications"
    default_port: ClassVar[int] = 8005

    secret_key: str = Field(
        default_factory=lambda: _env("EE_NOTIFICATIONS_SECRET_KEY", DEV_SECRET_KEY),
        repr=False,
        description="base64 of the 32-byte AES-GCM key the subscription secrets are encrypted with",
    )
    retry_schedule_s: tuple[float, ...] = Field(
        default_factory=_schedule_from_env,
        description="waits before the 2nd, 3rd, ... attempt; after the last one a delivery has failed",
    )
    retry_jitter: float = Field(
        default_factory=lambda: float(_env("EE_NOTIFICATIONS_RETRY_JITTER", "0.2")), ge=0, lt=1
    )
    disable_after_s: float = Field(
        default_factory=lambda: float(_env("EE_NOTIFICATIONS_DISABLE_AFTER_S", str(FIVE_DAYS_S))), gt=0
    )
    timeout_s: float = Field(default_factory=lambda: float(_env("EE_NOTIFICATIONS_TIMEOUT_S", "5")), gt=0)
    max_in_flight: int = Field(
        default_factory=lambda: int(_env("EE_NOTIFICATIONS_MAX_IN_FLIGHT", "64")), ge=1, le=1000
    )
    poll_interval_s: float = Field(
        default_factory=lambda: float(_env("EE_NOTIFICATIONS_POLL_INTERVAL_S", "0.5")), gt=0
    )
    max_response_bytes: int = 64 * 1024
    consumer_batch_size: int = 500
    # A fan-out transaction per few events instead of per event: the 1 s an ITA has to reach its
    # partner (issue 14) affords 50 ms.
    consumer_linger_ms: LingerMs = 50

    @field_validator("retry_schedule_s")
    @classmethod
    def _schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(step <= 0 for step in value):
            raise ValueError("EE_NOTIFICATIONS_RETRY_SCHEDULE: positive seconds, comma-separated")
        return value

    @model_validator(mode="after")
    def _key(self) -> NotificationsSettings:
        try:
            key = base64.b64decode(self.secret_key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("EE_NOTIFICATIONS_SECRET_KEY must be base64 (of 32 random bytes)") from None
        if len(key) != 32:
            raise ValueError(f"EE_NOTIFICATIONS_SECRET_KEY must decode to 32 bytes, not {len(key)}")
        if self.is_production and self.secret_key == DEV_SECRET_KEY:
            raise ValueError(
                "EE_NOTIFICATIONS_SECRET_KEY is the development key: in production set it to "
                "base64 of 32 random bytes (e.g. `openssl rand -base64 32`)"
            )
        return self

    @property
    def secret_key_bytes(self) -> bytes:
        return base64.b64decode(self.secret_key)

    @property
    def allow_loopback(self) -> bool:
        """Loopback receivers (and plain http to them) are for development and tests only."""
        return not self.is_production
