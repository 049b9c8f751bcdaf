"""Application errors: each names its HTTP status and says what the caller can do about it."""

from __future__ import annotations


class DrawsError(Exception):
    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class RoundNotFound(DrawsError):
    status = 404
    title = "Round not found"


class IdempotencyKeyReused(DrawsError):
    status = 422
    title = "Idempotency-Key reused"


class RoundRejected(DrawsError):
    status = 422
    title = "Round cannot be held"


class RankingUnavailable(DrawsError):
    status = 503
    title = "Ranking service unavailable"
