"""The write-capacity ladder's pure parts (`bench.writes`): when a rate counts as held, where the
ladder stops, and the table's rows. No timing is asserted: these check decisions on given numbers."""

from __future__ import annotations

import re

import pytest

from bench.run import Row, budget_rows
from bench.writes import Step, rows, run_ladder, wait_until_all_shown


def step(rate: float, *, accepted: float = 1.0, p99: float = 100.0, rejected: int = 0,
         not_visible: int = 0) -> Step:  # fmt: skip
    """A 10 s step at `rate` with `accepted` of the asked rate accepted and visible latencies up to `p99`."""
    count = int(rate * 10 * accepted)
    result = Step(rate, 10.0, sent=count + rejected, accepted=count, rejected=rejected)
    result.not_visible = not_visible
    result.visible_ms = [p99] * (count - not_visible)
    result.answered_ms = [p99 / 2] * count
    return result


def test_a_rate_is_held_only_when_all_is_accepted_fast_and_seen() -> None:
    assert step(200).held
    assert not step(200, p99=250.1).held
    assert step(200, p99=250.0).held
    assert not step(200, accepted=0.9).held  # below 95% of the rate
    assert not step(200, rejected=1).held
    assert not step(200, not_visible=1).held
    assert not Step(200, 10.0).held  # nothing came back


async def test_the_ladder_stops_at_the_first_rate_not_held() -> None:
    asked: list[float] = []

    async def at(rate: float) -> Step:
        asked.append(rate)
        return step(rate, p99=100.0 if rate <= 150 else 900.0)

    ladder = await run_ladder(at, [300, 50, 150, 100, 200])
    assert asked == [50, 100, 150, 200]  # ascending, and 300 never tried
    assert ladder["highest_rate_held"] == 150
    assert ladder["at_highest"]["rate_per_s"] == 150
    assert [s["held"] for s in ladder["steps"]] == [True, True, True, False]


async def test_a_ladder_holding_nothing_says_so() -> None:
    async def at(rate: float) -> Step:
        return step(rate, rejected=3)

    ladder = await run_ladder(at, [50, 100])
    assert ladder["highest_rate_held"] is None and len(ladder["steps"]) == 1
    first = rows({"profile": ladder})[0]
    assert first["measured"].startswith("none held") and first["meets"] is False


async def test_rows_give_the_highest_rate_against_200_and_its_p99() -> None:
    async def at(rate: float) -> Step:
        return step(rate, p99=120.0 if rate <= 250 else 400.0)

    ladder = await run_ladder(at, [100, 200, 250, 300])
    table = rows({"profile": ladder, "applications": None})
    held, at_best, applications = table
    assert held["value"] == 250 and held["meets"] is True and held["ratio_to_target"] == pytest.approx(1.25)
    assert "250/s" in held["measured"]
    assert at_best["value"] == pytest.approx(120.0) and at_best["meets"] is True
    assert applications["measured"] == "not measured" and applications["meets"] is None


def test_the_budget_table_carries_the_write_rows() -> None:
    table = budget_rows({"writes": {}})
    whats = [row.what for row in table if isinstance(row, Row)]
    assert any(w.startswith("profile PUT → Ranked: highest rate held") for w in whats)
    assert any(w.startswith("applications command → its event: highest rate held") for w in whats)


async def test_waiting_for_invitations_asks_until_every_one_is_shown() -> None:
    asked: list[str] = []
    late = {"i3": 2, "i40": 1}  # answers "not yet" this many times first

    async def shown(invitation_id: str) -> bool:
        asked.append(invitation_id)
        if late.get(invitation_id, 0) > 0:
            late[invitation_id] -= 1
            return False
        return True

    ids = [f"i{n}" for n in range(50)]
    await wait_until_all_shown(ids, shown, timeout_s=5, batch=8, pause_s=0)
    assert set(asked) == set(ids)
    assert asked.count("i3") == 3 and asked.count("i40") == 2
    assert len(asked) == 50 + 3


async def test_waiting_for_invitations_names_how_many_are_missing() -> None:
    async def shown(invitation_id: str) -> bool:
        return invitation_id != "i7"

    with pytest.raises(RuntimeError, match=re.escape("1 of 10 not shown within 0.05 s, e.g. i7")):
        await wait_until_all_shown([f"i{n}" for n in range(10)], shown, timeout_s=0.05, pause_s=0.01)
