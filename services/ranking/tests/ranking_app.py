"""The ranking app in-process (httpx.ASGITransport) over a view filled by hand: no Kafka, no database.

The runtime is built but never started (no lifespan), so only the routes and the in-memory view run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from ranking_factories import NOW

from ranking_service.api import RankingContext
from ranking_service.domain.pool import Pool, PoolEntry
from ranking_service.domain.view import CandidateInfo, PoolView
from ranking_service.main import build_app
from ranking_service.settings import RankingSettings
from shared.auth import mint_token
from shared.clock import Clock

SECRET = "ranking-tests-secret-0123456789abcdefghijklmnop"


def settings() -> RankingSettings:
    return RankingSettings(env="test", auth_secret=SECRET, topic_prefix="unused.", db_suffix="_unused")


def token(role: str, sub: str = "someone", province: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, sub, role, province=province)}"}


@dataclass
class Member:
    profile_id: str
    crs: int
    minutes: int = 0  # submitted NOW - 1 day + minutes
    programs: tuple[str, ...] = ("fsw",)
    categories: tuple[str, ...] = ()
    owner: str = "partner-1"
    citizenship: str = "IN"
    noc_codes: tuple[str, ...] = ("21231",)
    lowest_clb: dict[str, int] = field(default_factory=lambda: {"en": 9})

    @property
    def submitted_at(self) -> datetime:
        return NOW - timedelta(days=1) + timedelta(minutes=self.minutes)


def fill(view: PoolView, members: Iterable[Member], positions: dict[str, int] | None = None) -> None:
    pool, infos = Pool(), {}
    for m in members:
        pool.upsert(
            PoolEntry(m.profile_id, m.crs, m.submitted_at, frozenset(m.programs), frozenset(m.categories))
        )
        breakdown = {"age": 100, "education": m.crs - 100}
        infos[m.profile_id] = CandidateInfo.of(
            m.owner, m.citizenship, breakdown, m.noc_codes, m.lowest_clb, 1
        ).record
    view.replace(pool, infos, positions or {"x.ee.profile.events:0": 7}, NOW)


def app_with(members: Iterable[Member] = (), *, loaded: bool = True) -> FastAPI:
    app = build_app(settings(), clock=Clock.frozen(NOW))
    if loaded:
        fill(view_of(app), members)
    return app


def view_of(app: FastAPI) -> PoolView:
    ranking: RankingContext = app.state.ranking
    return ranking.view


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ranking")


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body
