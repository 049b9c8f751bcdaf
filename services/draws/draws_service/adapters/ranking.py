"""HTTP client for the ranking service's selection: `POST {ranking_url}/v1/pool/selection`."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import httpx
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from draws_service.application.errors import RankingUnavailable
from draws_service.application.ports import PoolSelection
from draws_service.domain import Candidate
from shared.auth import mint_token

SELECTION_PATH = "/v1/pool/selection"
TOKEN_TTL_S = 3600


class _Candidate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    profile_id: str
    owner: str
    crs: int
    submitted_at: AwareDatetime
    programs: list[str]
    categories: list[str] = []
    citizenship: str = ""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    position: dict[str, Any]
    pool_size: int
    eligible_count: int
    candidates: list[_Candidate]


class OpsToken:
    """An ops bearer token for service-to-service calls, re-minted before it expires."""

    def __init__(self, secret: str, sub: str = "svc-draws", ttl_s: int = TOKEN_TTL_S) -> None:
        self._secret, self._sub, self._ttl = secret, sub, ttl_s
        self._token, self._renew_at = "", 0.0

    def __call__(self) -> str:
        if time.monotonic() >= self._renew_at:
            self._token = mint_token(self._secret, self._sub, "ops", ttl_seconds=self._ttl)
            self._renew_at = time.monotonic() + self._ttl / 2
        return self._token


class HttpRanking:
    """`Ranking` over HTTP. The client is owned by the caller (base URL set on it or not)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: Callable[[], str]) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + SELECTION_PATH
        self._token = token

    async def select(
        self, *, program: str | None, category: str | None, size: int, exclude: Collection[str]
    ) -> PoolSelection:
        body = {"program": program, "category": category, "size": size, "exclude": list(exclude)}
        response = await self._post(orjson.dumps(body))
        return _parse(response, self._url)

    async def _post(self, body: bytes) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}", "Content-Type": "application/json"}
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RankingUnavailable(
                f"the ranking service at {self._url} did not answer ({type(exc).__name__}: {exc}); "
                "check that it runs and that EE_DRAWS_RANKING_URL points at it, then retry"
            ) from exc
        if response.status_code != 200:
            raise RankingUnavailable(
                f"the ranking service answered {response.status_code} to the selection "
                f"({_detail(response)}); retry once it is healthy"
            )
        return response


def _parse(response: httpx.Response, url: str) -> PoolSelection:
    try:
        answer = _Answer.model_validate_json(response.content)
    except ValidationError as exc:
        raise RankingUnavailable(
            f"the ranking service at {url} sent a selection this service cannot read "
            f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']}); "
            "the two services' versions may differ"
        ) from exc
    return PoolSelection(answer.position, answer.pool_size, answer.eligible_count, _candidates(answer))


def _candidates(answer: _Answer) -> list[Candidate]:
    return [
        Candidate(
            profile_id=c.profile_id,
            owner=c.owner,
            crs=c.crs,
            submitted_at=c.submitted_at,
            programs=frozenset(c.programs),
            categories=frozenset(c.categories),
            citizenship=c.citizenship,
        )
        for c in answer.candidates
    ]


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:300]
    return str(body)[:200]
