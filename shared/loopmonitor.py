"""How long the event loop was blocked: a timer that should fire every `interval_s`, and how late it ran.

Everything a service does (HTTP requests, consumers applying events, the relay) shares one event loop,
so CPU work that does not yield (applying a batch of events, scoring, a big JSON document) stalls
every request for its whole length. `LoopMonitor` is one of the runtime's parts: it sleeps
`interval_s`, and the time it wakes up late is the time the loop spent on something else without
yielding. A stall is seen to within `interval_s` (a blocking call that starts just after the timer
was armed shows up to `interval_s` shorter).

On a machine shared with other work, a late wake-up is also the time the process waited for a core.
So the monitor also reads its thread's CPU time at each tick: the CPU the loop's thread used between two
ticks (`busy`) is the service's own work, whatever the machine's load; a stall with little CPU in it was
the scheduler's.

`/metrics` serves (every series with the `service` label):

| series                                           | type    | labels                         |
|--------------------------------------------------|---------|--------------------------------|
| `ee_event_loop_longest_stall_seconds`            | gauge   | window (`10s`, `60s`, `process`) |
| `ee_event_loop_longest_busy_seconds`             | gauge   | window (`10s`, `60s`, `process`) |
| `ee_event_loop_stalls_total`                     | counter | over (`10ms`, `50ms`, `250ms`) |
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

from prometheus_client.core import Metric

from shared.metrics import counter, gauge

WINDOW_S: Final = 60.0
SHORT_WINDOW_S: Final = 10.0  # polled every few seconds, it gives the longest stall of a phase of a run
THRESHOLDS_S: Final = (0.010, 0.050, 0.250)
_KEEP_OVER_S: Final = 0.001  # stalls shorter than this are not kept for the window


class LoopMonitor:
    """`run()` until `stop()`; `longest(window_s)` and `metrics(service)` read what it saw."""

    name = "event-loop-monitor"

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.longest_ever = 0.0
        self.busiest_ever = 0.0
        self.ticks = 0
        self.over = dict.fromkeys(THRESHOLDS_S, 0)
        self._recent: deque[tuple[float, float, float]] = deque()  # (time seen, stall s, busy s)
        self._stopping = asyncio.Event()

    def record(self, stall_s: float, at: float, busy_s: float = 0.0) -> None:
        """One late wake-up of `stall_s` seen at monotonic time `at`, with `busy_s` of the loop
        thread's CPU time since the previous tick (the monitor's own bookkeeping)."""
        self.ticks += 1
        if stall_s > self.longest_ever:
            self.longest_ever = stall_s
        if busy_s > self.busiest_ever:
            self.busiest_ever = busy_s
        for threshold in THRESHOLDS_S:
            if stall_s > threshold:
                self.over[threshold] += 1
        if stall_s > _KEEP_OVER_S or busy_s > _KEEP_OVER_S:
            self._recent.append((at, stall_s, busy_s))
        while self._recent and self._recent[0][0] < at - WINDOW_S:
            self._recent.popleft()

    def longest(self, window_s: float = WINDOW_S, now: float | None = None) -> float:
        """The longest stall seen in the last `window_s` (at most WINDOW_S) seconds; 0 when none."""
        since = (time.monotonic() if now is None else now) - min(window_s, WINDOW_S)
        return max((stall for at, stall, _ in self._recent if at >= since), default=0.0)

    def busiest(self, window_s: float = WINDOW_S, now: float | None = None) -> float:
        """The most CPU the loop's thread used between two ticks in the last `window_s` seconds: the
        longest the service's own work kept the loop (the machine's load left out)."""
        since = (time.monotonic() if now is None else now) - min(window_s, WINDOW_S)
        return max((busy for at, _, busy in self._recent if at >= since), default=0.0)

    async def run(self) -> None:
        self._stopping.clear()
        cpu = time.thread_time()
        while not self._stopping.is_set():
            armed = time.monotonic()
            await asyncio.sleep(self.interval_s)
            woke, cpu_now = time.monotonic(), time.thread_time()
            self.record(max(0.0, woke - armed - self.interval_s), woke, cpu_now - cpu)
            cpu = cpu_now

    async def stop(self) -> None:
        self._stopping.set()

    async def metrics(self, service: str) -> list[Metric]:
        longest = gauge(
            "ee_event_loop_longest_stall_seconds",
            "Longest time the event loop ran something without yielding",
            ["window"],
        )
        longest.add_metric([service, f"{SHORT_WINDOW_S:g}s"], self.longest(SHORT_WINDOW_S))
        longest.add_metric([service, f"{WINDOW_S:g}s"], self.longest())
        longest.add_metric([service, "process"], self.longest_ever)
        busiest = gauge(
            "ee_event_loop_longest_busy_seconds",
            "Most CPU time the event loop's thread used between two ticks of the monitor",
            ["window"],
        )
        busiest.add_metric([service, f"{SHORT_WINDOW_S:g}s"], self.busiest(SHORT_WINDOW_S))
        busiest.add_metric([service, f"{WINDOW_S:g}s"], self.busiest())
        busiest.add_metric([service, "process"], self.busiest_ever)
        stalls = counter("ee_event_loop_stalls", "Event-loop stalls longer than a threshold", ["over"])
        for threshold, count in self.over.items():
            stalls.add_metric([service, f"{threshold * 1000:g}ms"], count)
        return [longest, busiest, stalls]
