"""Where a service's CPU goes while `make bench` loads it: py-spy sampling, summarised.

    summary = await profile_process(pid, seconds=20)     # None when py-spy is missing or failed
    summary["top_self"]        # [(function (file), share of the samples)], the hottest first
    summary["top_inclusive"]   # the same, counting each function with everything it called
    summary["top_project"]     # inclusive, the project's own functions only (shared/, *_service/)

`py-spy record --format raw` writes one line per distinct stack, `frame;frame;... count`. Frames of
the event loop's machinery (run_forever, _run_once, Handle._run) are in every stack and say nothing;
they are left out of the inclusive list. Pure parsing (`summarise`) is unit-tested.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

_LINE_NUMBER: Final = re.compile(r":\d+\)$")
_PROJECT: Final = re.compile(r"\((?:shared|bench|\w+_service)/")
_LONG_PATH: Final = re.compile(r"\(/\S*?/(?:site-packages|python3\.\d+)/")
_MACHINERY: Final = (
    "<module>", "run (", "main (", "Command.", "Context.invoke", "Server.run", "asyncio_run",
    "Runner.run", "BaseEventLoop.", "Handle._run", "_run_once",
)  # fmt: skip


def _frame(frame: str) -> str:
    """`function (path/to/file.py:123)` without the line number, and the path shortened."""
    frame = _LINE_NUMBER.sub(")", frame.strip())
    return _LONG_PATH.sub("(", frame)


def summarise(raw_lines: Iterable[str], top: int = 12) -> dict[str, Any]:
    """Samples, and the functions with the largest share of them, by own time and inclusive."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for line in raw_lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        own[frames[-1]] += samples
        for frame in set(frames):
            if not frame.startswith(_MACHINERY):
                inclusive[frame] += samples
            if _PROJECT.search(frame):
                project[frame] += samples
    if total == 0:
        return {"samples": 0, "top_self": [], "top_inclusive": [], "top_project": []}

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(n / total, 3)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "top_self": shares(own),
        "top_inclusive": shares(inclusive),
        "top_project": shares(project),
    }


def py_spy() -> str | None:
    """The py-spy of this environment (the dev extras install it), or one on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def profile_process(pid: int, seconds: float, rate: int = 100) -> dict[str, Any] | None:
    """Sample `pid` for `seconds` (non-blocking: the process is not paused) and summarise."""
    binary = py_spy()
    if binary is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        child = await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await child.communicate()
        if child.returncode != 0 or not out.exists():
            return {"error": f"py-spy exited {child.returncode}: {err.decode()[-500:]}"}
        return {"seconds": seconds, "rate_hz": rate, **summarise(out.read_text().splitlines())}
