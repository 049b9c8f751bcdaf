"""Settings of the profile service (EE_PROFILE_DATABASE_URL, port 8001, ...)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from shared.crypto import DEV_KEK, KeyRing
from shared.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    service_name: ClassVar[str] = "profile"
    default_port: ClassVar[int] = 8001
    own_env_vars: ClassVar[dict[str, str]] = {
        "kek": "EE_KEK",
        "erasure_retention_days": "EE_ERASURE_RETENTION_DAYS",
    }

    kek: str = Field(default=DEV_KEK, repr=False)
    """Key-encryption keys (docs/PRIVACY.md): base64 keys separated by commas, the current one first;
    the older ones only unwrap until `python -m profile_service.keys rewrap` has moved every data key."""
    erasure_retention_days: float = Field(default=30, ge=0, le=3650)
    """Days a withdrawn or expired profile's personal data is kept before it is erased for good."""

    review_interval_s: ClassVar[float] = 60.0
    """How often the expiry / re-check job runs (it also runs at once when the clock moves)."""
    review_batch_size: ClassVar[int] = 200
    """Profiles reviewed per transaction by the scheduled job."""

    @model_validator(mode="after")
    def _check_kek(self) -> ProfileSettings:
        ring = KeyRing.parse(self.kek)  # ValueError (hidden input) on a malformed key
        if self.is_production and KeyRing.parse(DEV_KEK).current_id in ring.ids:
            raise ValueError("EE_KEK: production refuses the development key-encryption key; set real keys")
        return self

    def keyring(self) -> KeyRing:
        return KeyRing.parse(self.kek)
