"""The OpenAPI links of the four services (schemathesis's stateful phase follows them) point at real
operations with real parameters, and carry the ETag as If-Match into the commands (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from applications_service.main import build_app as applications_app
from draws_service.main import build_app as draws_app
from profile_service.main import build_app as profile_app
from ranking_service.main import build_app as ranking_app

BUILDERS: dict[str, Callable[[], FastAPI]] = {
    "profile": profile_app,
    "ranking": ranking_app,
    "draws": draws_app,
    "applications": applications_app,
}
METHODS = ("get", "put", "post", "delete", "patch")


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: op
        for item in document["paths"].values()
        for method, op in item.items()
        if method in METHODS
    }


def parameter_names(operation: dict[str, Any]) -> set[str]:
    names = set()
    for parameter in operation.get("parameters", []):
        where = parameter["in"]
        names.add(parameter["name"] if where in ("path", "query") else f"{where}.{parameter['name']}")
    return names


@pytest.mark.parametrize("service", list(BUILDERS))
def test_every_link_names_an_operation_and_its_parameters(service: str) -> None:
    app: FastAPI = BUILDERS[service]()
    document = app.openapi()
    by_id = operations(document)
    found = 0
    for operation in by_id.values():
        for response in operation["responses"].values():
            for name, link in response.get("links", {}).items():
                target = by_id.get(link["operationId"])
                assert target is not None, f"{service}: link {name} to a missing {link['operationId']}"
                unknown = set(link["parameters"]) - parameter_names(target)
                assert not unknown, f"{service}: link {name} sets {unknown}, not parameters of its target"
                found += 1
    assert found >= 1, f"{service} has no OpenAPI links"


def test_the_profile_commands_are_reached_from_a_created_profile_with_its_etag() -> None:
    document = profile_app().openapi()
    created = document["paths"]["/v1/profiles"]["post"]["responses"]["201"]["links"]
    assert created["SubmitProfile"]["parameters"] == {
        "profile_id": "$response.body#/id",
        "header.If-Match": "$response.header.ETag",
    }
