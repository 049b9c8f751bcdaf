"""The profile service's HTTP API: thin routes over the command handlers and the query table."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from profile_service.adapters import queries
from profile_service.adapters.uow import profile_uow
from profile_service.application import handlers
from profile_service.domain.profile import Profile
from profile_service.schemas import (
    Eligibility,
    ErasureOut,
    NominationOut,
    NominationRequest,
    PageOf,
    ProfileSummary,
    ProfileView,
)
from profile_service.settings import ProfileSettings
from shared.auth import Principal, require_roles
from shared.bounds import DB_INT_MAX
from shared.errors import NotFound
from shared.idempotency import IdempotencyKey
from shared.problem import ProblemDetails
from shared.rules.document import ProfileDocument
from shared.runtime import ServiceRuntime
from shared.web import IfMatch, etag_header, get_runtime
from shared.web.commands import IdempotentCommand
from shared.web.openapi import links

router = APIRouter(prefix="/v1")

Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
Owner = Annotated[Principal, Depends(require_roles("candidate", "partner"))]
ProvinceCaller = Annotated[Principal, Depends(require_roles("province"))]
Staff = Annotated[Principal, Depends(require_roles("officer", "ops"))]
OpsCaller = Annotated[Principal, Depends(require_roles("ops"))]
ProfileId = Annotated[str, Path(description="The profile's id", max_length=100)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX, description="How many to skip")]

Responses = dict[int | str, dict[str, Any]]
_404: Responses = {404: {"model": ProblemDetails, "description": "No such profile among yours."}}
_409: Responses = {409: {"model": ProblemDetails, "description": "Not allowed now (e.g. locked)."}}
_422: Responses = {422: {"model": ProblemDetails, "description": "Invalid document, each bad field named."}}
_412: Responses = {412: {"model": ProblemDetails, "description": "Stale If-Match."}}
_NOT_ELIGIBLE: Responses = {422: {"model": ProblemDetails, "description": "Eligible for no program."}}
_428: Responses = {428: {"model": ProblemDetails, "description": "If-Match missing."}}


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag_header(version)


def _profile_links(profile_id: str) -> dict[str, Any]:
    """What can follow an answer about a profile (OpenAPI links: the ETag goes along as If-Match)."""
    command = {"profile_id": profile_id, "header.If-Match": "$response.header.ETag"}
    return links(
        GetProfile=("get_profile", {"profile_id": profile_id}),
        GetEligibility=("get_eligibility", {"profile_id": profile_id}),
        UpdateProfile=("update_profile", command),
        SubmitProfile=("submit_profile", command),
        WithdrawProfile=("withdraw_profile", command),
    )


def _profile_location(answer: dict[str, Any]) -> str:
    return f"/v1/profiles/{answer['id']}"


# --- profiles -----------------------------------------------------------------------------------------


@router.post(
    "/profiles",
    status_code=201,
    tags=["profiles"],
    summary="Create a draft profile",
    response_model=ProfileView,
    operation_id="create_profile",
    responses={
        **_422,
        201: {
            "description": "Created; `Location` and `ETag` headers are set.",
            "links": _profile_links("$response.body#/id"),
        },
    },
)
async def create_profile(
    document: ProfileDocument, principal: Owner, runtime: Runtime, key: IdempotencyKey, request: Request
) -> Response:
    """Store the candidate's profile document as a draft (not yet in the pool: submit it).

    Send an `Idempotency-Key` to retry safely: the same key and body return the first response.
    """
    command = IdempotentCommand(
        "profile.create", key, request, principal.sub, body=document, status=201,
        location=_profile_location,
    )  # fmt: skip
    return await command.run(
        profile_uow(runtime.uow),
        lambda uow: handlers.create_profile(uow, principal.sub, document),
        ProfileView.of,
    )


@router.get("/profiles", tags=["profiles"], summary="Your profiles, oldest first")
async def list_profiles(
    principal: Owner, runtime: Runtime, limit: Limit = 20, offset: Offset = 0
) -> PageOf[ProfileSummary]:
    async with runtime.uow() as uow:
        page = await queries.owned_by(uow.session, principal.sub, limit, offset)
    items = [ProfileSummary.of_row(row) for row in page.rows]
    return PageOf[ProfileSummary](items=items, total=page.total, limit=limit, offset=offset)


@router.get(
    "/profiles/{profile_id}",
    tags=["profiles"],
    summary="One of your profiles",
    operation_id="get_profile",
    responses={
        **_404,
        200: {
            "description": "The profile; its `ETag` is the version to send as If-Match.",
            "links": _profile_links("$request.path.profile_id"),
        },
    },
)
async def get_profile(
    profile_id: ProfileId, principal: Owner, runtime: Runtime, response: Response
) -> ProfileView:
    async with profile_uow(runtime.uow)() as uow:
        profile = await handlers.load_owned(uow, profile_id, principal.sub)
    _etag(response, profile.version)
    return ProfileView.of(profile)


@router.put(
    "/profiles/{profile_id}",
    tags=["profiles"],
    summary="Replace the profile document",
    response_model=ProfileView,
    operation_id="update_profile",
    responses={
        **_404,
        **_409,
        **_422,
        **_412,
        **_428,
        200: {"description": "The profile changed.", "links": _profile_links("$request.path.profile_id")},
    },
)
async def update_profile(
    profile_id: ProfileId,
    document: ProfileDocument,
    expected: IfMatch,
    key: IdempotencyKey,
    principal: Owner,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Send the whole document with `If-Match` set to the ETag of your last read.

    An in-pool profile that the change makes eligible for no program leaves the pool (the response
    shows `removed_from_pool`). A profile with an open invitation or an application is locked (409).
    """
    command = IdempotentCommand("profile.update", key, request, principal.sub, body=document)
    return await command.run(
        profile_uow(runtime.uow),
        lambda uow: handlers.update_profile(uow, profile_id, principal.sub, expected, document),
        ProfileView.of,
    )


@router.get(
    "/profiles/{profile_id}/export",
    tags=["personal data"],
    responses=_404,
    operation_id="export_profile",
    summary="Everything held about you, decrypted, as one JSON document",
)
async def export_profile(profile_id: ProfileId, principal: Owner, runtime: Runtime) -> dict[str, Any]:
    """The profile's document (identity included) and its whole history, each event with its personal
    fields opened (docs/PRIVACY.md). Only the profile's owner may export it; once erased, 404."""
    async with profile_uow(runtime.uow)() as uow:
        return await handlers.export_profile(uow, profile_id, principal.sub)


@router.get(
    "/admin/profiles/{profile_id}",
    tags=["personal data"],
    responses=_404,
    operation_id="get_profile_for_staff",
    summary="A profile with its identity, for officers and ops",
)
async def get_profile_for_staff(
    profile_id: ProfileId, principal: Staff, runtime: Runtime, response: Response
) -> ProfileView:
    """Officers and ops see the identity block too (ranking and draws never do); 404 once erased."""
    async with profile_uow(runtime.uow)() as uow:
        profile = await handlers.load_for_staff(uow, profile_id)
    _etag(response, profile.version)
    return ProfileView.of(profile)


@router.post(
    "/admin/profiles/{profile_id}/erase",
    tags=["personal data"],
    responses={**_404, **_409, **_412, **_428},
    operation_id="erase_profile",
    summary="Erase a never-invited profile's personal data now (ops)",
)
async def erase_profile(
    profile_id: ProfileId,
    expected: IfMatch,
    key: IdempotencyKey,
    principal: OpsCaller,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Send `If-Match` with the ETag of `GET /v1/admin/profiles/{profile_id}`. Destroys the candidate's
    data key and publishes PersonalDataErased; a profile still open is withdrawn first. Refused (409)
    for a profile that was ever invited: that one is erased on its own once the retention after it
    left has passed. Repeating it is harmless: an erased profile answers its erasure whatever the
    If-Match (nothing is written)."""
    retention = timedelta(days=_settings(runtime).erasure_retention_days)
    command = IdempotentCommand("profile.erase", key, request, principal.sub)
    return await command.run(
        profile_uow(runtime.uow),
        lambda uow: handlers.erase_profile(uow, profile_id, retention, ordered=True, expected=expected),
        _erasure,
    )


def _erasure(profile: Profile) -> ErasureOut:
    assert profile.erased_at is not None
    return ErasureOut(profile_id=profile.profile_id, erased_at=profile.erased_at)


def _settings(runtime: ServiceRuntime) -> ProfileSettings:
    settings = runtime.settings
    assert isinstance(settings, ProfileSettings)
    return settings


@router.get(
    "/profiles/{profile_id}/eligibility",
    tags=["profiles"],
    responses=_404,
    operation_id="get_eligibility",
    summary="FSWP, CEC and FSTP minimum requirements, as of today",
)
async def get_eligibility(profile_id: ProfileId, principal: Owner, runtime: Runtime) -> Eligibility:
    async with profile_uow(runtime.uow)() as uow:
        profile = await handlers.load_owned(uow, profile_id, principal.sub)
    return Eligibility.of(profile.assess(runtime.clock.now()))


@router.post(
    "/profiles/{profile_id}/submit",
    tags=["profiles"],
    summary="Enter the pool",
    response_model=ProfileView,
    operation_id="submit_profile",
    responses={
        **_404,
        **_409,
        **_412,
        **_428,
        **_NOT_ELIGIBLE,
        200: {"description": "In the pool.", "links": _profile_links("$request.path.profile_id")},
    },
)
async def submit_profile(
    profile_id: ProfileId,
    expected: IfMatch,
    key: IdempotencyKey,
    principal: Owner,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Enters the pool when eligible for at least one program; otherwise 422 with every reason.

    `submitted_at` is set by the first submission and `expires_at` is 12 months later. A withdrawn or
    expired profile cannot be submitted again (409).
    """
    command = IdempotentCommand("profile.submit", key, request, principal.sub)
    return await command.run(
        profile_uow(runtime.uow),
        lambda uow: handlers.submit_profile(uow, profile_id, principal.sub, expected),
        ProfileView.of,
    )


@router.post(
    "/profiles/{profile_id}/withdraw",
    tags=["profiles"],
    summary="Withdraw the profile for good",
    response_model=ProfileView,
    operation_id="withdraw_profile",
    responses={**_404, **_409, **_412, **_428},
)
async def withdraw_profile(
    profile_id: ProfileId,
    expected: IfMatch,
    key: IdempotencyKey,
    principal: Owner,
    runtime: Runtime,
    request: Request,
) -> Response:
    command = IdempotentCommand("profile.withdraw", key, request, principal.sub)
    return await command.run(
        profile_uow(runtime.uow),
        lambda uow: handlers.withdraw_profile(uow, profile_id, principal.sub, expected),
        ProfileView.of,
    )


# --- provincial nominations ------------------------------------------------------------------------------

ProvinceCode = Annotated[
    str, Path(description="Two-letter province or territory code, e.g. ON", min_length=2, max_length=2)
]


def _own_province(code: str, principal: Principal) -> str:
    """The caller's own province; another province's nominations are someone else's resource: 404."""
    province = code.upper()
    if principal.province != province:
        raise NotFound(
            f"There are no nominations of the province {province} among yours: your token acts for "
            f"{principal.province}; use /v1/provinces/{principal.province}/nominations."
        )
    return province


def _nomination_links(profile_id: str) -> dict[str, Any]:
    nomination = {"code": "$request.path.code", "profile_id": profile_id}
    return links(
        GetNomination=("get_nomination", nomination),
        WithdrawNomination=(
            "withdraw_nomination",
            {**nomination, "header.If-Match": "$response.header.ETag"},
        ),
    )


@router.post(
    "/provinces/{code}/nominations",
    status_code=201,
    tags=["nominations"],
    response_model=NominationOut,
    summary="Nominate a candidate in the pool",
    operation_id="nominate",
    responses={
        **_404,
        **_409,
        201: {
            "description": "Nominated; `Location` and `ETag` are set.",
            "links": _nomination_links("$response.body#/profile_id"),
        },
    },
)
async def nominate(
    code: ProvinceCode,
    body: NominationRequest,
    key: IdempotencyKey,
    principal: ProvinceCaller,
    runtime: Runtime,
    request: Request,
) -> Response:
    """A candidate holds at most one active nomination (409 while another province's is active).

    Send an `Idempotency-Key` to retry safely: the same key and body return the first answer.
    """
    province = _own_province(code, principal)
    command = IdempotentCommand(
        "profile.nominate", key, request, principal.sub, body=body, status=201,
        location=lambda answer: f"/v1/provinces/{province}/nominations/{answer['profile_id']}",
    )  # fmt: skip
    return await command.run(
        profile_uow(runtime.uow),
        lambda uow: handlers.nominate(uow, province, body.profile_id),
        NominationOut.of,
    )


@router.get(
    "/provinces/{code}/nominations/{profile_id}",
    tags=["nominations"],
    operation_id="get_nomination",
    summary="One of the province's active nominations",
    responses={
        **_404,
        200: {
            "description": "The nomination; its `ETag` is the If-Match to withdraw it.",
            "links": _nomination_links("$request.path.profile_id"),
        },
    },
)
async def get_nomination(
    code: ProvinceCode,
    profile_id: ProfileId,
    principal: ProvinceCaller,
    runtime: Runtime,
    response: Response,
) -> NominationOut:
    province = _own_province(code, principal)
    async with profile_uow(runtime.uow)() as uow:
        profile = await handlers.load_nomination(uow, province, profile_id)
    _etag(response, profile.version)
    return NominationOut.of(profile)


@router.delete(
    "/provinces/{code}/nominations/{profile_id}",
    status_code=204,
    tags=["nominations"],
    summary="Withdraw the province's nomination",
    responses={**_404, **_412, **_428},
    operation_id="withdraw_nomination",
)
async def withdraw_nomination(
    code: ProvinceCode,
    profile_id: ProfileId,
    expected: IfMatch,
    key: IdempotencyKey,
    principal: ProvinceCaller,
    runtime: Runtime,
    request: Request,
) -> Response:
    """Send `If-Match` with the nomination's ETag (from the nomination, the list or the nominating
    answer): 412 when the profile changed since."""
    province = _own_province(code, principal)
    command = IdempotentCommand("profile.withdraw-nomination", key, request, principal.sub, status=204)
    return await command.run(
        profile_uow(runtime.uow),
        lambda uow: handlers.withdraw_nomination(uow, province, profile_id, expected),
        lambda _: {},
    )


@router.get(
    "/provinces/{code}/nominations", tags=["nominations"], summary="The province's active nominations"
)
async def list_nominations(
    code: ProvinceCode, principal: ProvinceCaller, runtime: Runtime, limit: Limit = 20, offset: Offset = 0
) -> PageOf[NominationOut]:
    province = _own_province(code, principal)
    async with runtime.uow() as uow:
        page = await queries.nominated_by(uow.session, province, limit, offset)
    items = [NominationOut.of_row(row) for row in page.rows]
    return PageOf[NominationOut](items=items, total=page.total, limit=limit, offset=offset)
