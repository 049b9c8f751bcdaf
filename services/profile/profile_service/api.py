"""The profile service's HTTP API: thin routes over the command handlers and the query table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from profile_service.adapters import queries
from profile_service.application import handlers
from profile_service.application.errors import InvalidDocument, ProfileNotFound, VersionMismatch
from profile_service.domain.errors import (
    DomainError,
    NominationNotFound,
    NotEligible,
    TransitionNotAllowed,
)
from profile_service.schemas import (
    Eligibility,
    NominationOut,
    NominationRequest,
    PageOf,
    ProfileSummary,
    ProfileView,
)
from shared.auth import Principal, require_roles
from shared.idempotency import IdempotencyKey, IdempotencyKeys, request_fingerprint
from shared.problem import FieldError, Problem, ProblemDetails
from shared.rules.document import ProfileDocument
from shared.runtime import ServiceRuntime
from shared.web import IfMatch, check_version, etag_header, get_runtime, parse_if_match, problem_response

router = APIRouter(prefix="/v1")

Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
Owner = Annotated[Principal, Depends(require_roles("candidate", "partner"))]
ProvinceCaller = Annotated[Principal, Depends(require_roles("province"))]
ProfileId = Annotated[str, Path(description="The profile's id", max_length=100)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Offset = Annotated[int, Query(ge=0, description="How many to skip")]

CREATE_KEYS = IdempotencyKeys("profile.create")
Responses = dict[int | str, dict[str, Any]]
_404: Responses = {404: {"model": ProblemDetails, "description": "No such profile among yours."}}
_409: Responses = {409: {"model": ProblemDetails, "description": "Not allowed now (e.g. locked)."}}
_422: Responses = {422: {"model": ProblemDetails, "description": "Invalid document, each bad field named."}}


async def _optional_if_match(
    if_match: Annotated[
        str | None, Header(alias="If-Match", description='Optional: the ETag you last read, e.g. `"3"`.')
    ] = None,
) -> int | None:
    return None if if_match is None else parse_if_match(if_match)


OptionalIfMatch = Annotated[int | None, Depends(_optional_if_match)]


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag_header(version)


async def _command(runtime: ServiceRuntime, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(uow)` in one transaction and commit it."""
    async with runtime.uow() as uow:
        result = await work(uow)
        await uow.commit()
    return result


# --- profiles -----------------------------------------------------------------------------------------


@router.post(
    "/profiles", status_code=201, tags=["profiles"], summary="Create a draft profile",
    response_model=ProfileView,
    responses={**_422, 201: {"description": "Created; `Location` and `ETag` headers are set."}},
)
async def create_profile(
    document: ProfileDocument, principal: Owner, runtime: Runtime, key: IdempotencyKey
) -> Response:
    """Store the candidate's profile document as a draft (not yet in the pool: submit it).

    Send an `Idempotency-Key` to retry safely: the same key and body return the first response.
    """
    body = document.model_dump(mode="json")
    fingerprint = request_fingerprint("POST", "/v1/profiles", body)
    async with runtime.uow() as uow:
        stored = key and await CREATE_KEYS.lookup(uow.session, key, fingerprint, caller=principal.sub)
        if stored:
            return stored.to_response(headers=_created_headers(stored.body))
        view = ProfileView.of(await handlers.create_profile(uow, principal.sub, document))
        created = view.model_dump(mode="json")
        if key is not None:
            await CREATE_KEYS.save(uow.session, key, fingerprint, 201, created, caller=principal.sub)
        await uow.commit()
    return JSONResponse(created, 201, _created_headers(created))


def _created_headers(body: dict[str, Any]) -> dict[str, str]:
    return {"ETag": etag_header(int(body["version"])), "Location": f"/v1/profiles/{body['id']}"}


@router.get("/profiles", tags=["profiles"], summary="Your profiles, oldest first")
async def list_profiles(
    principal: Owner, runtime: Runtime, limit: Limit = 20, offset: Offset = 0
) -> PageOf[ProfileSummary]:
    async with runtime.uow() as uow:
        page = await queries.owned_by(uow.session, principal.sub, limit, offset)
    items = [ProfileSummary.of_row(row) for row in page.rows]
    return PageOf[ProfileSummary](items=items, total=page.total, limit=limit, offset=offset)


@router.get("/profiles/{profile_id}", tags=["profiles"], summary="One of your profiles", responses=_404)
async def get_profile(
    profile_id: ProfileId, principal: Owner, runtime: Runtime, response: Response
) -> ProfileView:
    async with runtime.uow() as uow:
        profile = await handlers.load_owned(uow, profile_id, principal.sub)
    _etag(response, profile.version)
    return ProfileView.of(profile)


@router.put(
    "/profiles/{profile_id}", tags=["profiles"], summary="Replace the profile document",
    responses={**_404, **_409, **_422, 412: {"model": ProblemDetails, "description": "Stale If-Match."},
               428: {"model": ProblemDetails, "description": "If-Match missing."}},
)
async def update_profile(
    profile_id: ProfileId, document: ProfileDocument, expected: IfMatch, principal: Owner,
    runtime: Runtime, response: Response,
) -> ProfileView:
    """Send the whole document with `If-Match` set to the ETag of your last read.

    An in-pool profile that the change makes eligible for no program leaves the pool (the response
    shows `removed_from_pool`). A profile with an open invitation or an application is locked (409).
    """
    profile = await _command(
        runtime, lambda uow: handlers.update_profile(uow, profile_id, principal.sub, expected, document)
    )
    _etag(response, profile.version)
    return ProfileView.of(profile)


@router.get(
    "/profiles/{profile_id}/eligibility", tags=["profiles"], responses=_404,
    summary="FSWP, CEC and FSTP minimum requirements, as of today",
)
async def get_eligibility(profile_id: ProfileId, principal: Owner, runtime: Runtime) -> Eligibility:
    async with runtime.uow() as uow:
        profile = await handlers.load_owned(uow, profile_id, principal.sub)
    return Eligibility.of(profile.assess(runtime.clock.now()))


@router.post(
    "/profiles/{profile_id}/submit", tags=["profiles"], summary="Enter the pool",
    responses={**_404, **_409, 422: {"model": ProblemDetails, "description": "Eligible for no program."}},
)
async def submit_profile(
    profile_id: ProfileId, principal: Owner, runtime: Runtime, response: Response, expected: OptionalIfMatch
) -> ProfileView:
    """Enters the pool when eligible for at least one program; otherwise 422 with every reason.

    `submitted_at` is set by the first submission and `expires_at` is 12 months later. A withdrawn or
    expired profile cannot be submitted again (409).
    """
    profile = await _command(
        runtime, lambda uow: handlers.submit_profile(uow, profile_id, principal.sub, expected)
    )
    _etag(response, profile.version)
    return ProfileView.of(profile)


@router.post(
    "/profiles/{profile_id}/withdraw", tags=["profiles"], summary="Withdraw the profile for good",
    responses={**_404, **_409},
)
async def withdraw_profile(
    profile_id: ProfileId, principal: Owner, runtime: Runtime, response: Response, expected: OptionalIfMatch
) -> ProfileView:
    profile = await _command(
        runtime, lambda uow: handlers.withdraw_profile(uow, profile_id, principal.sub, expected)
    )
    _etag(response, profile.version)
    return ProfileView.of(profile)


# --- provincial nominations ------------------------------------------------------------------------------

ProvinceCode = Annotated[str, Path(description="Two-letter province or territory code, e.g. ON",
                                   min_length=2, max_length=2)]


def _own_province(code: str, principal: Principal) -> str:
    province = code.upper()
    if principal.province != province:
        raise Problem(
            403, "Forbidden",
            f"Your token acts for {principal.province}; it cannot act for the province {province}.",
        )
    return province


@router.post(
    "/provinces/{code}/nominations", status_code=201, tags=["nominations"],
    summary="Nominate a candidate in the pool", responses={**_404, **_409},
)
async def nominate(
    code: ProvinceCode, body: NominationRequest, principal: ProvinceCaller, runtime: Runtime,
    response: Response,
) -> NominationOut:
    """A candidate holds at most one active nomination (409 while another province's is active)."""
    province = _own_province(code, principal)
    profile = await _command(runtime, lambda uow: handlers.nominate(uow, province, body.profile_id))
    response.headers["Location"] = f"/v1/provinces/{province}/nominations/{profile.profile_id}"
    return NominationOut.of(profile)


@router.delete(
    "/provinces/{code}/nominations/{profile_id}", status_code=204, tags=["nominations"],
    summary="Withdraw the province's nomination", responses=_404,
)
async def withdraw_nomination(
    code: ProvinceCode, profile_id: ProfileId, principal: ProvinceCaller, runtime: Runtime
) -> Response:
    province = _own_province(code, principal)
    await _command(runtime, lambda uow: handlers.withdraw_nomination(uow, province, profile_id))
    return Response(status_code=204)


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


# --- errors -----------------------------------------------------------------------------------------------


def problem_for(exc: Exception) -> Problem:
    """The problem+json of an application or domain error."""
    if isinstance(exc, ProfileNotFound):
        return Problem(404, "Profile not found", exc.detail)
    if isinstance(exc, VersionMismatch):
        return _stale(exc)
    if isinstance(exc, InvalidDocument):
        errors = [FieldError(field=e.field, message=e.message) for e in exc.errors]
        detail = f"{len(errors)} field(s) of the document are invalid (see `errors`); correct them, resend."
        return Problem(422, "Invalid profile document", detail, errors=errors)
    if isinstance(exc, NotEligible):
        return Problem(422, exc.title, exc.detail, type_="urn:ee:problem:not-eligible",
                       extensions={"reasons": exc.reasons})
    if isinstance(exc, NominationNotFound):
        return Problem(404, exc.title, exc.detail)
    if isinstance(exc, TransitionNotAllowed):
        return Problem(409, exc.title, exc.detail)
    assert isinstance(exc, DomainError), exc
    return Problem(409, exc.title, exc.detail)


def _stale(exc: VersionMismatch) -> Problem:
    """412 with the current ETag, as `shared.web.check_version` words it."""
    try:
        check_version(exc.expected, exc.current, what="profile")
    except Problem as problem:
        return problem
    return Problem(412, "Precondition failed", "The profile changed since you read it; read it again.")


async def _error_handler(request: Request, exc: Exception) -> Response:
    return problem_response(request, problem_for(exc))


def install_error_handlers(app: FastAPI) -> None:
    for error in (ProfileNotFound, VersionMismatch, InvalidDocument, DomainError):
        app.add_exception_handler(error, _error_handler)
