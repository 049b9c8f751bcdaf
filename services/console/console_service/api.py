"""The console's routes: sign-in (an ops token in an HttpOnly cookie), the pages, and the JSON the page's
script reads. Everything comes from the services' HTTP APIs, called with the signed-in person's token."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

import jwt
from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from console_service import pages
from console_service.settings import SERVICES, ConsoleSettings
from console_service.upstream import Upstream, answer
from console_service.views import health_row, pool_view, read_ircc_distribution, rounds_view
from shared.auth import InvalidToken, Principal, decode_token, mint_token
from shared.problem import Problem

COOKIE: Final = "ee_console"
DEV_SUB: Final = "console-dev"
DEV_TTL_S: Final = 8 * 3600
MAX_FORM_BYTES: Final = 16_384

router = APIRouter(prefix="/console", include_in_schema=True, tags=["console"])


def get_settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def get_upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


Settings = Annotated[ConsoleSettings, Depends(get_settings)]
Services = Annotated[Upstream, Depends(get_upstream)]


# -- who is signed in ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    principal: Principal


def check_ops(token: str, settings: ConsoleSettings) -> Principal:
    """The token's principal when it is a valid ops token; a 401/403 problem saying why not."""
    try:
        principal = decode_token(token, settings.auth_secret)
    except InvalidToken as exc:
        raise Problem(401, "Not signed in", f"The token was rejected: {exc}.") from None
    if principal.role != "ops":
        raise Problem(
            403,
            "Not an ops token",
            f"The console is for operations: this token has the role {principal.role}; "
            "sign in with a token whose role is ops.",
        )
    return principal


def _token_of(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


async def ops_session(request: Request, settings: Settings) -> Session:
    """The console's API: the cookie (or a bearer header) must hold a valid ops token."""
    token = _token_of(request)
    if not token:
        raise Problem(
            401,
            "Not signed in",
            "Sign in at /console/login with an ops token first.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Session(token=token, principal=check_ops(token, settings))


Ops = Annotated[Session, Depends(ops_session)]


def _signed_in(response: Response, token: str, settings: ConsoleSettings) -> Response:
    try:  # verified by the caller; the cookie lives as long as the token
        exp = int(jwt.decode(token, options={"verify_signature": False}).get("exp", 0))
    except (jwt.PyJWTError, TypeError, ValueError):
        exp = 0
    max_age = max(60, exp - int(time.time())) if exp else 3600
    response.set_cookie(
        COOKIE, token, max_age=max_age, path="/console", httponly=True, samesite="strict",
        secure=settings.is_production,
    )  # fmt: skip
    return response


# -- pages -----------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse, summary="The dashboard (signed in), else the sign-in page")
async def dashboard(request: Request, settings: Settings) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        try:
            principal = check_ops(token, settings)
        except Problem:
            principal = None
        if principal is not None:
            return HTMLResponse(pages.dashboard_page(sub=principal.sub, refresh_s=settings.refresh_s))
    return RedirectResponse("/console/login", status_code=303)


@router.get("/login", response_class=HTMLResponse, summary="The sign-in page")
async def login_form(settings: Settings) -> HTMLResponse:
    return HTMLResponse(pages.login_page(dev_sign_in=not settings.is_production))


@router.post("/login", response_class=HTMLResponse, summary="Sign in with an ops token (form field `token`)")
async def login(request: Request, settings: Settings) -> Response:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Problem(413, "Too large", f"A sign-in form is at most {MAX_FORM_BYTES} bytes.")
    fields = parse_qs(body.decode("utf-8", "replace"))
    token = (fields.get("token") or [""])[0].strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    dev = not settings.is_production
    if not token:
        return HTMLResponse(pages.login_page(error="Paste an ops token.", dev_sign_in=dev), status_code=400)
    try:
        check_ops(token, settings)
    except Problem as problem:
        page = pages.login_page(error=f"{problem.title}: {problem.detail}", dev_sign_in=dev)
        return HTMLResponse(page, status_code=problem.status)
    return _signed_in(RedirectResponse("/console", status_code=303), token, settings)


@router.post("/logout", summary="Sign out")
async def logout() -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


def dev_router() -> APIRouter:
    """`POST /console/login/dev`: outside production only (the route does not exist in production)."""
    dev = APIRouter(prefix="/console", tags=["console"])

    @dev.post("/login/dev", summary="Development sign-in: a fresh ops token (not in production)")
    async def dev_login(settings: Settings) -> Response:
        token = mint_token(settings.auth_secret, DEV_SUB, "ops", ttl_seconds=DEV_TTL_S)
        return _signed_in(RedirectResponse("/console", status_code=303), token, settings)

    return dev


# -- what the page's script reads ----------------------------------------------------------------------


@router.get("/api/pool", summary="The pool's CRS bins beside IRCC's last published distribution")
async def pool(session: Ops, services: Services, settings: Settings) -> dict[str, Any]:
    distribution = await services.json("ranking", "/v1/pool/distribution", token=session.token)
    return pool_view(distribution, await asyncio.to_thread(read_ircc_distribution, settings.ircc_data_dir))


@router.get("/api/candidates/{profile_id}", summary="A candidate's rank and score breakdown")
async def candidate(
    profile_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    session: Ops,
    services: Services,
) -> Any:
    return await services.json("ranking", f"/v1/pool/candidates/{profile_id}", token=session.token)


@router.get("/api/rounds", summary="The rounds held: IRCC's table and the series per round type")
async def rounds(session: Ops, services: Services) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    before: int | None = None
    while True:  # every round, newest first, a page of 500 at a time
        params: dict[str, Any] = {"limit": 500, **({"before": before} if before else {})}
        page = await services.json("draws", "/v1/draws", token=session.token, params=params)
        items += page["items"]
        before = page.get("next_before")
        if not before:
            return rounds_view(items)


class RoundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=40)
    size: int = Field(ge=1, le=1_000_000)


@router.post("/api/plan", summary="Dry run of a round: cut-off and who would be invited")
async def plan(body: RoundIn, session: Ops, services: Services) -> Any:
    response = await services.call(
        "draws", "POST", "/v1/draws/plan", token=session.token, json=body.model_dump()
    )
    return answer("draws", response)


@router.post("/api/rounds", status_code=201, summary="Hold a round (Idempotency-Key required)")
async def hold(
    body: RoundIn,
    session: Ops,
    services: Services,
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    if not key:
        raise Problem(
            428, "Idempotency-Key required", "Send the round's Idempotency-Key (a UUID) to hold it."
        )
    response = await services.call(
        "draws", "POST", "/v1/draws", token=session.token, json=body.model_dump(),
        headers={"Idempotency-Key": key},
    )  # fmt: skip
    return answer("draws", response)


@router.get("/api/applications", summary="Counts by state, the service standard, the at-risk queue")
async def applications(session: Ops, services: Services) -> dict[str, Any]:
    stats, at_risk = await asyncio.gather(
        services.json("applications", "/v1/applications/stats", token=session.token),
        services.json("applications", "/v1/applications/at-risk", token=session.token),
    )
    return {"stats": stats, "at_risk": at_risk}


@router.get("/api/health", summary="Each service's readiness and what its /metrics says")
async def health(_: Ops, services: Services) -> dict[str, Any]:
    async def one(service: str) -> dict[str, Any]:
        ready, metrics = await asyncio.gather(
            services.probe(service, "/readyz"), services.probe(service, "/metrics")
        )
        body: Any = None
        if ready is not None:
            try:
                body = ready.json()
            except ValueError:
                body = None
        text = metrics.text if metrics is not None and metrics.status_code == 200 else None
        return health_row(service, ready.status_code if ready is not None else None, body, text)

    rows = await asyncio.gather(*(one(service) for service in SERVICES))
    return {"services": list(rows), "checked_at": time.time()}
