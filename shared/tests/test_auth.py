"""JWT auth: tokens, role checks over HTTP (in-process), the secret rule and the token CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import jwt
import pytest
from fastapi import APIRouter, Depends
from typer.testing import CliRunner

from shared.auth import (
    DEV_SECRET,
    LEEWAY_SECONDS,
    InsecureSecretError,
    InvalidToken,
    Principal,
    VerifiedTokens,
    auth_secret_from_env,
    check_auth_secret,
    cli,
    decode_token,
    mint_token,
    optional_principal,
    require_roles,
)
from shared.tests.fake_runtime import SECRET, client, make_app
from shared.web import PROBLEM_JSON

ROOT = Path(__file__).resolve().parents[2]

router = APIRouter(prefix="/v1")


@router.post("/rounds")
async def ops_only(principal: Annotated[Principal, Depends(require_roles("ops"))]) -> dict[str, Any]:
    return {"sub": principal.sub, "role": principal.role}


@router.get("/nominations")
async def province_or_officer(
    principal: Annotated[Principal, Depends(require_roles("province", "officer"))],
) -> dict[str, Any]:
    return {"sub": principal.sub, "role": principal.role, "province": principal.province}


@router.get("/calculator")
async def public(principal: Annotated[Principal | None, Depends(optional_principal)]) -> dict[str, Any]:
    return {"sub": principal.sub if principal else None}


APP = make_app(router)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assert_401(resp: Any, says: str | None = None) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"] == PROBLEM_JSON
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    body = resp.json()
    assert body["type"] == "urn:ee:problem:unauthenticated"
    if says:
        assert says in body["detail"]


# -- tokens ---------------------------------------------------------------------------------------


def test_mint_and_decode_round_trip() -> None:
    token = mint_token(SECRET, "alice", "ops")
    assert decode_token(token, SECRET) == Principal(sub="alice", role="ops")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600


def test_province_claim_is_normalised_and_required() -> None:
    token = mint_token(SECRET, "ontario-pnp", "province", province="on")
    assert decode_token(token, SECRET) == Principal(sub="ontario-pnp", role="province", province="ON")
    with pytest.raises(ValueError, match="two-letter"):
        mint_token(SECRET, "x", "province")
    with pytest.raises(ValueError, match="two-letter"):
        mint_token(SECRET, "x", "province", province="XX")
    with pytest.raises(ValueError, match="only province tokens"):
        mint_token(SECRET, "x", "officer", province="ON")
    with pytest.raises(ValueError, match="role must be one of"):
        mint_token(SECRET, "x", "admin")
    with pytest.raises(ValueError, match="sub"):
        mint_token(SECRET, "", "ops")


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"sub": "a", "role": "ops"}, "exp"),
        ({"role": "ops", "exp": 9999999999}, "sub"),
        ({"sub": "a", "exp": 9999999999}, "role"),
        ({"sub": "a", "role": "root", "exp": 9999999999}, "role"),
        ({"sub": "a", "role": "province", "exp": 9999999999}, "province"),
        ({"sub": "a", "role": "province", "province": "Ontario", "exp": 9999999999}, "province"),
        ({"sub": 42, "role": "ops", "exp": 9999999999}, "malformed"),
    ],
)
def test_decode_rejects_bad_claims(claims: dict[str, Any], why: str) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match=why):
        decode_token(token, SECRET)


def test_other_roles_ignore_a_province_claim() -> None:
    token = jwt.encode({"sub": "a", "role": "officer", "province": "ON", "exp": 9999999999}, SECRET)
    assert decode_token(token, SECRET).province is None


# -- over HTTP ------------------------------------------------------------------------------------


async def test_no_token_is_401() -> None:
    async with client(APP) as c:
        resp = await c.post("/v1/rounds")
    assert_401(resp, "bearer token")
    assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_bad_signature_is_401() -> None:
    async with client(APP) as c:
        resp = await c.post("/v1/rounds", headers=bearer(mint_token(SECRET[::-1], "mallory", "ops")))
    assert_401(resp, "signature")
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_expired_token_is_401() -> None:
    token = mint_token(SECRET, "alice", "ops", ttl_seconds=-3600)
    async with client(APP) as c:
        resp = await c.post("/v1/rounds", headers=bearer(token))
    assert_401(resp, "expired")


def test_a_remembered_token_is_still_refused_once_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = VerifiedTokens()
    token = mint_token(SECRET, "alice", "ops", ttl_seconds=60)
    assert tokens.verify(token, SECRET) == Principal(sub="alice", role="ops")
    assert tokens.verify(token, SECRET) == Principal(sub="alice", role="ops")  # remembered
    later = time.time() + 60 + LEEWAY_SECONDS + 1
    monkeypatch.setattr("shared.auth.time.time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token, SECRET)


def test_a_remembered_token_is_checked_again_under_another_secret() -> None:
    tokens = VerifiedTokens()
    token = mint_token(SECRET, "alice", "ops")
    tokens.verify(token, SECRET)
    with pytest.raises(InvalidToken, match="signature"):
        tokens.verify(token, SECRET[::-1])


def test_remembered_tokens_are_bounded() -> None:
    tokens = VerifiedTokens(size=2)
    first, second, third = (mint_token(SECRET, sub, "ops") for sub in ("a", "b", "c"))
    for token in (first, second, third):
        tokens.verify(token, SECRET)
    assert len(tokens._known) == 2
    assert (SECRET, first) not in tokens._known


async def test_alg_none_is_401() -> None:
    claims = {"sub": "mallory", "role": "ops", "exp": int(time.time()) + 3600}
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None"}):
        token = f"{b64(header)}.{b64(claims)}."
        async with client(APP) as c:
            resp = await c.post("/v1/rounds", headers=bearer(token))
        assert_401(resp)


async def test_other_algorithm_with_the_same_secret_is_401() -> None:
    claims = {"sub": "a", "role": "ops", "exp": int(time.time()) + 60}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)  # 39 bytes < 64 for HS512
        token = jwt.encode(claims, SECRET, algorithm="HS512")
    async with client(APP) as c:
        resp = await c.post("/v1/rounds", headers=bearer(token))
    assert_401(resp, "HS256")


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer not.a.jwt", "Bearer abc", "Basic YWxpY2U6cHc=", "token"]
)
async def test_malformed_authorization_is_401(header: str) -> None:
    async with client(APP) as c:
        resp = await c.post("/v1/rounds", headers={"Authorization": header})
    assert_401(resp)


async def test_wrong_role_is_403() -> None:
    async with client(APP) as c:
        resp = await c.post("/v1/rounds", headers=bearer(mint_token(SECRET, "carol", "candidate")))
    assert resp.status_code == 403
    assert resp.headers["content-type"] == PROBLEM_JSON
    body = resp.json()
    assert body["type"] == "urn:ee:problem:forbidden"
    assert "ops" in body["detail"] and "candidate" in body["detail"]


async def test_right_role_is_200() -> None:
    async with client(APP) as c:
        resp = await c.post("/v1/rounds", headers=bearer(mint_token(SECRET, "alice", "ops")))
    assert resp.status_code == 200
    assert resp.json() == {"sub": "alice", "role": "ops"}


async def test_any_of_several_roles_and_the_province_claim() -> None:
    async with client(APP) as c:
        province = await c.get(
            "/v1/nominations", headers=bearer(mint_token(SECRET, "bc-pnp", "province", province="BC"))
        )
        officer = await c.get("/v1/nominations", headers=bearer(mint_token(SECRET, "olga", "officer")))
        partner = await c.get("/v1/nominations", headers=bearer(mint_token(SECRET, "acme", "partner")))
    assert province.json() == {"sub": "bc-pnp", "role": "province", "province": "BC"}
    assert officer.json() == {"sub": "olga", "role": "officer", "province": None}
    assert partner.status_code == 403


async def test_province_token_without_a_valid_province_is_401() -> None:
    claims = {"sub": "p", "role": "province", "province": "ZZ", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, SECRET)
    async with client(APP) as c:
        resp = await c.get("/v1/nominations", headers=bearer(token))
    assert_401(resp, "province")


async def test_optional_principal() -> None:
    async with client(APP) as c:
        anonymous = await c.get("/v1/calculator")
        known = await c.get("/v1/calculator", headers=bearer(mint_token(SECRET, "carol", "candidate")))
        bad = await c.get("/v1/calculator", headers=bearer("garbage"))
    assert anonymous.json() == {"sub": None}
    assert known.json() == {"sub": "carol"}
    assert_401(bad)


async def test_openapi_declares_bearer_security() -> None:
    async with client(APP) as c:
        schema = (await c.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/rounds"]["post"]["security"] == [{"bearer": []}]


def test_require_roles_rejects_unknown_roles() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        require_roles("admin")  # type: ignore[arg-type]


# -- the secret -----------------------------------------------------------------------------------


def test_development_default_secret() -> None:
    assert DEV_SECRET == "dev-secret-change-me"
    assert check_auth_secret(None, "development") == DEV_SECRET
    assert check_auth_secret("", "test") == DEV_SECRET
    assert check_auth_secret("mine", "test") == "mine"
    assert auth_secret_from_env({}) == DEV_SECRET


@pytest.mark.parametrize("secret", [None, "", DEV_SECRET, "short-but-not-default"])
def test_production_refuses_insecure_secrets(secret: str | None) -> None:
    with pytest.raises(InsecureSecretError, match="EE_AUTH_SECRET"):
        check_auth_secret(secret, "production")
    env = {"EE_ENV": "production"} | ({"EE_AUTH_SECRET": secret} if secret is not None else {})
    with pytest.raises(InsecureSecretError, match="production"):
        auth_secret_from_env(env)


def test_production_accepts_a_long_random_secret() -> None:
    assert check_auth_secret(SECRET, "production") == SECRET


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_token_verifies() -> None:
    result = CliRunner().invoke(
        cli, ["token", "--role", "province", "--sub", "mb-pnp", "--province", "MB", "--secret", SECRET]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert decode_token(token, SECRET) == Principal(sub="mb-pnp", role="province", province="MB")


def test_cli_rejects_bad_input() -> None:
    runner = CliRunner()
    bad_role = runner.invoke(cli, ["token", "--role", "admin", "--sub", "x", "--secret", SECRET])
    assert bad_role.exit_code == 2
    assert "role must be one of" in bad_role.stderr


def test_cli_module_entry_point_uses_ee_auth_secret() -> None:
    env = {**os.environ, "EE_AUTH_SECRET": SECRET, "EE_ENV": "development"}
    minted = subprocess.run(
        [sys.executable, "-m", "shared.auth", "token", "--role", "ops", "--sub", "alice"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = minted.stdout.strip()
    assert decode_token(token, SECRET) == Principal(sub="alice", role="ops")
    verified = subprocess.run(
        [sys.executable, "-m", "shared.auth", "verify", token],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert verified.stdout.strip() == "sub=alice role=ops"


def test_cli_refuses_the_development_secret_in_production() -> None:
    env = {**os.environ, "EE_ENV": "production"}
    env.pop("EE_AUTH_SECRET", None)
    result = subprocess.run(
        [sys.executable, "-m", "shared.auth", "token", "--role", "ops", "--sub", "alice"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "EE_AUTH_SECRET" in result.stderr
