"""Subscription secrets: generated, encrypted at rest (AES-256-GCM) and used to sign (Standard Webhooks).

A stored secret is `nonce (12 bytes) || ciphertext+tag`, with the subscription id as associated data,
so a ciphertext copied onto another row does not decrypt. The key is the settings' `secret_key`.
"""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks.webhooks import Webhook

from shared import crypto

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
NONCE_BYTES = 12


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + base64 of 32 random bytes (shown to the subscriber once)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


class SecretBox:
    """The secrets' key: seals and opens them (`notifications_service.application.ports.SecretBox`)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._aead = AESGCM(key)

    def new_secret(self) -> str:
        return new_secret()

    def seal(self, secret: str, subscription_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), subscription_id.encode())

    def open(self, sealed: bytes, subscription_id: str) -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, subscription_id.encode()).decode()

    def seal_text(self, secret: str, context: str) -> str:
        """`secret` sealed with the same key as text fit for JSON (`shared.crypto.seal`'s `v1.` form),
        bound to `context` (it opens under no other)."""
        return crypto.seal(self._key, secret.encode(), context.encode())

    def open_text(self, sealed: str, context: str) -> str:
        """The secret `seal_text` sealed under `context`; `shared.crypto.CryptoError` when it does not
        open (another key, another context, tampered)."""
        return crypto.open_sealed(self._key, sealed, context.encode()).decode()


class Signer:
    """`webhook-signature` for a body: one `v1,<base64>` per secret, space-separated (rotation)."""

    def __init__(self) -> None:
        self._cache: dict[str, Webhook] = {}

    def headers(
        self, webhook_id: str, body: str, secrets: list[str], at: float | None = None
    ) -> dict[str, str]:
        stamp = datetime.fromtimestamp(int(at if at is not None else time.time()), tz=UTC)
        signatures = " ".join(self._webhook(secret).sign(webhook_id, stamp, body) for secret in secrets)
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": signatures,
        }

    def _webhook(self, secret: str) -> Webhook:
        webhook = self._cache.get(secret)
        if webhook is None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            webhook = self._cache[secret] = Webhook(secret)
        return webhook
