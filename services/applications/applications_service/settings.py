"""Settings of the applications service (EE_APPLICATIONS_DATABASE_URL, port 8004, ...)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class ApplicationsSettings(ServiceSettings):
    service_name: ClassVar[str] = "applications"
    default_port: ClassVar[int] = 8004

    scheduler_interval_s: ClassVar[float] = 30.0
    """How often the deadline/reminder/COPR job runs (it also runs at once when the clock moves)."""
