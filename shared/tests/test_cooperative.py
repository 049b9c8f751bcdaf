import asyncio
import time
from collections.abc import Awaitable, Callable

from shared.cooperative import Slices, in_slices


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_a_long_loop_lets_other_tasks_run_between_slices_and_keeps_every_item() -> None:
    ticks: list[int] = []

    async def other_task() -> None:
        while True:
            ticks.append(len(seen))
            await asyncio.sleep(0)

    seen: list[int] = []
    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    async for item in in_slices(range(20), slice_s=0.002):
        _spin(0.001)  # 20 ms of work in all: about ten slices
        seen.append(item)
    other.cancel()
    assert seen == list(range(20))
    ran_during = [n for n in ticks if 0 < n < 20]
    assert len(ran_during) >= 3, ticks


async def test_a_short_loop_does_not_yield() -> None:
    ticks: list[int] = []

    async def other_task() -> None:
        ticks.append(1)

    other = asyncio.create_task(other_task())
    items = [item async for item in in_slices(range(1000), slice_s=60)]
    assert items == list(range(1000)) and ticks == []
    await other


async def _turns_of_others_during(work: Callable[[], Awaitable[None]]) -> int:
    """How many turns another task had while `work` ran."""
    turns = 0
    running = True

    async def other_task() -> None:
        nonlocal turns
        while running:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = turns
    await work()
    running = False
    during = turns - before
    await other
    return during


async def test_a_spent_budget_gives_the_loop_back_at_each_pause_and_each_item() -> None:
    slices = Slices(slice_s=0)  # always spent: every pause yields
    seen: list[int] = []

    async def work() -> None:
        await slices.pause()
        async for item in slices.each(range(5)):
            seen.append(item)
        await slices.pause()

    assert await _turns_of_others_during(work) == 7
    assert seen == list(range(5)) and slices.yields == 7


async def test_a_budget_left_keeps_the_loop_and_give_back_yields_anyway() -> None:
    slices = Slices(slice_s=60)
    seen: list[int] = []

    async def work() -> None:
        await slices.pause()
        async for item in slices.each(range(1000)):
            seen.append(item)
        slices.restart()
        await slices.pause()

    assert await _turns_of_others_during(work) == 0
    assert seen == list(range(1000)) and slices.yields == 0

    async def give_back() -> None:
        await slices.give_back()

    assert await _turns_of_others_during(give_back) == 1
    assert slices.yields == 1
