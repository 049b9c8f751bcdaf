"""The HTTP side of a delivery against a real receiver process on loopback: redirects are not
followed, a slow receiver times out, an answer's body is read only up to the cap, `Retry-After` is
read, and a private address is refused before any connection is made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from notifications_harness import Receiver

from notifications_service.adapters.secrets import Signer, new_secret
from notifications_service.adapters.sender import Request, UrlGuard, WebhookSender
from notifications_service.domain.retry import Verdict, verdict_of

pytestmark = pytest.mark.infra
SECRET = new_secret()
BODY = b'{"specversion":"1.0","id":"e-1","type":"ee.draws.Invited.v1","data":{}}'


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    sender = WebhookSender(
        UrlGuard(allow_loopback=True), timeout_s=0.5, max_response_bytes=1024, max_connections=4
    )
    yield sender
    await sender.close()


def _request(url: str) -> Request:
    return Request(url, Signer().headers("msg_test", BODY.decode(), [SECRET]), BODY)


async def _attempt(sender: WebhookSender, tmp_path: Path, status: int, **options: object):  # type: ignore[no-untyped-def]
    rcv = Receiver(tmp_path, {"/h": SECRET}, status=status, **options)  # type: ignore[arg-type]
    await rcv.start()
    try:
        return await sender.send(_request(rcv.url("/h"))), rcv.records()
    finally:
        await rcv.stop()


async def test_a_signed_delivery_is_verified_and_delivered(sender: WebhookSender, tmp_path: Path) -> None:
    attempt, records = await _attempt(sender, tmp_path, 204)
    assert verdict_of(attempt) is Verdict.DELIVERED and attempt.latency_ms > 0
    assert records[0]["webhook_id"] == "msg_test" and "error" not in records[0]


async def test_redirects_are_not_followed(sender: WebhookSender, tmp_path: Path) -> None:
    attempt, _ = await _attempt(sender, tmp_path, 302, extra=["--header", "Location: http://10.0.0.1/"])
    assert attempt.status_code == 302 and verdict_of(attempt) is Verdict.FAILED
    assert attempt.error is not None and "redirects are not followed" in attempt.error


async def test_a_slow_receiver_times_out(sender: WebhookSender, tmp_path: Path) -> None:
    attempt, _ = await _attempt(sender, tmp_path, 204, delay_ms=2000)
    assert attempt.status_code is None and verdict_of(attempt) is Verdict.RETRY
    assert attempt.error == "timed out after 0.5 s" and attempt.latency_ms < 2000


async def test_a_large_answer_is_read_only_up_to_the_cap(sender: WebhookSender, tmp_path: Path) -> None:
    attempt, _ = await _attempt(sender, tmp_path, 503, extra=["--body-bytes", "5000000"])
    assert attempt.status_code == 503 and verdict_of(attempt) is Verdict.RETRY
    assert attempt.error is not None and len(attempt.error) < 400


async def test_retry_after_is_read(sender: WebhookSender, tmp_path: Path) -> None:
    attempt, _ = await _attempt(sender, tmp_path, 429, extra=["--header", "Retry-After: 7"])
    assert attempt.status_code == 429 and attempt.retry_after_s == 7.0


async def test_a_private_address_is_refused_without_connecting(sender: WebhookSender) -> None:
    for url in ("https://10.0.0.1/h", "http://169.254.169.254/latest", "https://[fd00:ec2::254]/"):
        attempt = await sender.send(_request(url))
        assert attempt.status_code is None and attempt.error is not None
        assert attempt.error.startswith("refused:") and attempt.latency_ms < 100
