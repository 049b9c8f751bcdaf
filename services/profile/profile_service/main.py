"""The profile service's ASGI app: `uvicorn profile_service.main:app --port 8001`."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from profile_service import api
from profile_service.adapters.consumer import invitations_consumer
from profile_service.adapters.uow import profile_uow
from profile_service.application.scheduler import erase_due, review_due
from profile_service.settings import ProfileSettings
from shared.clock import Clock
from shared.runtime import ServiceRuntime
from shared.scheduler import Periodic
from shared.web import create_service_app

TITLE = "Express Entry profile service"
DESCRIPTION = """Candidate profiles (the profile document v1), program eligibility (FSWP, CEC, FSTP),
entry into the Express Entry pool and its 12-month expiry, and provincial nominations.

Candidates and partners see and change only the profiles they created. Writes need `If-Match` with the
ETag of your last read; errors are RFC 9457 problem+json."""


def build_app(settings: ProfileSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or ProfileSettings()
    runtime = ServiceRuntime(settings, clock=clock, consumers=[invitations_consumer])
    batch = settings.review_batch_size
    review = Periodic(
        "profile-review",
        runtime.clock,
        settings.review_interval_s,
        lambda: review_due(profile_uow(runtime.uow), batch),
    )
    runtime.add_background(review)
    retention = timedelta(days=settings.erasure_retention_days)
    erasure = Periodic(
        "profile-erasure",
        runtime.clock,
        settings.review_interval_s,
        lambda: erase_due(profile_uow(runtime.uow), retention, batch),
    )
    runtime.add_background(erasure)
    return create_service_app(runtime, [api.router], title=TITLE, description=DESCRIPTION)


app = build_app()
