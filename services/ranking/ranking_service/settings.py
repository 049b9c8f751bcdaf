"""Settings of the ranking service: the platform's, plus the replica switch and the job knobs.

| field                 | variable                        | default |
|-----------------------|---------------------------------|---------|
| replica               | EE_RANKING_REPLICA              | false   |
| rescore_interval_s    | EE_RANKING_RESCORE_INTERVAL_S   | 30      |
| consumer_batch_size   | EE_RANKING_CONSUMER_BATCH_SIZE  | 500     |
| consumer_linger_ms    | EE_RANKING_CONSUMER_LINGER_MS   | 20      |

The consumer linger: a batch smaller than `consumer_batch_size` waits up to `consumer_linger_ms` for
more records (0: never), so a steady trickle of updates is applied in fewer, larger transactions. It
adds at most that much to update -> visible (budget p99 <= 250 ms); `shared.consumer`.

A replica (`EE_RANKING_REPLICA=true`) reads every partition (`group_id=None`) into its own database
(point `EE_RANKING_DATABASE_URL` at one), holds the whole pool for queries and emits nothing.
"""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import Field

from shared.settings import LingerMs, ServiceSettings

_TRUE = frozenset({"1", "true", "yes", "on"})


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


class RankingSettings(ServiceSettings):
    service_name: ClassVar[str] = "ranking"
    default_port: ClassVar[int] = 8002

    replica: bool = Field(
        default_factory=lambda: _env_flag("EE_RANKING_REPLICA"),
        description="read replica: every partition, its own database, emits nothing (`EE_RANKING_REPLICA`)",
    )
    rescore_interval_s: float = Field(
        default_factory=lambda: _env_number("EE_RANKING_RESCORE_INTERVAL_S", 30.0),
        gt=0,
        description="how often the time-based rescoring runs (also at once when the clock moves)",
    )
    consumer_batch_size: int = Field(
        default_factory=lambda: int(_env_number("EE_RANKING_CONSUMER_BATCH_SIZE", 500)),
        ge=1,
        le=20_000,
        description="records per consumer batch (one transaction)",
    )
    # how long a batch smaller than consumer_batch_size waits for more records
    consumer_linger_ms: LingerMs = 20  # EE_RANKING_CONSUMER_LINGER_MS (the platform reads it)

    @property
    def consumer_name(self) -> str:
        """The projection's consumer: its positions are stored under this name."""
        return "ranking-replica" if self.replica else "ranking"

    @property
    def group_id(self) -> str | None:
        """The scorer's consumer group, "ranking" (the consumer puts it under the topic prefix)."""
        return None if self.replica else "ranking"
