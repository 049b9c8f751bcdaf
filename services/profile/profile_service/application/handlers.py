"""Command handlers: each runs inside the caller's unit of work, which commits (or not) afterwards.

Candidates and partners act on the profiles they own (`owner` is the token's `sub`); anything else is
"not found", so that profile ids do not leak. Provinces act on profiles in the pool.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from profile_service.application.errors import InvalidDocument, ProfileNotFound, StaleVersion
from profile_service.application.ports import UnitOfWork
from profile_service.domain import rules
from profile_service.domain.errors import NominationNotFound
from profile_service.domain.profile import Profile, Status
from shared.eventstore import ConcurrencyError
from shared.rules.document import ProfileDocument, validate_document


def check_document(document: ProfileDocument, today: date) -> None:
    """The checks pydantic cannot make (dates after today, fields that contradict)."""
    errors = validate_document(document, today)
    if errors:
        raise InvalidDocument(errors)


def _dumped(document: ProfileDocument) -> dict[str, Any]:
    """The request's document as the JSON dict the domain and the events hold; the rules are told it
    is `document`, already validated (the eligibility and the answer would otherwise parse it again)."""
    dumped = document.model_dump(mode="json")
    rules.remember(dumped, document)
    return dumped


async def load_owned(uow: UnitOfWork, profile_id: str, owner: str) -> Profile:
    profile = await uow.profiles.get(profile_id)
    if profile is None or profile.owner != owner or profile.erased_at is not None:
        raise ProfileNotFound(profile_id)
    return profile


async def create_profile(uow: UnitOfWork, owner: str, document: ProfileDocument) -> Profile:
    now = uow.clock.now()
    check_document(document, now.date())
    profile = Profile.create(str(uuid.uuid4()), owner, _dumped(document), now)
    await uow.profiles.save(profile)
    return profile


async def update_profile(
    uow: UnitOfWork, profile_id: str, owner: str, expected_version: int, document: ProfileDocument
) -> Profile:
    now = uow.clock.now()

    def update(profile: Profile) -> None:
        check_document(document, now.date())
        profile.update(_dumped(document), now)

    return await _change_owned(uow, profile_id, owner, expected_version, update)


async def submit_profile(
    uow: UnitOfWork, profile_id: str, owner: str, expected_version: int | None
) -> Profile:
    return await _change_owned(
        uow, profile_id, owner, expected_version, lambda profile: profile.submit(uow.clock.now())
    )


async def withdraw_profile(
    uow: UnitOfWork, profile_id: str, owner: str, expected_version: int | None
) -> Profile:
    return await _change_owned(
        uow, profile_id, owner, expected_version, lambda profile: profile.withdraw(uow.clock.now())
    )


async def _change_owned(
    uow: UnitOfWork,
    profile_id: str,
    owner: str,
    expected_version: int | None,
    change: Callable[[Profile], object],
) -> Profile:
    """The owner's change to their profile: load it, check `If-Match`, `change` it, save it."""
    profile = await load_owned(uow, profile_id, owner)
    _check_version(profile, expected_version)
    change(profile)
    await _save(uow, profile, expected_version)
    return profile


async def load_for_staff(uow: UnitOfWork, profile_id: str) -> Profile:
    """Any profile not erased, for officers and ops."""
    profile = await uow.profiles.get(profile_id)
    if profile is None or profile.erased_at is not None:
        raise ProfileNotFound(profile_id)
    return profile


async def erase_profile(
    uow: UnitOfWork, profile_id: str, retention: timedelta, *, ordered: bool, expected: int | None = None
) -> Profile:
    """Erase the person's data (docs/PRIVACY.md): PersonalDataErased recorded and published, the data
    key destroyed, the query row, snapshots and stored responses dropped. Idempotent: a profile
    already erased answers as it is (nothing is written, so `expected` is not held against it); else
    `expected` (If-Match) must be its version."""
    profile = await uow.profiles.get(profile_id)
    if profile is None:
        raise ProfileNotFound(profile_id)
    if profile.erased_at is None:
        _check_version(profile, expected)
    if profile.erase(uow.clock.now(), retention=retention, ordered=ordered):
        await _save(uow, profile, expected)
        await uow.profiles.forget(profile)
    return profile


async def export_profile(uow: UnitOfWork, profile_id: str, owner: str) -> dict[str, Any]:
    """Everything the service holds about the person, decrypted, as one JSON-ready document."""
    profile = await load_owned(uow, profile_id, owner)
    key_created = await uow.profiles.data_key_created_at(profile_id)
    return {
        "profile_id": profile.profile_id,
        "owner": profile.owner,
        "exported_at": uow.clock.now().isoformat(),
        "status": profile.status.value,
        "document": profile.document,
        "history": await uow.profiles.history(profile_id),
        "encryption": {
            "personal_fields_sealed": key_created is not None,
            "data_key_created_at": None if key_created is None else key_created.isoformat(),
        },
    }


async def load_for_province(uow: UnitOfWork, profile_id: str) -> Profile:
    """A profile a province may see: one that has been submitted (drafts are nobody's business)."""
    profile = await uow.profiles.get(profile_id)
    if profile is None or profile.status is Status.DRAFT or profile.erased_at is not None:
        raise ProfileNotFound(profile_id)
    return profile


async def nominate(uow: UnitOfWork, province: str, profile_id: str) -> Profile:
    profile = await load_for_province(uow, profile_id)
    profile.nominate(province, uow.clock.now())
    await uow.profiles.save(profile)
    return profile


async def load_nomination(uow: UnitOfWork, province: str, profile_id: str) -> Profile:
    """A profile the province holds an active nomination of (another province's: not found)."""
    profile = await load_for_province(uow, profile_id)
    if profile.nomination is None or profile.nomination.province != province:
        raise NominationNotFound(f"{province} holds no active nomination of profile {profile_id}.")
    return profile


async def withdraw_nomination(
    uow: UnitOfWork, province: str, profile_id: str, expected: int | None = None
) -> Profile:
    """`expected` (If-Match) is the version of the nominated profile the province last read."""
    profile = await load_nomination(uow, province, profile_id)
    _check_version(profile, expected)
    profile.withdraw_nomination(province, uow.clock.now())
    await _save(uow, profile, expected)
    return profile


def _check_version(profile: Profile, expected: int | None) -> None:
    if expected is not None and expected != profile.version:
        raise StaleVersion(expected, profile.version, what="profile")


async def _save(uow: UnitOfWork, profile: Profile, expected: int | None) -> None:
    """Save; a concurrent writer that won the race makes an If-Match request stale (412)."""
    try:
        await uow.profiles.save(profile)
    except ConcurrencyError as exc:
        if expected is None:
            raise
        current = exc.actual_version or await uow.profiles.current_version(profile.profile_id)
        raise StaleVersion(expected, current, what="profile") from exc
