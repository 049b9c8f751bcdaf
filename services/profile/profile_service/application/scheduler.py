"""The scheduled review: profiles whose 12 months ran out expire (ProfileExpired); in-pool profiles whose
language test or ECA stopped counting, and so are eligible for nothing, leave the pool
(ProfileRemovedFromPool); profiles that left for good more than the retention ago are erased
(PersonalDataErased, docs/PRIVACY.md). Runs every interval and at once when the clock moves
(`shared.scheduler`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from profile_service.application.handlers import erase_profile
from profile_service.application.ports import UnitOfWork, UowFactory
from shared.eventstore import ConcurrencyError

log = logging.getLogger(__name__)


async def review_due(uow_factory: UowFactory, batch_size: int = 200) -> int:
    """Review every profile due at the clock's now, one transaction per batch; returns events recorded."""
    recorded, after = 0, ""
    while True:
        async with uow_factory() as uow:
            now = uow.clock.now()
            ids = await uow.profiles.due(now, batch_size, after)
            if not ids:
                return recorded
            for profile_id in ids:
                recorded += await _review(uow, profile_id)
            await uow.commit()
        after = ids[-1]


async def _review(uow: UnitOfWork, profile_id: str) -> int:
    profile = await uow.profiles.get(profile_id)
    if profile is None:
        return 0
    events = profile.review(uow.clock.now())
    if not events:
        await uow.profiles.reschedule(profile)
        return 0
    try:
        await uow.profiles.save(profile)
    except ConcurrencyError:
        # A command changed the profile meanwhile (the append ran in a savepoint: nothing written);
        # it is still due, so the next run reviews its new state.
        log.info("profile %s changed during its review; reviewing it next run", profile_id)
        return 0
    return len(events)


async def erase_due(uow_factory: UowFactory, retention: timedelta, batch_size: int = 200) -> int:
    """Erase the personal data of every profile that left for good more than `retention` ago
    (docs/PRIVACY.md), one transaction per batch; returns how many were erased."""
    erased = 0
    while True:
        async with uow_factory() as uow:
            ids = await uow.profiles.erasable(uow.clock.now() - retention, batch_size)
            if not ids:
                return erased
            for profile_id in ids:
                await erase_profile(uow, profile_id, retention, ordered=False)
            await uow.commit()
        erased += len(ids)
