"""Settings of the draws service: the platform's, plus where the ranking service answers."""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings

DEFAULT_RANKING_URL = "http://127.0.0.1:8002"


def _ranking_url_from_env() -> str:
    return os.environ.get("EE_DRAWS_RANKING_URL") or DEFAULT_RANKING_URL


class DrawsSettings(ServiceSettings):
    service_name: ClassVar[str] = "draws"
    default_port: ClassVar[int] = 8003

    ranking_url: str = Field(
        default_factory=_ranking_url_from_env,
        description="base URL of the ranking service (`EE_DRAWS_RANKING_URL`)",
    )
    ranking_timeout_s: float = Field(default=30.0, gt=0)
