"""Envelope encryption (shared.crypto) and the personal fields of a document (shared.personal)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from shared.crypto import (
    DEV_KEK,
    CryptoError,
    KeyRing,
    WrappedKey,
    generate_kek,
    kek_id,
    new_data_key,
    open_sealed,
    seal,
)
from shared.personal import REDACTED, merge_personal, open_document, redact, seal_document, split_personal
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE, ProfileDocument

IDENTITY = {
    "family_name": "Marker-FAMILY-7Q",
    "given_names": "Ada Given-Marker",  # long: a short name can turn up in random ciphertext by chance
    "email": "ada.marker@example.org",
    "uci": "1234567890",
    "passport_number": "PMARKER77",
}


def _document() -> dict[str, Any]:
    doc = copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)
    doc["identity"] = dict(IDENTITY)
    doc["job_offer"] = {
        "noc_code": "21231",
        "teer": 1,
        "employer": "Employer-MARKER Inc.",
        "full_time": True,
        "non_seasonal": True,
        "duration_months": None,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    }
    return ProfileDocument.model_validate(doc).model_dump(mode="json")


def test_seal_opens_only_with_its_key_and_owner() -> None:
    key = new_data_key()
    sealed = seal(key, b"secret", b"profile-1")
    assert b"secret" not in sealed.encode()
    assert open_sealed(key, sealed, b"profile-1") == b"secret"
    with pytest.raises(CryptoError):
        open_sealed(new_data_key(), sealed, b"profile-1")
    with pytest.raises(CryptoError):
        open_sealed(key, sealed, b"profile-2")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(CryptoError):
        open_sealed(key, tampered, b"profile-1")
    with pytest.raises(CryptoError):
        open_sealed(key, "not sealed", b"profile-1")


def test_seal_is_randomised() -> None:
    key = new_data_key()
    assert seal(key, b"same", b"a") != seal(key, b"same", b"a")


def test_keyring_wraps_with_the_current_kek_and_unwraps_with_older_ones() -> None:
    old, new = generate_kek(), generate_kek()
    data_key = new_data_key()
    wrapped_by_old = KeyRing.parse(old).wrap(data_key, "p1")
    rotated = KeyRing.parse(f"{new},{old}")
    assert rotated.current_id == kek_id(base64.b64decode(new)) != wrapped_by_old.kek_id
    assert rotated.unwrap(wrapped_by_old, "p1") == data_key
    rewrapped = rotated.rewrap(wrapped_by_old, "p1")
    assert rewrapped.kek_id == rotated.current_id and rewrapped.wrapped != wrapped_by_old.wrapped
    assert rotated.rewrap(rewrapped, "p1") is rewrapped
    # Once the old KEK is retired, only the re-wrapped key still opens.
    retired = KeyRing.parse(new)
    assert retired.unwrap(rewrapped, "p1") == data_key
    with pytest.raises(CryptoError, match="no longer lists"):
        retired.unwrap(wrapped_by_old, "p1")
    with pytest.raises(CryptoError):
        rotated.unwrap(rewrapped, "p2")  # bound to its profile


def test_keyring_rejects_bad_keys() -> None:
    with pytest.raises(ValueError):
        KeyRing.parse("")
    with pytest.raises(ValueError):
        KeyRing.parse(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError):
        KeyRing.parse("not base64 at all!")
    assert KeyRing.parse(DEV_KEK).current_id == KeyRing.parse(f" {DEV_KEK} ,").current_id


def test_wrapped_key_does_not_hold_the_data_key() -> None:
    data_key = new_data_key()
    wrapped = KeyRing.parse(generate_kek()).wrap(data_key, "p1")
    assert isinstance(wrapped, WrappedKey) and data_key not in wrapped.wrapped


def test_split_takes_out_identity_and_employer_and_the_rest_still_validates() -> None:
    document = _document()
    readable, personal = split_personal(document)
    assert personal == {"identity": IDENTITY, "job_offer.employer": "Employer-MARKER Inc."}
    assert readable["identity"] is None and readable["job_offer"]["employer"] == REDACTED
    assert document["identity"] == IDENTITY  # input untouched
    ProfileDocument.model_validate(readable)
    assert {k: v for k, v in readable.items() if k not in ("identity", "job_offer")} == {
        k: v for k, v in document.items() if k not in ("identity", "job_offer")
    }
    assert merge_personal(readable, personal) == document
    assert redact(readable) == readable


def test_sealed_document_round_trip_and_erasure() -> None:
    document, key = _document(), new_data_key()
    readable, sealed = seal_document(document, key, "p1")
    assert sealed is not None
    raw = orjson.dumps({"document": readable, "sealed": sealed})
    for marker in (b"MARKER", b"Ada Given-Marker", b"1234567890", b"example.org"):
        assert marker not in raw
    assert open_document(readable, sealed, key, "p1") == document
    assert open_document(readable, sealed, None, "p1") == readable  # key destroyed: redacted
    with pytest.raises(CryptoError):
        open_document(readable, sealed, key, "p2")


def test_document_without_personal_fields_seals_nothing() -> None:
    document = ProfileDocument.model_validate(PROFILE_DOCUMENT_EXAMPLE).model_dump(mode="json")
    readable, sealed = seal_document(document, new_data_key(), "p1")
    assert sealed is None and readable == document


def test_identity_is_validated() -> None:
    doc = copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)
    doc["identity"] = {**IDENTITY, "email": "no-at-sign"}
    with pytest.raises(ValueError):
        ProfileDocument.model_validate(doc)
    doc["identity"] = {**IDENTITY, "uci": "12"}
    with pytest.raises(ValueError):
        ProfileDocument.model_validate(doc)
