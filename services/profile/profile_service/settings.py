"""Settings of the profile service (EE_PROFILE_DATABASE_URL, port 8001, ...)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    service_name: ClassVar[str] = "profile"
    default_port: ClassVar[int] = 8001

    review_interval_s: ClassVar[float] = 60.0
    """How often the expiry / re-check job runs (it also runs at once when the clock moves)."""
    review_batch_size: ClassVar[int] = 200
    """Profiles reviewed per transaction by the scheduled job."""
