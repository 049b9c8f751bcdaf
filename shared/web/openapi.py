"""The OpenAPI document: every error response is `application/problem+json` with the ProblemDetails schema."""

from __future__ import annotations

from typing import Any

from shared.problem import PROBLEM_JSON, ProblemDetails

__all__ = ["ERROR_RESPONSES", "problem_json_in_openapi"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ProblemDetails, "description": "Client error (RFC 9457 problem details)."},
    "5XX": {
        "model": ProblemDetails,
        "description": "Server error, or a dependency unavailable (503 with Retry-After).",
    },
}


def problem_json_in_openapi(schema: dict[str, Any]) -> None:
    """Error responses are documented as `application/problem+json` with the ProblemDetails schema."""
    ref = {"$ref": "#/components/schemas/ProblemDetails"}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                if not (str(code)[:1] in ("4", "5") or code == "default"):
                    continue
                content = response.get("content") or {}
                json_schema = (content.pop("application/json", None) or {}).get("schema") or {}
                if PROBLEM_JSON not in content:
                    content[PROBLEM_JSON] = {
                        "schema": json_schema if json_schema.get("$ref") == ref["$ref"] else ref
                    }
                response["content"] = content
    components = schema.get("components", {}).get("schemas", {})
    text = str(schema.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f"/{unused}'" not in text:
            del components[unused]
    if "ProblemDetails" not in components:
        components["ProblemDetails"] = ProblemDetails.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )


def links(**targets: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """OpenAPI links of a response (what a client, or schemathesis's stateful phase, can call next).

    `links(GetThing=("get_thing", {"thing_id": "$response.body#/id"}))`; a parameter named
    `header.If-Match` with `$response.header.ETag` carries the ETag along.
    """
    return {
        name: {"operationId": operation_id, "parameters": parameters}
        for name, (operation_id, parameters) in targets.items()
    }
