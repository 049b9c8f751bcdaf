"""The console app in-process: sign-in with ops tokens only, the development sign-in outside production,
problem+json from its API, assets served from the repository (no CDN)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from console_service.api import COOKIE
from console_service.main import STATIC_DIR, build_app
from console_service.settings import SERVICES, ConsoleSettings
from shared.auth import mint_token
from shared.testing import default_collector, free_port
from shared.web.app import YOUNG_COLLECTION_THRESHOLD

SECRET = "console-test-secret-0123456789-abcdefgh"
PROBLEM = "application/problem+json"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    return free_port()


def settings(env: str = "test") -> ConsoleSettings:
    port = closed_port()
    return ConsoleSettings(
        env=env, auth_secret=SECRET, service_urls={name: f"http://127.0.0.1:{port}" for name in SERVICES}
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with browser(build_app(settings())) as c:
        yield c


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


def token(role: str, sub: str = "alice", **kw: Any) -> str:
    return mint_token(SECRET, sub, role, **kw)


async def test_the_console_without_a_session_sends_to_the_sign_in_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    page = await client.get("/console/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    assert "Development sign-in" in page.text


async def test_an_ops_token_signs_in_and_the_dashboard_loads_chart_js_from_the_repository(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/console/login", data={"token": token("ops")})
    assert response.status_code == 303 and response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    assert (
        f"{COOKIE}=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie
        and "Path=/console" in cookie
    )
    page = await client.get("/console")
    assert page.status_code == 200
    assert "signed in as <strong>alice</strong>" in page.text
    assert '<script src="/console/static/vendor/chartjs/chart.umd.min.js">' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    asset = await client.get("/console/static/vendor/chartjs/chart.umd.min.js")
    assert asset.status_code == 200 and asset.text.startswith("/*!\n * Chart.js v4.6.1")
    assert (STATIC_DIR / "vendor/chartjs/LICENSE.md").read_text().startswith("The MIT License")


@pytest.mark.parametrize("role", ["candidate", "partner", "officer"])
async def test_a_token_of_another_role_is_refused(client: httpx.AsyncClient, role: str) -> None:
    response = await client.post("/console/login", data={"token": token(role)})
    assert response.status_code == 403
    assert f"this token has the role {role}" in response.text and COOKIE not in response.headers.get(
        "set-cookie", ""
    )
    api = await client.get("/console/api/pool", headers={"Authorization": f"Bearer {token(role)}"})
    assert api.status_code == 403 and api.headers["content-type"] == PROBLEM


async def test_a_forged_or_expired_token_is_refused(client: httpx.AsyncClient) -> None:
    forged = mint_token("another-secret-0123456789-abcdefghijk", "mallory", "ops")
    response = await client.post("/console/login", data={"token": forged})
    assert response.status_code == 401 and "signature does not verify" in response.text
    expired = mint_token(SECRET, "alice", "ops", ttl_seconds=-60)
    assert (await client.post("/console/login", data={"token": expired})).status_code == 401
    client.cookies.set(COOKIE, forged, path="/console")
    assert (await client.get("/console")).status_code == 303


async def test_the_api_needs_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/api/health", headers={"X-Correlation-Id": "console-test-1"})
    assert response.status_code == 401 and response.headers["content-type"] == PROBLEM
    assert response.headers["x-correlation-id"] == "console-test-1" == response.json()["correlation_id"]
    assert "Sign in at /console/login" in response.json()["detail"]


async def test_development_sign_in_gives_an_ops_session(client: httpx.AsyncClient) -> None:
    response = await client.post("/console/login/dev")
    assert response.status_code == 303
    page = await client.get("/console")
    assert page.status_code == 200 and "console-dev" in page.text


async def test_production_has_no_development_sign_in() -> None:
    prod = ConsoleSettings(env="production", auth_secret=SECRET, service_urls={})
    async with browser(build_app(prod)) as c:
        page = await c.get("/console/login")
        assert "Development sign-in" not in page.text
        response = await c.post("/console/login/dev")
        assert response.status_code in (404, 405) and response.headers["content-type"] == PROBLEM


def test_the_console_reads_every_service_of_the_table_at_its_port() -> None:
    from shared.gateway import load_table

    table = {e.name: e for e in load_table()}
    assert set(SERVICES) == set(table) - {"console"} and {
        "profile",
        "ranking",
        "draws",
        "applications",
    } <= set(SERVICES)
    urls = ConsoleSettings.from_env(
        {"EE_PORT_BASE": "18000", "EE_CONSOLE_UPSTREAMS": "draws=http://draws:8003/, profile=http://p:1"}
    ).service_urls
    assert urls["ranking"] == f"http://127.0.0.1:{table['ranking'].port(18000)}"
    assert urls["draws"] == "http://draws:8003" and urls["profile"] == "http://p:1"
    with pytest.raises(ValueError, match="EE_CONSOLE_UPSTREAMS: 'nobody=http://x' must be"):
        ConsoleSettings.from_env({"EE_CONSOLE_UPSTREAMS": "nobody=http://x"})


async def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(Exception, match="EE_AUTH_SECRET"):
        ConsoleSettings(env="production", auth_secret="")


async def test_a_service_down_is_a_503_problem_naming_it_and_health_shows_it_down(
    client: httpx.AsyncClient,
) -> None:
    auth = {"Authorization": f"Bearer {token('ops')}"}
    response = await client.get("/console/api/pool", headers=auth)
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
    assert response.json()["detail"].startswith("The ranking service at http://127.0.0.1:")
    health = (await client.get("/console/api/health", headers=auth)).json()
    assert [row["service"] for row in health["services"]] == list(SERVICES)
    assert all(row["ready"] is False and row["status"] is None for row in health["services"])


async def test_bad_input_is_a_422_problem(client: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {token('ops')}"}
    response = await client.post("/console/api/plan", json={"type": "general", "size": 0}, headers=auth)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == "size"
    hold = await client.post("/console/api/rounds", json={"type": "general", "size": 5}, headers=auth)
    assert hold.status_code == 428


@pytest.mark.parametrize(("env", "settled"), [("development", True), ("test", False)])
async def test_the_console_starts_as_the_services_do(env: str, settled: bool) -> None:
    """Its collector settled once started (`shared.web.app.ready_to_serve`), as in the four services;
    a test process's collector left alone."""
    app = build_app(settings(env), configure_logs=False)
    with default_collector():
        async with app.router.lifespan_context(app):
            threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    if settled:
        assert threshold == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
        assert frozen > 0
    else:
        assert (threshold, frozen) == ((700, 10, 10), 0)
