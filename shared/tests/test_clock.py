"""The adjustable clock and the periodic scheduler (pure asyncio, nothing external)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import context
from shared.clock import Clock
from shared.scheduler import Periodic

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_system_clock_is_aware_utc() -> None:
    clock = Clock()
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs((now - datetime.now(UTC)).total_seconds()) < 1
    assert clock.offset == timedelta(0)


def test_offset_moves_now() -> None:
    clock = Clock.frozen(T0)
    assert clock.now() == T0
    clock.set_offset(timedelta(days=60))
    assert clock.now() == T0 + timedelta(days=60)
    assert clock.offset == timedelta(days=60)
    clock.advance(timedelta(hours=1))
    assert clock.now() == T0 + timedelta(days=60, hours=1)
    clock.reset()
    assert clock.now() == T0


def test_set_now_converts_to_utc_and_rejects_naive() -> None:
    clock = Clock.frozen(T0)
    target = datetime(2025, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=-4)))
    clock.set_now(target)
    assert clock.now() == target
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.today().isoformat() == "2025-06-01"
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set_now(datetime(2025, 6, 1))


def test_generation_counts_changes() -> None:
    clock = Clock.frozen(T0)
    g = clock.generation
    clock.set_offset(timedelta(seconds=1))
    clock.set_offset(timedelta(seconds=1))
    assert clock.generation == g + 2


async def test_wait_for_change_times_out_without_a_change() -> None:
    assert await Clock().wait_for_change(0.02) is False


async def test_wait_for_change_wakes_on_change() -> None:
    clock = Clock.frozen(T0)
    waiter = asyncio.create_task(clock.wait_for_change(5))
    await asyncio.sleep(0.01)
    clock.set_offset(timedelta(days=1))
    assert await asyncio.wait_for(waiter, 1) is True


async def test_wait_for_change_since_sees_an_earlier_change() -> None:
    clock = Clock.frozen(T0)
    seen = clock.generation
    clock.advance(timedelta(minutes=1))
    assert await asyncio.wait_for(clock.wait_for_change(5, since=seen), 1) is True
    assert await clock.wait_for_change(0.01, since=clock.generation) is False


async def test_wait_for_change_wakes_from_another_thread() -> None:
    clock = Clock.frozen(T0)
    waiter = asyncio.create_task(clock.wait_for_change(5))
    await asyncio.sleep(0.01)
    thread = threading.Thread(target=clock.advance, args=(timedelta(days=2),))
    thread.start()
    assert await asyncio.wait_for(waiter, 1) is True
    thread.join()


async def test_periodic_runs_on_interval() -> None:
    clock = Clock.frozen(T0)
    runs: list[datetime] = []

    async def job() -> None:
        runs.append(clock.now())

    periodic = Periodic("interval", clock, 0.02, job)
    await periodic.start()
    await asyncio.sleep(0.15)
    await periodic.stop()
    assert len(runs) >= 3
    assert not periodic.running


async def test_periodic_wakes_at_once_when_the_clock_moves() -> None:
    clock = Clock.frozen(T0)
    seen: list[datetime] = []
    ran = asyncio.Event()

    def job() -> None:  # a plain function works too
        seen.append(clock.now())
        ran.set()

    periodic = Periodic("deadlines", clock, 3600.0, job)
    await periodic.start()
    await asyncio.wait_for(ran.wait(), 1)  # the first run happens at start
    ran.clear()
    clock.set_offset(timedelta(days=60))
    await asyncio.wait_for(ran.wait(), 1)  # not an hour later
    await periodic.stop()
    assert seen == [T0, T0 + timedelta(days=60)]


async def test_periodic_survives_a_failing_job() -> None:
    clock = Clock.frozen(T0)
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError("database blip")

    periodic = Periodic("flaky", clock, 0.01, flaky)
    await periodic.start()
    for _ in range(100):
        if calls >= 4:
            break
        await asyncio.sleep(0.01)
    await periodic.stop()
    assert calls >= 4
    assert periodic.failures == 2
    assert periodic.last_error is None  # the latest run succeeded


async def test_periodic_change_during_a_run_is_not_lost() -> None:
    clock = Clock.frozen(T0)
    calls = 0
    second = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            clock.advance(timedelta(days=1))  # moves while the job is running
        else:
            second.set()

    periodic = Periodic("race", clock, 3600.0, job)
    await periodic.start()
    await asyncio.wait_for(second.wait(), 1)
    await periodic.stop()


async def test_periodic_stop_cancels_a_stuck_job() -> None:
    clock = Clock.frozen(T0)
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.sleep(3600)

    periodic = Periodic("stuck", clock, 1.0, stuck)
    await periodic.start()
    await asyncio.wait_for(started.wait(), 1)
    await asyncio.wait_for(periodic.stop(grace_s=0.05), 1)
    assert not periodic.running


async def test_periodic_runs_carry_their_own_correlation_id() -> None:
    clock = Clock.frozen(T0)
    seen: list[str | None] = []
    done = asyncio.Event()

    def job() -> None:
        seen.append(context.correlation_id.get())
        if len(seen) == 2:
            done.set()

    periodic = Periodic("ids", clock, 0.01, job)
    await periodic.start()
    await asyncio.wait_for(done.wait(), 1)
    await periodic.stop()
    assert all(seen) and seen[0] != seen[1]
    assert context.correlation_id.get() is None


def test_periodic_rejects_a_non_positive_interval() -> None:
    with pytest.raises(ValueError):
        Periodic("bad", Clock(), 0, lambda: None)
