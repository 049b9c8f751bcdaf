"""A restart resumes from the persisted projection and its stored consumer positions, not by replay:
over real Kafka and PostgreSQL, the restarted scorer answers the same pool at once and applies only
what was published after it stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ranking_factories import DOB_394, DOB_416, DOB_432, ProfileStream, document, invited, pid
from ranking_world import Service, World, open_world

from shared import testing

pytestmark = pytest.mark.infra

A, B, C, D = pid(1), pid(2), pid(3), pid(4)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world("rankrestart") as opened:
        yield opened


def _scorer(service: Service) -> Any:
    consumer = service.app.state.ranking_runner.consumer
    assert consumer is not None
    return consumer


async def _caught_up(service: Service) -> None:
    """Until the scorer holds its partitions and has applied everything on them."""
    await service.wait_assigned()

    async def no_lag() -> bool:
        lag = await _scorer(service).lag(timeout_s=5.0)
        return bool(lag) and not any(lag.values())

    await testing.wait_until(no_lag, timeout=30, message="the scorer still lags")


def _submitted(profile_id: str, born: Any) -> list[Any]:
    stream = ProfileStream(profile_id)
    return [stream.created(document(born)), stream.submitted(document(born))]


async def test_a_restart_loads_the_pool_and_resumes_at_the_stored_positions(world: World) -> None:
    await world.publish(*_submitted(A, DOB_394), *_submitted(B, DOB_416), *_submitted(C, DOB_432))
    await world.publish(invited(C, "ita-1"))
    async with world.service() as first:
        await first.wait(lambda view: len(view.pool) == 2 and C not in view.pool, "A and B, C invited")
        await _caught_up(first)
        assert _scorer(first).metrics.processed == 7  # 3 x (created, submitted) and the invitation
        before = first.view.pool.fingerprint()
        positions = _scorer(first).positions()

    async with world.service() as restarted:
        # The pool is there as soon as the service is loaded, read from its table, before any record.
        assert restarted.view.pool.fingerprint() == before
        await _caught_up(restarted)
        scorer = _scorer(restarted)
        assert scorer.positions() == positions  # where the first run stopped, not the log's start
        assert (scorer.metrics.processed, scorer.metrics.duplicates) == (0, 0)  # nothing read again
        assert restarted.view.pool.fingerprint() == before

        await world.publish(*_submitted(D, DOB_416))  # what comes after the restart is applied, once
        await restarted.wait(lambda view: D in view.pool, "D in the pool")
        await _caught_up(restarted)
        assert (scorer.metrics.processed, scorer.metrics.duplicates) == (2, 0)
        assert len(restarted.view.pool) == 3
