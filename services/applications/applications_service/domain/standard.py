"""The service standard: Express Entry applications processed in six months or less, for 80% of them.

Days to decision are counted from Applied to the decision (approval or refusal), in fractional days.
"Within the standard" means decided at or before the same instant six calendar months after applying.
The 80th percentile is the nearest-rank one: the smallest number of days within which at least 80% of
the decided applications were decided, which is how the standard itself is phrased.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from applications_service.domain.calendar import add_months

STANDARD_MONTHS: Final = 6
STANDARD_SHARE: Final = 0.8
AT_RISK_WINDOW: Final = timedelta(days=30)


def standard_due(applied_at: datetime) -> datetime:
    """The instant by which an application must be decided to meet the six-month standard."""
    due = add_months(applied_at.date(), STANDARD_MONTHS)
    return applied_at.replace(year=due.year, month=due.month, day=due.day)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(days=1)


def percentile_nearest_rank(values: Sequence[float], share: float) -> float:
    """The smallest value at or below which at least `share` of the values lie."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


@dataclass(frozen=True, slots=True)
class Decided:
    applied_at: datetime
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class ServiceStandardStats:
    counts_by_state: dict[str, int]
    decided: int
    median_days_to_decision: float | None
    p80_days_to_decision: float | None
    decided_within_standard: int
    share_within_standard: float | None
    standard_met: bool | None  # at least 80% decided within six months


def service_standard_stats(
    counts_by_state: Mapping[str, int], decided: Sequence[Decided]
) -> ServiceStandardStats:
    days = [days_between(d.applied_at, d.decided_at) for d in decided]
    within = sum(1 for d in decided if d.decided_at <= standard_due(d.applied_at))
    share = within / len(decided) if decided else None
    return ServiceStandardStats(
        counts_by_state=dict(sorted(counts_by_state.items())),
        decided=len(decided),
        median_days_to_decision=round(statistics.median(days), 2) if days else None,
        p80_days_to_decision=round(percentile_nearest_rank(days, STANDARD_SHARE), 2) if days else None,
        decided_within_standard=within,
        share_within_standard=round(share, 4) if share is not None else None,
        standard_met=share >= STANDARD_SHARE if share is not None else None,
    )


@dataclass(frozen=True, slots=True)
class OpenApplication:
    application_id: str
    invitation_id: str
    profile_id: str
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class AtRisk:
    application: OpenApplication
    standard_due: datetime
    days_left: float  # negative: the standard is already missed

    @property
    def already_missed(self) -> bool:
        return self.days_left < 0


def at_risk(open_applications: Sequence[OpenApplication], now: datetime) -> list[AtRisk]:
    """Open applications that miss the six-month standard unless decided within 30 days, oldest first.

    Those already past the standard stay in the queue (at its head): they are the most overdue work.
    """
    risky = []
    for application in open_applications:
        due = standard_due(application.applied_at)
        if due <= now + AT_RISK_WINDOW:
            risky.append(AtRisk(application, due, round(days_between(now, due), 2)))
    return sorted(risky, key=lambda r: (r.application.applied_at, r.application.application_id))
