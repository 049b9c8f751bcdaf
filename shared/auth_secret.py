"""The auth secret's production rule, free of any web framework.

`shared.settings` (which every layer reads) checks the secret with it, so it must not import
FastAPI through `shared.auth`; `shared.auth` re-exports these names for its callers.
"""

from __future__ import annotations

from typing import Final

DEV_SECRET: Final = "dev-secret-change-me"
"""The development default for `EE_AUTH_SECRET`; refused when `EE_ENV=production`."""

MIN_PRODUCTION_SECRET_LENGTH: Final = 32


class InsecureSecretError(RuntimeError):
    """The configured auth secret must not be used in this environment."""


def is_production(env: str | None) -> bool:
    return (env or "").strip().lower() == "production"


def check_auth_secret(secret: str | None, env: str | None) -> str:
    """The secret to sign and verify with, refusing insecure ones in production.

    Outside production an unset secret means `DEV_SECRET`. In production the secret must be set,
    must not be the development default and must be at least 32 characters long.
    """
    how = (
        "set EE_AUTH_SECRET to a random value of at least "
        f"{MIN_PRODUCTION_SECRET_LENGTH} characters, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
    )
    if not is_production(env):
        return secret or DEV_SECRET
    if not secret:
        raise InsecureSecretError(f"EE_AUTH_SECRET is not set and EE_ENV=production: {how}.")
    if secret == DEV_SECRET:
        raise InsecureSecretError(
            f"EE_AUTH_SECRET is the development default {DEV_SECRET!r} and EE_ENV=production: {how}."
        )
    if len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
        raise InsecureSecretError(
            f"EE_AUTH_SECRET is only {len(secret)} characters long and EE_ENV=production: {how}."
        )
    return secret
