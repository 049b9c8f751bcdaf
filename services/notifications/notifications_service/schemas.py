"""Request and response bodies of the notifications API (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from notifications_service.domain.subscription import Subscription

Row = dict[str, Any]
EventType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
ProfileId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscriptionIn(_In):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://portal.example/hooks/express-entry",
                    "event_types": ["ee.draws.Invited", "ee.applications.*"],
                    "description": "ITAs and everything after them, for our candidates",
                }
            ]
        },
    )

    url: Url = Field(description="https (http only to a loopback receiver outside production)")
    event_types: list[EventType] = Field(
        min_length=1, description="`ee.<service>.<Event>` (no version), `ee.<service>.*` or `*`"
    )
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    candidates: list[ProfileId] = Field(
        default_factory=list, description="province only: profile ids it follows (found with the pool search)"
    )


class SubscriptionPatch(_In):
    url: Url | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    candidates: list[ProfileId] | None = None
    enabled: bool | None = Field(default=None, description="false pauses deliveries; true resumes them")


class RotateIn(_In):
    overlap_seconds: int = Field(
        default=86_400, ge=0, le=7 * 86_400, description="how long the previous secret also signs"
    )


class ReplayIn(_In):
    since: datetime = Field(description="events from this instant (inclusive, event time)")
    until: datetime | None = Field(default=None, description="to this instant (exclusive); default now")


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    candidates: list[str]
    subscriber: str
    role: str
    province: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_valid_until: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subscription) -> SubscriptionOut:
        return cls(
            id=s.id,
            url=s.spec.url,
            event_types=list(s.spec.event_types),
            description=s.spec.description,
            candidates=list(s.spec.candidates),
            subscriber=s.subscriber.sub,
            role=s.subscriber.role,
            province=s.subscriber.province,
            enabled=s.enabled,
            disabled_reason=s.disabled_reason,
            failing_since=s.failing_since,
            previous_secret_valid_until=s.previous_valid_until,
            version=s.version,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="`whsec_...`: shown this once; verify signatures with it")


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None


class DeliveryOut(BaseModel):
    id: str = Field(description="the `webhook-id` header")
    seq: int
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    attempt_log: list[AttemptOut] = []

    @classmethod
    def of(cls, row: Row) -> DeliveryOut:
        return cls(
            id=row["id"],
            seq=row["seq"],
            event_id=row["event_id"],
            event_type=row["type"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None,
            created_at=row["created_at"],
            last_attempt_at=row["last_attempt_at"],
            delivered_at=row["delivered_at"],
            last_status_code=row["last_status_code"],
            last_latency_ms=row["last_latency_ms"],
            last_error=row["last_error"],
            attempt_log=[
                AttemptOut(**{k: a[k] for k in AttemptOut.model_fields}) for a in row.get("attempt_log", [])
            ],
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_before: int | None = Field(description="pass as `before` for the next (older) page")


class Queued(BaseModel):
    delivery_id: str | None = None
    queued: int
