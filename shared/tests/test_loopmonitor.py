"""The event-loop monitor: what it keeps, and that a loop blocked by a synchronous call is seen."""

from __future__ import annotations

import asyncio
import time

from prometheus_client.core import Metric

from shared.loopmonitor import WINDOW_S, LoopMonitor


def test_longest_is_the_longest_stall_of_the_window_and_counts_go_by_threshold() -> None:
    monitor = LoopMonitor()
    monitor.record(0.3, at=100.0)
    monitor.record(0.02, at=150.0)
    monitor.record(0.0005, at=155.0)  # too short to keep
    assert monitor.longest(now=155.0) == 0.3
    assert monitor.longest(now=100.0 + WINDOW_S + 1) == 0.02  # the 0.3 s one has left the window
    assert monitor.longest(window_s=1, now=155.0) == 0.0
    assert monitor.longest_ever == 0.3 and monitor.ticks == 3
    assert monitor.over == {0.010: 2, 0.050: 1, 0.250: 1}


def test_busy_is_the_cpu_of_the_loop_thread_between_ticks_apart_from_the_stall() -> None:
    monitor = LoopMonitor()
    monitor.record(0.3, at=100.0, busy_s=0.004)  # late, but hardly any CPU: the machine was busy
    monitor.record(0.02, at=101.0, busy_s=0.018)  # our own work
    assert monitor.longest(now=101.0) == 0.3
    assert monitor.busiest(now=101.0) == 0.018 and monitor.busiest_ever == 0.018
    assert monitor.busiest(window_s=0.5, now=101.0) == 0.018
    assert monitor.busiest(now=101.0 + WINDOW_S + 1) == 0.0


def _samples(metrics: list[Metric]) -> dict[tuple[str, str], float]:
    return {
        (s.name, next(v for k, v in s.labels.items() if k != "service")): s.value
        for m in metrics
        for s in m.samples
    }


async def _ticks(monitor: LoopMonitor, at_least: int) -> None:
    for _ in range(2_000):  # bounded: the monitor ticks every few milliseconds
        if monitor.ticks >= at_least:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the monitor never reached {at_least} ticks ({monitor.ticks})")


async def test_a_synchronous_block_of_the_loop_is_seen_and_served_as_metrics() -> None:
    monitor = LoopMonitor(interval_s=0.005)
    task = asyncio.create_task(monitor.run())
    try:
        await _ticks(monitor, 3)
        spin_until = time.thread_time() + 0.2  # CPU work that never yields: what it does to the loop
        while time.thread_time() < spin_until:
            pass
        await _ticks(monitor, monitor.ticks + 1)
    finally:
        await monitor.stop()
        await task
    # Seen to within the interval: the block was 200 ms, so at least 195 ms of it.
    assert monitor.longest() >= 0.195 and monitor.longest_ever >= 0.195
    samples = _samples(await monitor.metrics("test"))
    assert samples[("ee_event_loop_longest_stall_seconds", "60s")] >= 0.195
    assert samples[("ee_event_loop_longest_stall_seconds", "10s")] >= 0.195
    # The block was CPU (a busy wait, not a sleep): the loop thread's own time shows it too.
    assert samples[("ee_event_loop_longest_busy_seconds", "10s")] >= 0.15
    assert samples[("ee_event_loop_stalls_total", "50ms")] >= 1
