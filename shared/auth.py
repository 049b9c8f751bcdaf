"""Bearer JWT authentication and role checks.

Tokens are HS256 JWTs signed with `EE_AUTH_SECRET` and carry `sub` (who is calling), `role`
(`candidate`, `partner`, `province`, `officer`, `ops`), `exp`, and for the `province` role a
`province` claim holding a two-letter code (`ON`, `BC`, ...).

```python
@router.post("/v1/rounds")
async def hold_round(principal: Annotated[Principal, Depends(require_roles("ops"))]) -> ...

@router.get("/v1/crs/calculate")                      # public, but knows a caller if there is one
async def calculate(principal: Annotated[Principal | None, Depends(optional_principal)]) -> ...
```

Token expiry is checked against the machine's real time, not the adjustable business clock: moving
the clock 60 days ahead in a test must not expire every token.

CLI (development and tests): `python -m shared.auth token --role ops --sub alice` prints a token
signed with `EE_AUTH_SECRET` (the development default when unset).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, cast, get_args

import jwt
import typer
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# The secret's production rule lives in shared.auth_secret (no FastAPI) and is re-exported here.
from shared.auth_secret import DEV_SECRET as DEV_SECRET
from shared.auth_secret import MIN_PRODUCTION_SECRET_LENGTH as MIN_PRODUCTION_SECRET_LENGTH
from shared.auth_secret import InsecureSecretError as InsecureSecretError
from shared.auth_secret import check_auth_secret as check_auth_secret
from shared.auth_secret import is_production as is_production
from shared.problem import Problem

ALGORITHM: Final = "HS256"
LEEWAY_SECONDS: Final = 5

Role = Literal["candidate", "partner", "province", "officer", "ops"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

PROVINCES: Final = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})
"""Two-letter codes of Canada's provinces and territories (the `province` claim)."""


class InvalidToken(Exception):
    """A token that is not acceptable; the message says why (safe to show to the caller)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    sub: str
    role: Role
    province: str | None = None


def auth_secret_from_env(environ: Mapping[str, str] | None = None) -> str:
    """`EE_AUTH_SECRET` checked against `EE_ENV` (see `check_auth_secret`)."""
    environ = os.environ if environ is None else environ
    return check_auth_secret(environ.get("EE_AUTH_SECRET"), environ.get("EE_ENV", "development"))


def secret_value(secret: object) -> str:
    """A plain string from a `str` or a pydantic `SecretStr`."""
    getter = getattr(secret, "get_secret_value", None)
    if callable(getter):
        return str(getter())
    if not isinstance(secret, str):
        raise TypeError(f"auth secret must be a str or SecretStr, got {type(secret).__name__}")
    return secret


# -- tokens -------------------------------------------------------------------------------------


@contextmanager
def _quiet_key_length() -> Iterator[None]:
    """The development secret is shorter than the 32 bytes PyJWT recommends for HS256, which would
    warn on every request; production secrets are length-checked by `check_auth_secret` instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        yield


def _normalise_province(role: str, province: object) -> str | None:
    if role != "province":
        return None
    if not isinstance(province, str) or province.strip().upper() not in PROVINCES:
        raise InvalidToken(
            "a province token needs a `province` claim holding a two-letter province or territory "
            f"code ({', '.join(sorted(PROVINCES))}), got {province!r}"
        )
    return province.strip().upper()


def mint_token(
    secret: str,
    sub: str,
    role: Role | str,
    province: str | None = None,
    ttl_seconds: int = 3600,
    *,
    now: datetime | None = None,
) -> str:
    """A signed HS256 token for `sub` with `role` that expires `ttl_seconds` from now.

    Raises ValueError for an unknown role, an empty `sub`, or a province role without a valid
    two-letter `province` (and for a `province` given to another role).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not sub:
        raise ValueError("sub must be a non-empty string naming the caller")
    if province is not None and role != "province":
        raise ValueError(f"only province tokens carry a province claim (role is {role!r})")
    try:
        province_code = _normalise_province(role, province)
    except InvalidToken as exc:
        raise ValueError(str(exc)) from None
    issued = int(now.timestamp()) if now is not None else int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": issued, "exp": issued + ttl_seconds}
    if province_code is not None:
        claims["province"] = province_code
    with _quiet_key_length():
        return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str, *, leeway: float = LEEWAY_SECONDS) -> Principal:
    """Verify `token` and return its principal; raises `InvalidToken` saying why not."""
    return _decode(token, secret, leeway)[0]


def _decode(token: str, secret: str, leeway: float) -> tuple[Principal, float]:
    """The token's principal and its `exp` (seconds since the epoch); `InvalidToken` if not valid."""
    try:
        with _quiet_key_length():
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "role"], "verify_signature": True},
                leeway=leeway,
            )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired; get a new one") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("the token's signature does not verify") from None
    except jwt.InvalidAlgorithmError:
        raise InvalidToken(f"the token must be signed with {ALGORITHM}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"the token has no `{exc.claim}` claim") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"the token is malformed ({exc})") from None
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("the token's `sub` claim must be a non-empty string")
    if role not in ROLES:
        raise InvalidToken(f"the token's `role` claim must be one of {', '.join(ROLES)}, got {role!r}")
    province = _normalise_province(role, claims.get("province"))
    return Principal(sub=sub, role=cast(Role, role), province=province), float(claims["exp"])


class VerifiedTokens:
    """Tokens already verified, with their principal and expiry: a client sends the same token with
    every request, and checking its signature and claims again each time cost ~8% of a PUT's CPU.

    A token is only ever remembered after a full `decode_token`, under the secret it was verified
    with; a remembered token past its `exp` (plus the leeway) is refused and forgotten, as the full
    check would. At most `size` tokens are kept (the oldest forgotten first).
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._known: dict[tuple[str, str], tuple[Principal, float]] = {}

    def verify(self, token: str, secret: str, *, leeway: float = LEEWAY_SECONDS) -> Principal:
        key = (secret, token)
        known = self._known.get(key)
        if known is None:
            known = _decode(token, secret, leeway)
            if len(self._known) >= self.size:
                del self._known[next(iter(self._known))]
            self._known[key] = known
        principal, expires = known
        if time.time() > expires + leeway:
            self._known.pop(key, None)
            raise InvalidToken("the token has expired; get a new one")
        return principal

    def clear(self) -> None:
        self._known.clear()


verified_tokens = VerifiedTokens()


# -- FastAPI dependencies -----------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="HS256 JWT with `sub`, `role` and `exp` claims (`python -m shared.auth token --help`).",
)


def _secret_for(request: Request) -> str:
    secret = getattr(request.app.state, "auth_secret", None)
    return secret_value(secret) if secret is not None else auth_secret_from_env()


def unauthenticated(detail: str, *, error: str | None = "invalid_token") -> Problem:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return Problem(401, "Not authenticated", detail, headers={"WWW-Authenticate": challenge})


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller, or None without an `Authorization` header. A bad token is still a 401."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    if credentials is None:
        raise unauthenticated(
            "The Authorization header must be `Bearer <token>`; send a JWT from your identity provider "
            "(or `python -m shared.auth token` in development).",
            error="invalid_request",
        )
    try:
        return verified_tokens.verify(credentials.credentials, _secret_for(request))
    except InvalidToken as exc:
        raise unauthenticated(f"The bearer token was rejected: {exc}.") from None


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the caller's `Principal` if their role is one of `roles` (any role when
    none are given); 401 without a valid token, 403 with another role."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
    allowed: tuple[Role, ...] = roles or ROLES

    async def principal_with_role(
        principal: Annotated[Principal | None, Depends(optional_principal)],
    ) -> Principal:
        if principal is None:
            raise unauthenticated(
                "This endpoint needs a bearer token: send `Authorization: Bearer <token>`.", error=None
            )
        if principal.role not in allowed:
            raise Problem(
                403,
                "Forbidden",
                f"This action needs the role {' or '.join(allowed)}; your token has the role "
                f"{principal.role}.",
            )
        return principal

    principal_with_role.__name__ = f"require_roles_{'_'.join(allowed)}"
    return principal_with_role


authenticated = require_roles()
"""Any valid token, whatever its role."""


# -- CLI ----------------------------------------------------------------------------------------

cli = typer.Typer(help="Development tokens for the Express Entry services.", no_args_is_help=True)

SecretOption = Annotated[
    str | None, typer.Option(envvar="EE_AUTH_SECRET", help="Signing secret (default: EE_AUTH_SECRET).")
]


@cli.command("token")
def token_command(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    sub: Annotated[str, typer.Option(help="Who the caller is (the `sub` claim).")],
    province: Annotated[
        str | None, typer.Option(help="Two-letter code, for --role province (e.g. ON).")
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
    secret: SecretOption = None,
) -> None:
    """Print a signed token (only the token, so `TOKEN=$(python -m shared.auth token ...)` works)."""
    try:
        key = check_auth_secret(secret, os.environ.get("EE_ENV", "development"))
        typer.echo(mint_token(key, sub, role, province=province, ttl_seconds=ttl))
    except (ValueError, InsecureSecretError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@cli.command("verify")
def verify_command(
    token: Annotated[str, typer.Argument(help="The token to check.")],
    secret: SecretOption = None,
) -> None:
    """Check a token and print its principal."""
    try:
        key = check_auth_secret(secret, os.environ.get("EE_ENV", "development"))
        principal = decode_token(token, key)
    except (InvalidToken, InsecureSecretError) as exc:
        typer.echo(f"invalid: {exc}", err=True)
        raise typer.Exit(1) from None
    province = f" province={principal.province}" if principal.province else ""
    typer.echo(f"sub={principal.sub} role={principal.role}{province}")


if __name__ == "__main__":
    cli()
