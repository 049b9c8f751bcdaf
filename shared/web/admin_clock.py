"""The admin clock: `GET`/`PUT /v1/admin/clock` (ops) move a service's business time; never in production."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.auth import Principal, require_roles

__all__ = ["AdjustableClock", "ClockState", "ClockUpdate", "clock_router"]

log = logging.getLogger(__name__)


class AdjustableClock(Protocol):
    def now(self) -> datetime: ...

    @property
    def offset(self) -> timedelta: ...

    def set_offset(self, offset: timedelta) -> None: ...


MAX_OFFSET_SECONDS = 100 * 366 * 24 * 3600


class ClockUpdate(BaseModel):
    """Exactly one of `offset_seconds` or `now`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"offset_seconds": 5184000}, {"now": "2025-09-01T12:00:00Z"}]},
    )

    offset_seconds: float | None = Field(
        default=None,
        allow_inf_nan=False,
        ge=-MAX_OFFSET_SECONDS,
        le=MAX_OFFSET_SECONDS,
        description="Business time = real time + this many seconds (60 days = 5184000). 0 resets.",
    )
    now: datetime | None = Field(
        default=None, description="Make business time read this instant now (timezone required)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ClockUpdate:
        if (self.offset_seconds is None) == (self.now is None):
            raise ValueError("send exactly one of offset_seconds or now")
        if self.now is not None and (self.now.tzinfo is None or self.now.utcoffset() is None):
            raise ValueError("now needs a timezone, e.g. 2025-09-01T12:00:00Z")
        return self


class ClockState(BaseModel):
    now: datetime = Field(description="The service's business time (UTC).")
    offset_seconds: float = Field(description="How far business time is ahead of real time.")


def _clock_state(clock: AdjustableClock) -> ClockState:
    return ClockState(now=clock.now(), offset_seconds=clock.offset.total_seconds())


def clock_router(clock: AdjustableClock) -> APIRouter:
    """`GET`/`PUT /v1/admin/clock`; never mounted in production."""
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.get("/clock", summary="Read the service's business time")
    async def read_clock() -> ClockState:
        return _clock_state(clock)

    @router.put("/clock", summary="Move the service's business time (not in production)")
    async def set_clock(
        update: ClockUpdate, principal: Annotated[Principal, Depends(require_roles("ops"))]
    ) -> ClockState:
        before = clock.offset
        if update.now is not None:
            offset = update.now - (clock.now() - clock.offset)
        else:
            offset = timedelta(seconds=update.offset_seconds or 0.0)
        clock.set_offset(offset)
        log.warning(
            "business clock moved by %s",
            principal.sub,
            extra={"offset_before_s": before.total_seconds(), "offset_s": offset.total_seconds()},
        )
        return _clock_state(clock)

    return router
