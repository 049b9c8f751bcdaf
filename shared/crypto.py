"""Envelope encryption of personal data: one data key per candidate, wrapped by a key-encryption key.

Pure (no I/O): AES-256-GCM from the `cryptography` package. docs/PRIVACY.md says what is encrypted.

- A *data key* (32 random bytes) encrypts a candidate's personal fields. `seal(key, plaintext, aad)`
  returns `v1.<nonce>.<ciphertext>` (URL-safe base64, the 16-byte tag at the end of the ciphertext);
  `open_sealed` reverses it and raises `CryptoError` when the key, the data or the aad do not match.
- A *key-encryption key* (KEK) wraps the data keys stored in the profile service's database.
  `KeyRing.parse("<base64 key>[,<base64 older key>...]")` (setting `EE_KEK`): the first key wraps new
  data keys; the older ones only unwrap, until `rewrap` has moved every data key onto the current one.
  A KEK is named by `kek_id` (a digest of the key, never the key itself), stored beside each wrapped key.

The aad (associated data) binds a ciphertext to its owner: a data key wrapped for profile A does not
unwrap as profile B's, and a sealed field copied into another profile's event does not open.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per encryption (2^32 encryptions per key stay safe)
SEALED_PREFIX = "v1."
# A development-only KEK: production refuses it (like the development auth secret).
DEV_KEK = base64.urlsafe_b64encode(hashlib.sha256(b"ee development key-encryption key").digest()).decode()


class CryptoError(Exception):
    """A ciphertext that does not open: wrong key, tampered data, other owner, unknown KEK."""


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """`nonce || ciphertext || tag` under `key` (32 bytes)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise CryptoError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise CryptoError("ciphertext does not open with this key and owner") from None


def seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    """A text form fit for a JSON field: `v1.<nonce>.<ciphertext>`."""
    blob = encrypt(key, plaintext, aad)
    return f"{SEALED_PREFIX}{_b64(blob[:NONCE_BYTES])}.{_b64(blob[NONCE_BYTES:])}"


def open_sealed(key: bytes, sealed: str, aad: bytes) -> bytes:
    if not sealed.startswith(SEALED_PREFIX) or sealed.count(".") != 2:
        raise CryptoError("not a v1 sealed value")
    _, nonce, body = sealed.split(".")
    try:
        blob = _unb64(nonce) + _unb64(body)
    except ValueError:
        raise CryptoError("sealed value is not base64") from None
    return decrypt(key, blob, aad)


def kek_id(kek: bytes) -> str:
    """A public name of a KEK: 16 hex digits of a domain-separated SHA-256 (does not reveal the key)."""
    return hashlib.sha256(b"ee-kek-id:" + kek).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class WrappedKey:
    kek_id: str
    wrapped: bytes


class KeyRing:
    """The KEKs of `EE_KEK`: the first one current, the others only for unwrapping (rotation)."""

    def __init__(self, keks: list[bytes]) -> None:
        if not keks:
            raise ValueError("EE_KEK names no key-encryption key")
        for kek in keks:
            if len(kek) != KEY_BYTES:
                raise ValueError(f"a key-encryption key is {KEY_BYTES} bytes (base64), got {len(kek)}")
        self._keks = {kek_id(kek): kek for kek in keks}
        self.current_id = kek_id(keks[0])

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """`"<base64 key>[,<base64 older key>...]"`; standard or URL-safe base64 of 32 bytes each."""
        keks: list[bytes] = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            standard = part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4)
            try:
                keks.append(base64.b64decode(standard, validate=True))
            except ValueError:
                raise ValueError("EE_KEK must be base64 keys separated by commas") from None
        return cls(keks)

    @property
    def ids(self) -> list[str]:
        return list(self._keks)

    def wrap(self, data_key: bytes, owner: str) -> WrappedKey:
        return WrappedKey(self.current_id, encrypt(self._keks[self.current_id], data_key, _aad(owner)))

    def unwrap(self, wrapped: WrappedKey, owner: str) -> bytes:
        kek = self._keks.get(wrapped.kek_id)
        if kek is None:
            raise CryptoError(
                f"data key of {owner} is wrapped by KEK {wrapped.kek_id}, which EE_KEK no longer lists; "
                "add that key back (after the current one) and run the re-wrap"
            )
        return decrypt(kek, wrapped.wrapped, _aad(owner))

    def rewrap(self, wrapped: WrappedKey, owner: str) -> WrappedKey:
        """The same data key wrapped by the current KEK (unchanged when it already is)."""
        if wrapped.kek_id == self.current_id:
            return wrapped
        return self.wrap(self.unwrap(wrapped, owner), owner)


def _aad(owner: str) -> bytes:
    return b"ee-data-key:" + owner.encode()


def generate_kek() -> str:
    """A new KEK as base64, for `EE_KEK` (`python -m shared.crypto`)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


if __name__ == "__main__":  # pragma: no cover - a one-line helper for operators
    print(generate_kek())
