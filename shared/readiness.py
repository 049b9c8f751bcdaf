"""Readiness: is the service able to do its job now? (`GET /readyz`)

A service is ready when every check of its runtime passes:

- `database`, `kafka`: PostgreSQL answers `SELECT 1`, a Kafka broker answers a metadata request;
- `consumers`: every consumer (and every other part of the runtime) is running; a part stopped for
  good (e.g. a consumer whose stored positions belong to another Kafka cluster) makes the service
  unready until an operator acts;
- whatever the service adds with `ServiceRuntime.add_readiness_check` (the ranking service: its pool
  is loaded into memory).

A check is a callable (sync or async) returning True (up), False (down) or a string (down, and why).
A check that raises or takes longer than `READINESS_TIMEOUT_S` counts as down.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

log = logging.getLogger(__name__)

CheckResult = bool | str
Check = Callable[[], Awaitable[CheckResult] | CheckResult]

READINESS_TIMEOUT_S: Final = 2.0
UNREACHABLE: Final = {"database": "the database", "kafka": "Kafka"}


async def run_check(name: str, check: Check, timeout_s: float = READINESS_TIMEOUT_S) -> CheckResult:
    """The check's verdict; False when it raises or times out."""
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, timeout_s)
        return result if isinstance(result, str) else bool(result)
    except Exception as exc:
        log.warning("readiness check %s failed: %r", name, exc)
        return False


def checks_of(runtime: Any) -> Mapping[str, Check]:
    """The runtime's checks (`ServiceRuntime.readiness_checks()`), or its database and Kafka probes."""
    readiness_checks = getattr(runtime, "readiness_checks", None)
    if readiness_checks is not None:
        return dict(readiness_checks())
    return {"database": runtime.database_ready, "kafka": runtime.kafka_ready}


async def evaluate(runtime: Any) -> tuple[dict[str, str], str | None]:
    """Every check as "up"/"down", and when something is down, a sentence saying what (else None)."""
    checks = checks_of(runtime)
    results = await asyncio.gather(*(run_check(name, check) for name, check in checks.items()))
    verdicts = dict(zip(checks, results, strict=True))
    states = {name: "up" if result is True else "down" for name, result in verdicts.items()}
    down = [name for name, state in states.items() if state == "down"]
    if not down:
        return states, None
    return states, _describe(down, verdicts)


def _describe(down: list[str], verdicts: Mapping[str, CheckResult]) -> str:
    sentences = []
    unreachable = [UNREACHABLE[name] for name in down if name in UNREACHABLE]
    if unreachable:
        names = " and ".join(unreachable)
        verb = "is" if len(unreachable) == 1 else "are"
        sentences.append(
            f"{names[:1].upper() + names[1:]} {verb} unreachable; the service will report ready "
            "once it reconnects."
        )
    for name in down:
        if name in UNREACHABLE:
            continue
        verdict = verdicts[name]
        sentences.append(verdict if isinstance(verdict, str) else f"The {name} check is not passing.")
    return " ".join(sentences)


__all__ = ["READINESS_TIMEOUT_S", "Check", "CheckResult", "checks_of", "evaluate", "run_check"]
