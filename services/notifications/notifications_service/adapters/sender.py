"""The webhook HTTP client: resolve and check the host, POST the signed body to the checked address,
no redirects, a total timeout, and at most `max_response_bytes` of the answer read.

The request goes to the address that was checked (the URL's host travels in `Host` and, for https,
as the TLS server name), so a DNS answer that changes between check and connect cannot send it
to a private address.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from notifications_service.domain.errors import UnsafeUrl
from notifications_service.domain.retry import Attempt, parse_retry_after
from notifications_service.domain.urls import IpAddress, WebhookUrl, check_addresses, parse_webhook_url

DNS_TIMEOUT_S = 2.0
DNS_CACHE_S = 30.0
USER_AGENT = "ee-notifications/1 (Standard Webhooks)"


class UrlGuard:
    """Parse a webhook URL and resolve its host to an address the rules accept (`domain.urls`)."""

    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback
        self._cache: dict[str, tuple[float, IpAddress]] = {}

    def parse(self, url: str) -> WebhookUrl:
        return parse_webhook_url(url, allow_loopback=self.allow_loopback)

    async def address(self, webhook: WebhookUrl) -> IpAddress:
        literal = webhook.literal_address
        if literal is not None:
            return literal
        cached = self._cache.get(webhook.host)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(webhook.host, webhook.port, type=socket.SOCK_STREAM), DNS_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            raise UnsafeUrl(f"{webhook.host} does not resolve: check the host name.") from None
        address = check_addresses(
            webhook, [str(info[4][0]) for info in infos], allow_loopback=self.allow_loopback
        )
        self._cache[webhook.host] = (time.monotonic() + DNS_CACHE_S, address)
        return address

    async def check(self, url: str) -> WebhookUrl:
        webhook = self.parse(url)
        await self.address(webhook)
        return webhook


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]
    body: bytes


class WebhookSender:
    def __init__(
        self, guard: UrlGuard, *, timeout_s: float, max_response_bytes: int, max_connections: int
    ) -> None:
        self.guard = guard
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, request: Request) -> Attempt:
        started = time.perf_counter()
        try:
            webhook = self.guard.parse(request.url)
            address = await self.guard.address(webhook)
        except UnsafeUrl as exc:
            return Attempt(None, f"refused: {exc.detail}", _ms(started))
        host = f"[{address}]" if address.version == 6 else str(address)
        default_port = 443 if webhook.scheme == "https" else 80
        authority = webhook.host if webhook.port == default_port else f"{webhook.host}:{webhook.port}"
        headers = {
            **request.headers,
            "Host": authority,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        extensions = {"sni_hostname": webhook.host} if webhook.scheme == "https" else {}
        target = httpx.Request(
            "POST",
            f"{webhook.scheme}://{host}:{webhook.port}{webhook.target}",
            headers=headers,
            content=request.body,
            extensions=extensions,
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.send(target, stream=True)
                try:
                    snippet = await self._read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return Attempt(None, f"timed out after {self.timeout_s:g} s", _ms(started))
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}"[:500], _ms(started))
        latency = _ms(started)
        code = response.status_code
        if 200 <= code < 300:
            return Attempt(code, None, latency)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        error = f"HTTP {code}"
        if 300 <= code < 400:
            error += " (redirects are not followed: subscribe the final URL)"
        text = snippet.decode("utf-8", "replace").strip()
        if text:
            error += f": {text[:300]}"
        return Attempt(code, error, latency, retry_after)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """At most `max_response_bytes` of the body; the rest is never read."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_response_bytes:
                break
        return b"".join(chunks)[: self.max_response_bytes]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
