"""The services over HTTP: the only way the console reads anything (never their databases)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from shared.problem import Problem


class Upstream:
    """Calls the services with the signed-in person's token, so each service checks and logs who asks."""

    def __init__(self, client: httpx.AsyncClient, urls: Mapping[str, str]) -> None:
        self.client = client
        self.urls = dict(urls)

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The service's answer, whatever its status; a 503 problem when it cannot be reached."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        try:
            return await self.client.request(
                method, self.urls[service] + path, json=json, params=params, headers=all_headers
            )
        except httpx.HTTPError as exc:
            raise Problem(
                503,
                "Service unreachable",
                f"The {service} service at {self.urls[service]} did not answer ({type(exc).__name__}); "
                "check that it runs (`make status`) and try again.",
                headers={"Retry-After": "5"},
            ) from None

    async def json(
        self, service: str, path: str, *, token: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """A GET's JSON body; the service's own problem passed on when it answers 4xx/5xx."""
        return answer(service, await self.call(service, "GET", path, token=token, params=params))

    async def probe(self, service: str, path: str) -> httpx.Response | None:
        """A public probe (`/readyz`, `/metrics`): the answer, or None when nothing answers."""
        try:
            return await self.client.get(self.urls[service] + path)
        except httpx.HTTPError:
            return None


def answer(service: str, response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; a problem carrying the service's own status and detail otherwise."""
    if response.is_success:
        return response.json()
    detail = f"The {service} service answered {response.status_code}."
    title = "Upstream error"
    extensions: dict[str, Any] = {"service": service}
    errors = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = str(body.get("detail") or detail)
        title = str(body.get("title") or title)
        if isinstance(body.get("errors"), list):
            errors = [
                {"field": str(e.get("field")), "message": str(e.get("message"))} for e in body["errors"]
            ]
    status = response.status_code if 400 <= response.status_code < 600 else 502
    headers = {"Retry-After": response.headers["Retry-After"]} if "Retry-After" in response.headers else None
    raise Problem(status, title, detail, headers=headers, errors=errors, extensions=extensions)
