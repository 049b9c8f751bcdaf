"""The ranking service's longest uninterrupted stretches of event-loop work while it applies updates.

    python -m bench.loop_stretches [--candidates 20000] [--rate 200] [--seconds 15] [--out FILE]

`ee_event_loop_longest_stall_seconds` (shared.loopmonitor) says how long the loop was held, not by
what. This runs `bench.ranking_updates`' setup (its own database, topics and ranking process: the
generated candidates' events written to the profile topic and applied), restarts ranking so that it
loads the pool from its table (and freezes it for the collector, as after `make bench`'s rebuild),
then writes `ProfileUpdated` at `--rate` for `--seconds` and times every callback the ranking
process's loop runs over that span by the loop thread's CPU time (so another process's load does not
lengthen it) and by wall time. Printed (and written to `--out`): how many callbacks took how long, the
longest ones with where their task resumed and where it next gave the loop back, the busiest turns of
the loop (the CPU of one turn, how many callbacks it ran and the longest of them), each collection of
the garbage collector over 1 ms, and the step's process CPU per update (`bench.ranking_updates`).

The monitor's stall is a whole turn: the loop runs every callback ready when the turn began before it
sees its timer. Under load a turn holds many requests' stretches, each short: at 200 PUT/s for 25-30 s,
in two runs, the profile service's ten busiest turns ran 11-32 callbacks of at most 2.5 ms each (8-21
ms in all), a queue rather than one piece of code holding the loop; in each run one of them held a
young collection instead (9 and 12.6 ms). The busiest turns tell the two apart. Since
`shared.web.admission` lets 4 requests be worked on at once, the busiest turns of the same probe took
7.8 and 8.6 ms (two runs; 23.3 and 27.1 ms without the limit).

Another service can be probed by hand (how the profile service's collections were found):

    deploy/local/services.sh start; kill "$(cat .local/run/profile.pid)"
    PYTHONPATH=.:services/profile python -m bench.loop_stretches serve \
        --app profile_service.main:app --port 8001 --out /tmp/profile-stretches.json &
    kill -USR2 <its pid>        # timing starts
    python -m bench.writes --profile-url http://127.0.0.1:8001 --prefix '' --rates 200 --step-s 30
    kill -USR1 <its pid>        # the summary is written

Ranking runs under the pure-Python asyncio loop here, not uvloop (its callbacks cannot be timed from
Python): the stretches are the service's own code between two awaits, the same under either loop; the
loop's own overhead is not the same. Loopback only; everything it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import heapq
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

BUCKETS_MS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
RANKING_APP: Final = "ranking_service.main:app"
KEEP: Final = 40  # the longest callbacks kept
KEEP_ITERATIONS: Final = 10  # the busiest loop iterations kept


def bucket(cpu_ms: float) -> str:
    """The histogram bucket of a callback's CPU time: the first bound it does not exceed, or "more"."""
    for bound in BUCKETS_MS:
        if cpu_ms <= bound:
            return f"<={bound:g}ms"
    return f">{BUCKETS_MS[-1]:g}ms"


class Stretches:
    """What the probe saw: every callback's CPU time by bucket, the `KEEP` longest, the collections."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.cpu_s = 0.0
        self.longest: list[tuple[float, float, str]] = []  # a heap: (cpu s, wall s, where)
        self.collections: list[tuple[float, int, int]] = []  # (wall ms, generation, collected)
        self.iterations = 0
        self.busiest: list[tuple[float, int, float]] = []  # a heap: (cpu s, callbacks, longest of them s)

    def add(self, cpu_s: float, wall_s: float, where: str | None = None) -> None:
        self.counts[bucket(cpu_s * 1000)] += 1
        self.cpu_s += cpu_s
        if len(self.longest) < KEEP:
            heapq.heappush(self.longest, (cpu_s, wall_s, where or "?"))
        elif cpu_s > self.longest[0][0]:
            heapq.heapreplace(self.longest, (cpu_s, wall_s, where or "?"))

    def add_iteration(self, cpu_s: float, callbacks: int, longest_s: float) -> None:
        """One turn of the loop: the CPU of everything it ran (its callbacks, one after the other, and
        the poll), how many callbacks, the longest of them."""
        self.iterations += 1
        if len(self.busiest) < KEEP_ITERATIONS:
            heapq.heappush(self.busiest, (cpu_s, callbacks, longest_s))
        elif cpu_s > self.busiest[0][0]:
            heapq.heapreplace(self.busiest, (cpu_s, callbacks, longest_s))

    def needs_where(self, cpu_s: float) -> bool:
        return len(self.longest) < KEEP or cpu_s > self.longest[0][0]

    def summary(self) -> dict[str, Any]:
        return {
            "callbacks": sum(self.counts.values()),
            "cpu_s": round(self.cpu_s, 3),
            "by_cpu": {
                name: self.counts[name]
                for name in [*map(bucket, BUCKETS_MS), bucket(1e9)]
                if self.counts[name]
            },
            "longest": [
                {"cpu_ms": round(c * 1000, 3), "wall_ms": round(w * 1000, 3), "where": where}
                for c, w, where in sorted(self.longest, reverse=True)
            ],
            "iterations": self.iterations,
            "busiest_iterations": [
                {
                    "cpu_ms": round(c * 1000, 3),
                    "callbacks": n,
                    "longest_callback_ms": round(longest * 1000, 3),
                }
                for c, n, longest in sorted(self.busiest, reverse=True)
            ],
            "collections_over_1ms": [
                {"wall_ms": ms, "generation": generation, "collected": collected}
                for ms, generation, collected in sorted(self.collections, reverse=True)
            ],
        }


# --- inside the ranking process ------------------------------------------------------------------


def _awaiting(callback: Any) -> str | None:
    """Where the task behind a loop callback is (its innermost coroutine frame), or None."""
    task = getattr(callback, "__self__", None)
    get_coro = getattr(task, "get_coro", None)
    if get_coro is None:
        return None
    coro, frame, depth = get_coro(), None, 0
    while coro is not None and depth < 64:
        depth += 1
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    if frame is None:
        return None
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}:{frame.f_code.co_name}"


def serve(port: int, out: Path, app: str = RANKING_APP) -> None:
    """Run `app` (ranking's unless told) on `port`, timing the loop's callbacks from SIGUSR2 on; the
    summary to `out` on SIGUSR1 and at exit."""
    import asyncio.base_events
    import asyncio.events

    import uvicorn

    seen: list[Stretches | None] = [None]
    run = asyncio.events.Handle._run
    run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]
    cpu, wall = time.thread_time, time.perf_counter
    turn_callbacks, turn_longest = [0], [0.0]  # in the current iteration: callbacks run, the longest (CPU s)

    def timed_iteration(loop: asyncio.base_events.BaseEventLoop) -> None:
        stretches = seen[0]
        if stretches is None:
            run_once(loop)
            return
        turn_callbacks[0], turn_longest[0] = 0, 0.0
        cpu0 = cpu()
        run_once(loop)
        stretches.add_iteration(cpu() - cpu0, turn_callbacks[0], turn_longest[0])

    def timed(handle: asyncio.events.Handle) -> None:
        stretches = seen[0]
        if stretches is None:
            run(handle)
            return
        callback = handle._callback  # type: ignore[attr-defined]
        resumed = _awaiting(callback)
        cpu0, wall0 = cpu(), wall()
        run(handle)
        spent = cpu() - cpu0
        turn_callbacks[0] += 1
        turn_longest[0] = max(turn_longest[0], spent)
        where = None
        if stretches.needs_where(spent):
            name = getattr(getattr(callback, "__self__", None), "get_name", lambda: repr(callback)[:80])()
            where = f"{name}: {resumed} -> {_awaiting(callback)}"
        stretches.add(spent, wall() - wall0, where)

    started = [0.0]

    def collected(phase: str, info: dict[str, int]) -> None:
        stretches = seen[0]
        if stretches is None:
            return
        if phase == "start":
            started[0] = wall()
        elif (ms := (wall() - started[0]) * 1000) > 1.0:
            stretches.collections.append((round(ms, 3), info["generation"], info["collected"]))

    def begin(*_: Any) -> None:
        seen[0] = Stretches()

    def dump(*_: Any) -> None:
        stretches, seen[0] = seen[0], None  # timing stops: the summary is the step's
        if stretches is not None:
            out.write_text(json.dumps(stretches.summary(), indent=1))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
    asyncio.base_events.BaseEventLoop._run_once = timed_iteration  # type: ignore[attr-defined]
    gc.callbacks.append(collected)
    signal.signal(signal.SIGUSR2, begin)
    signal.signal(signal.SIGUSR1, dump)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio")


# --- the driver ----------------------------------------------------------------------------------


def _written_since(path: Path, since: float) -> bool:
    return path.exists() and path.stat().st_mtime >= since


async def measure(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Set up, restart ranking under the probe, run the step; the probe's summary in `out`."""
    import httpx

    import shared.testing
    from bench import ranking_updates

    plain_spawn = shared.testing.spawn
    probe = [sys.executable, "-m", "bench.loop_stretches", "serve", "--port", str(args.port)]

    def probed(
        args: list[str], cwd: Path, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        # ranking, whatever command it was given
        return plain_spawn([*probe, "--out", str(out)], cwd, env=env, log=log)

    shared.testing.spawn = probed  # bench.ranking_updates imports it when it starts ranking
    bench = ranking_updates.RankingUpdatesBench(args)
    ranking_updates.RUN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        await bench._start()
        # Once more from the table: the pool loaded and frozen, as the services are after a rebuild.
        await asyncio.to_thread(shared.testing.stop_process, bench.process)
        roots = (str(ranking_updates.ROOT / root) for root in ranking_updates.RANKING_ROOTS)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(roots)}  # with the bench's prefix and suffix
        log = ranking_updates.RUN_DIR / "loop-stretches.log"
        bench.process = probed([], ranking_updates.ROOT, env=env, log=log)
        async with httpx.AsyncClient() as client:
            for _ in range(1200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{args.port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError("ranking did not get ready after its restart")
        idle = await bench._idle_cpu(2.0)
        os.kill(bench.process.pid, signal.SIGUSR2)
        step = await bench._step(args.rate, args.seconds, idle)
        asked = time.time() - 1
        os.kill(bench.process.pid, signal.SIGUSR1)
        for _ in range(50):
            await asyncio.sleep(0.1)
            if await asyncio.to_thread(_written_since, out, asked):
                break
        return step
    finally:
        shared.testing.spawn = plain_spawn
        await bench._cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", default="measure", choices=["measure", "serve"])
    parser.add_argument("--candidates", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--port", type=int, default=18393)
    parser.add_argument("--app", default=RANKING_APP, help="serve: the ASGI app to run and time")
    parser.add_argument("--out", default=".local/bench/loop-stretches.json")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.port, Path(args.out), args.app)
        return 0
    args.keep, args.py_spy, args.rates = False, None, [args.rate]
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    step = asyncio.run(measure(args, out))
    figures: dict[str, Any] = json.loads(out.read_text())
    figures["candidates"], figures["step"] = args.candidates, step
    out.write_text(json.dumps(figures, indent=1))
    print(json.dumps({"by_cpu": figures["by_cpu"], "callbacks": figures["callbacks"]}))
    print(f"cpu per update {step['cpu_us_per_update']} µs (less idle {step['cpu_us_per_update_less_idle']}), "
          f"mean batch {step['mean_batch']}, load {step['loadavg_before']}")  # fmt: skip
    print("longest callbacks (CPU ms, wall ms, task: resumed at -> gave the loop back at):")
    for entry in figures["longest"][:15]:
        print(f"  {entry['cpu_ms']:8.3f} {entry['wall_ms']:8.3f}  {entry['where']}")
    print(f"busiest loop iterations of {figures['iterations']} (CPU ms, callbacks run, longest of them ms):")
    for entry in figures["busiest_iterations"]:
        print(f"  {entry['cpu_ms']:8.3f} {entry['callbacks']:5d} {entry['longest_callback_ms']:8.3f}")
    print("collections over 1 ms:", figures["collections_over_1ms"][:8])
    return 0


if __name__ == "__main__":
    sys.exit(main())
