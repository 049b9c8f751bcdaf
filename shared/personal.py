"""Which fields of a profile document are personal, and how they travel sealed (docs/PRIVACY.md).

Pure. A document going into an event is split in two: the *readable* document, where every personal
field is replaced (the identity block by null, a text by `REDACTED`) and which still validates as a
profile document v1, so every service scores it as before; and the personal fields, sealed together
under the candidate's data key (`shared.crypto`) into one string the event carries beside it. Opening
needs the key; once the key is destroyed (erasure) the readable document is all that is left.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from shared.crypto import open_sealed, seal

REDACTED: Final = "[redacted]"

PERSONAL_FIELDS: Final[tuple[tuple[str, ...], ...]] = (
    ("identity",),  # family name, given names, email, UCI, passport number
    ("job_offer", "employer"),  # names the person's employer
)
"""Dotted paths in the profile document v1 whose values identify the person. Everything else is a
fact scoring, eligibility and draws need (dates, codes, scores, countries) and stays readable."""

_REPLACEMENT: Final[dict[tuple[str, ...], Any]] = {("identity",): None, ("job_offer", "employer"): REDACTED}


def _aad(profile_id: str) -> bytes:
    return b"ee-personal:" + profile_id.encode()


def split_personal(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(readable document, {dotted path: personal value}); the input is not modified."""
    readable = dict(document)
    personal: dict[str, Any] = {}
    for path in PERSONAL_FIELDS:
        parent: dict[str, Any] | None = readable
        for part in path[:-1]:
            assert parent is not None
            child = parent.get(part)
            if not isinstance(child, dict):
                parent = None
                break
            parent[part] = parent = dict(child)  # copied on the way down: the input stays as it was
        if parent is None:
            continue
        leaf = path[-1]
        value = parent.get(leaf)
        if value is None or value == _REPLACEMENT[path]:
            continue
        personal[".".join(path)] = value
        parent[leaf] = _REPLACEMENT[path]
    return readable, personal


def merge_personal(readable: dict[str, Any], personal: dict[str, Any]) -> dict[str, Any]:
    """The document with its personal fields put back (paths whose parent is gone are dropped)."""
    document = dict(readable)
    for dotted, value in personal.items():
        path = dotted.split(".")
        parent = document
        for part in path[:-1]:
            child = parent.get(part)
            if not isinstance(child, dict):
                break
            parent[part] = parent = dict(child)
        else:
            parent[path[-1]] = value
    return document


def redact(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its personal fields (what is left after erasure)."""
    return split_personal(document)[0]


def seal_document(document: dict[str, Any], key: bytes, profile_id: str) -> tuple[dict[str, Any], str | None]:
    """(readable document, sealed personal fields or None when it has none)."""
    readable, personal = split_personal(document)
    if not personal:
        return readable, None
    return readable, seal(key, orjson.dumps(personal), _aad(profile_id))


def open_document(
    readable: dict[str, Any], sealed: str | None, key: bytes | None, profile_id: str
) -> dict[str, Any]:
    """The whole document; the readable one when nothing was sealed or the key is gone (erased).

    Raises `shared.crypto.CryptoError` when a key is given and the sealed value does not open with it.
    """
    if sealed is None or key is None:
        return readable
    personal = orjson.loads(open_sealed(key, sealed, _aad(profile_id)))
    return merge_personal(readable, personal)
