"""Refusals of the draws service, in the platform's hierarchy (`shared.errors`)."""

from __future__ import annotations

from shared.errors import NotFound, Unavailable, Unprocessable

__all__ = ["IdempotencyKeyReused", "RankingUnavailable", "RoundNotFound", "RoundRejected"]


class RoundNotFound(NotFound):
    title = "Round not found"


class IdempotencyKeyReused(Unprocessable):
    title = "Idempotency-Key reused"


class RoundRejected(Unprocessable):
    title = "Round cannot be held"


class RankingUnavailable(Unavailable):
    title = "Ranking service unavailable"
