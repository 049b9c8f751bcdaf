"""Settings of the applications service (EE_APPLICATIONS_DATABASE_URL, port 8004, ...)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import LingerMs, ServiceSettings


class ApplicationsSettings(ServiceSettings):
    service_name: ClassVar[str] = "applications"
    default_port: ClassVar[int] = 8004

    scheduler_interval_s: float = Field(default=30.0, gt=0)
    """How often the deadline/reminder/COPR job runs (it also runs at once when the clock moves)."""
    consumer_linger_ms: LingerMs = 100
    """EE_APPLICATIONS_CONSUMER_LINGER_MS (`shared.settings`): profile facts and invitations are applied
    a transaction per batch, not per event; no one waits on one of them within 100 ms."""
