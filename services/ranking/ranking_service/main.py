"""The ranking service's ASGI app: `uvicorn ranking_service.main:app --port 8002`."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from starlette.middleware import Middleware

from ranking_service import api
from ranking_service.adapters.consumer import ProjectionRunner, ranking_consumer
from ranking_service.adapters.follower import ScoredStreamFollower
from ranking_service.adapters.metrics import ranking_metrics
from ranking_service.adapters.repository import SqlProjectionStore
from ranking_service.application.jobs import RankingJobs
from ranking_service.application.projection import RankingProjection
from ranking_service.domain.view import PoolView
from ranking_service.settings import RankingSettings
from shared.clock import Clock
from shared.rules.crs import IN_FORCE
from shared.runtime import ServiceRuntime
from shared.scheduler import Periodic
from shared.web import create_service_app

DESCRIPTION = """CRS scoring and the live CRS-ordered pool.

The service turns profile, draws and applications events into CRS scores (versioned rules, facts
derived as of the service clock) and keeps the whole pool in memory, ordered by
(-CRS, submission time, profile id), with an ordering per program and per draw category. It emits
`Ranked` when a candidate's score, programs or categories change and `RemovedFromPool` when they
leave. Queries: a candidate's rank, the published distribution, the top of the pool, provinces'
search, and the ordered selection the draws service invites from. The CRS calculator is public.
"""


def build_app(settings: RankingSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or RankingSettings()
    runtime = ServiceRuntime(settings, clock=clock, relay=not settings.replica)
    view = PoolView(IN_FORCE)
    projection = RankingProjection(view, SqlProjectionStore, runtime.clock, emit=not settings.replica)
    jobs = RankingJobs(
        projection, SqlProjectionStore, runtime.uow, settings.consumer_name, slots=lambda: runner.slots()
    )
    wake = runtime.relay.wake if runtime.relay is not None else None
    # Scorers share one database and split the partitions (the consumer group); each follows the
    # scored stream for the whole pool. A replica scores everything into its own database instead.
    follower = (
        None
        if settings.replica
        else ScoredStreamFollower(settings, runtime.session_factory, view, jobs, SqlProjectionStore)
    )
    runner = ProjectionRunner(
        jobs,
        lambda: ranking_consumer(
            settings, runtime.session_factory, runtime.clock, projection, on_outbox_commit=wake
        ),
        follower,
    )
    runtime.add_background(runner)
    runtime.add_readiness_check("projection", runner.ready)
    runtime.watch_consumer(lambda: runner.consumer)
    runtime.add_metrics(partial(ranking_metrics, settings.service_name, projection))
    runtime.add_background(Periodic("ranking-rescore", runtime.clock, settings.rescore_interval_s, jobs.tick))
    ranking = api.RankingContext(view, jobs, runtime.clock, runner.sync)
    state = {"ranking": ranking, "ranking_runner": runner}
    app = create_service_app(
        runtime, [api.router], title="Ranking service", description=DESCRIPTION, state=state
    )
    # Innermost of the app's middleware: inside the platform's request middleware (correlation id,
    # metrics, access log), before routing (`api.LeanCandidateReads`).
    app.user_middleware.append(
        Middleware(api.LeanCandidateReads, ranking=ranking, route=api.candidate_route(app.routes))
    )
    return app


app = build_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=RankingSettings.default_port)
