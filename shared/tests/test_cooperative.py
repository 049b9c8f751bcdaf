import asyncio
import time

from shared.cooperative import in_slices


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
