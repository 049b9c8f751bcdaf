"""The applications service's ASGI app: `uvicorn applications_service.main:app --port 8004`.

Runs the API, the outbox relay, the consumers of `ee.draws.events` (Invited) and `ee.profile.events`
(profile facts for the proof-of-funds rule), and the clock job that expires invitations and COPRs and
sends reminders (every `scheduler_interval_s`, and at once when the clock moves).
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from applications_service import api
from applications_service.adapters.consumers import invitations_consumer, profiles_consumer
from applications_service.adapters.metrics import applications_metrics
from applications_service.adapters.uow import applications_uow
from applications_service.application.handlers import ApplicationsHandlers
from applications_service.settings import ApplicationsSettings
from shared.clock import Clock
from shared.runtime import ServiceRuntime
from shared.scheduler import Periodic
from shared.web import create_service_app

SCHEDULER_JOB = "applications.clock"
DESCRIPTION = (
    "An invitation's 60 days, the application (e-APR), the officer's decision, the COPR and the permanent "
    "resident visa, landing, reminders, and the six-month service standard."
)


def clock_job(runtime: ServiceRuntime, interval_s: float) -> Periodic:
    """Expire invitations past their deadline and COPRs past their expiry; send due reminders."""
    handlers = ApplicationsHandlers(applications_uow(runtime.uow), runtime.clock)
    return Periodic(SCHEDULER_JOB, runtime.clock, interval_s, handlers.run_due)


def build_app(settings: ApplicationsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or ApplicationsSettings()
    runtime = ServiceRuntime(settings, clock=clock, consumers=[invitations_consumer, profiles_consumer])
    runtime.add_background(clock_job(runtime, settings.scheduler_interval_s))
    runtime.add_metrics(partial(applications_metrics, settings.service_name, runtime.engine, runtime.clock))
    return create_service_app(runtime, [api.router], title="Applications service", description=DESCRIPTION)


app = build_app()
