"""HTTP routes of the ranking service (thin: validate, call the application layer, answer).

Pool answers are serialised with orjson straight from the in-memory view: a selection of 10,000 over
a pool of a million is a walk of one ordering plus one dict per candidate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from ranking_service.application import queries
from ranking_service.application.jobs import Activation, RankingJobs
from ranking_service.domain.view import PoolView
from ranking_service.schemas import (
    ActivationAnswer,
    CalculatorRequest,
    CalculatorResponse,
    CandidateStanding,
    Distribution,
    Fingerprint,
    RulesState,
    SearchPage,
    SelectionAnswer,
    SelectionRequest,
    TopAnswer,
)
from shared.auth import InvalidToken, Principal, require_roles, secret_value, verified_tokens
from shared.errors import Unprocessable
from shared.idempotency import IdempotencyKey
from shared.problem import ProblemDetails
from shared.rules.crs import (
    RULES_CHOICES,
    CrsInputError,
    calculate,
    is_rules_choice,
    pinned_rules,
    rules_for_day,
)
from shared.rules.distribution import MAX_CRS
from shared.uow import SupportsNow
from shared.web.commands import IdempotentCommand
from shared.web.conditional import IfMatch, etag_header
from shared.web.openapi import links

router = APIRouter()
OWN_ONLY = frozenset({"candidate", "partner"})


async def _no_sync() -> dict[str, int]:
    return {}


@dataclass
class RankingContext:
    """What the routes need: the view, the jobs and the clock (set on `app.state.ranking`)."""

    view: PoolView
    jobs: RankingJobs
    clock: SupportsNow
    # Read-your-writes before a selection: every scoring committed before the call is in the view
    # (returns the scored stream's offsets it waited for; 503 when it cannot catch up in time).
    sync: Callable[[], Awaitable[dict[str, int]]] = field(default=_no_sync)


async def context(request: Request) -> RankingContext:
    ranking: RankingContext = request.app.state.ranking
    return ranking


Ctx = Annotated[RankingContext, Depends(context)]


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


def _answer(query: Callable[[], Any]) -> Response:
    """Run a pool query (its refusals are `shared.errors`, answered by the platform)."""
    return _json(query())


# --- calculator -------------------------------------------------------------------------------------


@router.post("/v1/crs/calculate", tags=["crs"], summary="CRS score of a set of factors (public)")
async def calculate_crs(
    body: CalculatorRequest,
    ranking: Ctx,
    rules_version: Annotated[
        str | None, Query(description="a modelled rules version; default: the active one")
    ] = None,
) -> CalculatorResponse:
    version = rules_version or ranking.view.rules_version
    if not is_rules_choice(version):
        known = ", ".join(RULES_CHOICES)
        raise queries.InvalidQuery("rules_version", f"unknown rules version {version!r}; use one of {known}")
    rules = rules_for_day(pinned_rules(version), ranking.clock.now().astimezone(UTC).date())
    try:
        result = calculate(body.to_factors(), rules)
    except CrsInputError as exc:
        raise Unprocessable(
            f"{len(exc.errors)} field(s) are invalid; correct them and send again.",
            errors=[(e["field"], e["message"]) for e in exc.errors],
        ) from exc
    return CalculatorResponse(**result.to_dict())


# --- pool -------------------------------------------------------------------------------------------


CANDIDATE_PATH: Final = "/v1/pool/candidates/{profile_id}"
CANDIDATE_ROLES: Final = ("candidate", "partner", "officer", "ops")
PROFILE_ID_MAX: Final = 64


@router.get(
    CANDIDATE_PATH,
    tags=["pool"],
    summary="A candidate's score, breakdown and rank (own profile for candidates and partners)",
    responses={200: {"model": CandidateStanding}},
)
async def candidate(
    profile_id: Annotated[str, Path(max_length=PROFILE_ID_MAX)],
    ranking: Ctx,
    principal: Annotated[Principal, Depends(require_roles(*CANDIDATE_ROLES))],
) -> Response:
    owner = principal.sub if principal.role in OWN_ONLY else None
    return _answer(lambda: queries.candidate(ranking.view, profile_id, owner))


_CANDIDATE_PREFIX: Final = CANDIDATE_PATH.removesuffix("{profile_id}")


class LeanCandidateReads:
    """ASGI: `GET /v1/pool/candidates/{id}` answered without FastAPI's routing and dependency
    resolution when everything goes right; every other request, and every GET candidate that would
    not be a 200 (no or bad token, another role, an id too long, not in the pool or not the caller's,
    the pool still loading), goes on to the app, which answers exactly as the route above does.

    The route is the service's hottest read: matching it among the app's routes and solving its
    dependency tree (path parameter, context, bearer scheme, principal, role) was ~60% of a GET's
    CPU, the query itself ~5%. The answer here is the route's own: the same token check
    (`shared.auth.verified_tokens`, under the app's secret), the same roles and owner rule, the same
    query and serialisation. It sits inside the platform's request middleware (correlation id,
    metrics, access log), which sees the route's template through `scope["route"]`.
    """

    def __init__(self, app: ASGIApp, ranking: RankingContext, route: APIRoute | None = None) -> None:
        self.app = app
        self.ranking = ranking
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            answer = self._answer(scope)
            if answer is not None:
                if self.route is not None:
                    scope["route"] = self.route
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        if not path.startswith(_CANDIDATE_PREFIX) or scope.get("root_path"):
            return None
        profile_id = path[len(_CANDIDATE_PREFIX) :]
        if not profile_id or "/" in profile_id or len(profile_id) > PROFILE_ID_MAX:
            return None
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")  # as fastapi.security.HTTPBearer reads it
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            return None
        secret = getattr(getattr(scope.get("app"), "state", None), "auth_secret", None)
        if secret is None:
            return None
        try:
            principal = verified_tokens.verify(credentials, secret_value(secret))
        except InvalidToken:
            return None
        if principal.role not in CANDIDATE_ROLES:
            return None
        owner = principal.sub if principal.role in OWN_ONLY else None
        try:
            found = queries.candidate(self.ranking.view, profile_id, owner)
        except (queries.NotInPool, queries.PoolNotLoaded):
            return None
        return _json(found)


def candidate_route(routes: Iterable[Any]) -> APIRoute | None:
    """The app's GET candidate route (its template labels the requests the lean path answers)."""
    return next((r for r in routes if isinstance(r, APIRoute) and r.endpoint is candidate), None)


@router.get(
    "/v1/pool/distribution",
    tags=["pool"],
    summary="The pool's CRS distribution in IRCC's published bins (public)",
    responses={200: {"model": Distribution}},
)
async def distribution(ranking: Ctx) -> Response:
    return _answer(lambda: queries.distribution(ranking.view, ranking.clock.now()))


@router.get(
    "/v1/pool/top",
    tags=["pool"],
    summary="The first n candidates, overall or of one program or category (ops)",
    responses={200: {"model": TopAnswer}},
    dependencies=[Depends(require_roles("ops"))],
)
async def top(
    ranking: Ctx,
    n: Annotated[int, Query(ge=1, le=100_000)] = 100,
    program: str | None = None,
    category: str | None = None,
) -> Response:
    return _answer(lambda: queries.top(ranking.view, n, program, category))


@router.get(
    "/v1/pool/search",
    tags=["pool"],
    summary="Candidates a province may nominate: filter by NOC, score, CLB and program (province)",
    responses={200: {"model": SearchPage}},
    dependencies=[Depends(require_roles("province", "ops"))],
)
async def search(
    ranking: Ctx,
    noc_code: Annotated[list[str] | None, Query(description="any of these NOC 2021 codes")] = None,
    min_crs: Annotated[int, Query(ge=0, le=MAX_CRS)] = 0,
    max_crs: Annotated[int, Query(ge=0, le=MAX_CRS)] = MAX_CRS,
    min_clb: Annotated[
        int | None, Query(ge=0, le=12, description="in the strongest official language")
    ] = None,
    program: Annotated[list[str] | None, Query(description="any of these programs")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_SEARCH_PAGE)] = 50,
) -> Response:
    filters = queries.SearchFilters(
        noc_codes=frozenset(noc_code or ()), min_crs=min_crs, max_crs=max_crs, min_clb=min_clb,
        programs=frozenset(program or ()),
    )  # fmt: skip
    return _answer(lambda: queries.search(ranking.view, filters, cursor, limit))


@router.post(
    "/v1/pool/selection",
    tags=["pool"],
    summary="The ordered top eligible candidates for a round, at one consistent moment (ops; draws)",
    responses={200: {"model": SelectionAnswer}},
    dependencies=[Depends(require_roles("ops"))],
)
async def selection(body: SelectionRequest, ranking: Ctx) -> Response:
    """Consistent: waits until this instance's view holds every scoring committed before the request
    (the outbox published up to then, the scored stream read up to its end after that), then answers
    from the view at one moment. `position` adds the scored stream's offsets it waited for."""
    queries.check_codes(body.program, body.category)
    synced = await ranking.sync()

    def answer() -> dict[str, Any]:
        found = queries.selection(ranking.view, body.program, body.category, body.size, body.exclude)
        found["position"] = {**found["position"], **synced}
        return found

    return _answer(answer)


# --- operations -------------------------------------------------------------------------------------


_RULES_LINKS: Final = links(
    ActivateRules=(
        "activate_rules",
        {"version": "$response.body#/active", "header.If-Match": "$response.header.ETag"},
    ),
)
Responses = dict[int | str, dict[str, Any]]
_412: Final[Responses] = {412: {"model": ProblemDetails, "description": "Stale If-Match: the rules changed."}}
_428: Final[Responses] = {428: {"model": ProblemDetails, "description": "If-Match missing."}}


@router.get(
    "/v1/admin/rules",
    tags=["operations"],
    summary="The active CRS rules version and the modelled ones (ops); its ETag is the If-Match to activate",
    dependencies=[Depends(require_roles("ops"))],
    responses={
        200: {
            "description": "The rules versions; `ETag` is the active-rules state's revision.",
            "links": _RULES_LINKS,
        }
    },
)
async def rules(ranking: Ctx, response: Response) -> RulesState:
    state = await ranking.jobs.rules_state()
    response.headers["ETag"] = etag_header(state.revision)
    versions = list(RULES_CHOICES)
    return RulesState(active=ranking.view.rules_version, revision=state.revision, versions=versions)


@router.post(
    "/v1/admin/rules/{version}/activate",
    tags=["operations"],
    summary="Score the pool with another rules version; emits Ranked for every changed candidate (ops)",
    operation_id="activate_rules",
    response_model=ActivationAnswer,
    responses={
        200: {
            "description": "Activated; `ETag` is the active-rules state's new revision.",
            "links": _RULES_LINKS,
        },
        **_412,
        **_428,
    },
)
async def activate(
    version: Annotated[str, Path(max_length=64)],
    expected: IfMatch,
    key: IdempotencyKey,
    principal: Annotated[Principal, Depends(require_roles("ops"))],
    ranking: Ctx,
    request: Request,
) -> Response:
    """Send `If-Match` with the ETag of `GET /v1/admin/rules` (412 when another activation came in
    between). With an `Idempotency-Key`, a retry gets the first answer again, recorded in the switch's
    transaction (its `rescored`/`changed` are null if that activation's rescoring did not finish)."""
    command = IdempotentCommand(
        "ranking.activate-rules", key, request, principal.sub, version_field="revision"
    )
    async with ranking.jobs.uow() as uow:
        replayed = await command.replay(uow.session)
    if replayed is not None:
        return replayed

    async def record(session: AsyncSession, switched: Activation) -> None:
        await command.record(session, _activation(switched))

    done = await ranking.jobs.activate(version, expected, record)
    answer = _activation(done)
    if command.key is not None:
        async with ranking.jobs.uow() as uow:
            await command.amend(uow.session, answer)
            await uow.commit()
    return command.respond(answer)


def _activation(done: Activation) -> dict[str, Any]:
    return ActivationAnswer(
        rules_version=done.rules_version, previous=done.previous, revision=done.revision,
        rescored=done.rescored, changed=done.changed,
    ).model_dump(mode="json")  # fmt: skip


@router.get(
    "/v1/admin/pool/fingerprint",
    tags=["operations"],
    summary="Digest of the pool's content, to compare with a rebuild (ops)",
    responses={200: {"model": Fingerprint}},
    dependencies=[Depends(require_roles("ops"))],
)
async def fingerprint(ranking: Ctx) -> Response:
    view = ranking.view

    def answer() -> dict[str, Any]:
        if not view.loaded:
            raise queries.PoolNotLoaded()
        pool = view.pool
        return {
            "fingerprint": pool.fingerprint(),
            "pool_size": len(pool),
            "rules_version": view.rules_version,
            "position": dict(view.positions),
        }

    return _answer(answer)
