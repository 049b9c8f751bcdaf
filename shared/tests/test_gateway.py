"""The front door's table, HAProxy configuration and merged OpenAPI document (pure: no processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.gateway import ServiceEntry, load_table, merge_openapi, render_haproxy, route_of
from shared.haproxy_admin import ServerStat, parse_stat

TABLE = (
    ServiceEntry("profile", 1, ("/v1/profiles", "/v1/provinces")),
    ServiceEntry("draws", 3, ("/v1/draws",)),
)


def test_the_repository_table_routes_the_issue_s_prefixes() -> None:
    table = load_table()
    expected = {
        "/v1/profiles": "profile", "/v1/provinces/ON/nominations": "profile", "/v1/crs/calculate": "ranking",
        "/v1/pool/top": "ranking", "/v1/draws": "draws", "/v1/draws/12/invitations": "draws",
        "/v1/candidates/p1/invitations": "applications", "/v1/invitations/i1": "applications",
        "/v1/applications": "applications",
    }  # fmt: skip
    assert {path: route_of(path, table) for path in expected} == expected
    assert route_of("/v1/profilesX", table) is None
    assert route_of("/healthz", table) is None
    assert [(e.name, e.port()) for e in table[:4]] == [
        ("profile", 8001), ("ranking", 8002), ("draws", 8003), ("applications", 8004),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profile 1 /v1/profiles\nranking 1 /v1/crs\n", "port offset listed twice"),
        ("profile 1 /v1/profiles\nprofile 2 /v1/crs\n", "service listed twice"),
        ("profile 1 /v1/pool\nranking 2 /v1/pool/top\n", "is under profile's"),
        ("profile 1 v1/profiles\n", "must be a path prefix"),
        ("Profile 1 /v1/profiles\n", "service name"),
        ("profile 95 /v1/profiles\n", "port offset"),
    ],
)
def test_a_wrong_table_is_refused_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "services.conf"
    conf.write_text("# comment\n" + text)
    with pytest.raises(ValueError, match=message):
        load_table(conf)


def test_a_fifth_service_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "services.conf"
    conf.write_text("profile 1 /v1/profiles\nnotifications 5 /v1/webhooks /console\n")
    table = load_table(conf)
    config = render_haproxy(table, port_base=8000)
    assert "use_backend be_notifications if { path /v1/webhooks } || { path_beg /v1/webhooks/ }" in config
    assert "use_backend be_notifications if { path /console } || { path_beg /console/ }" in config
    assert "server notifications1 127.0.0.1:8005 check" in config


def test_several_instances_of_a_service_are_servers_of_its_backend(tmp_path: Path) -> None:
    config = render_haproxy(TABLE, servers={"draws": ["127.0.0.1:8103", "127.0.0.1:8203"]})
    assert "server draws1 127.0.0.1:8103 check" in config
    assert "server draws2 127.0.0.1:8203 check" in config
    assert "server profile1 127.0.0.1:8001 check" in config


def _doc(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas}}  # fmt: skip


def _op(op_id: str, ref: str) -> dict[str, Any]:
    return {"get": {"operationId": op_id, "responses": {"200": {"content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{ref}"}}}}}}}  # fmt: skip


def test_merge_keeps_routed_operations_renames_clashing_schemas_and_operation_ids() -> None:
    problem = {"type": "object", "properties": {"title": {"type": "string"}}}
    profile = _doc(
        {"/v1/profiles": _op("list", "Page"), "/healthz": _op("health", "Health")},
        {"Page": {"type": "object", "properties": {"items": {"type": "array"}}}, "Problem": problem,
         "Health": {"type": "object"}},
    )  # fmt: skip
    draws = _doc(
        {"/v1/draws": _op("list", "Page"), "/v1/draws/{n}": _op("one", "Problem"),
         "/metrics": _op("m", "Page")},
        {"Page": {"type": "object", "properties": {"rounds": {"type": "array"}}}, "Problem": problem},
    )  # fmt: skip
    merged = merge_openapi({"profile": profile, "draws": draws}, TABLE)
    assert sorted(merged["paths"]) == ["/v1/draws", "/v1/draws/{n}", "/v1/profiles"]
    schemas = merged["components"]["schemas"]
    assert schemas["Page"]["properties"] == {"items": {"type": "array"}}
    assert schemas["draws_Page"]["properties"] == {"rounds": {"type": "array"}}
    assert "draws_Problem" not in schemas  # the same schema is shared, not renamed
    draws_list = merged["paths"]["/v1/draws"]["get"]
    ref = draws_list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/draws_Page"
    assert draws_list["operationId"] == "draws_list" and draws_list["tags"] == ["draws"]
    assert merged["paths"]["/v1/profiles"]["get"]["operationId"] == "list"
    assert [tag["name"] for tag in merged["tags"]] == ["profile", "draws"]


def test_backends_retry_on_the_other_instance_and_resend_in_flight_writes_only_with_a_key() -> None:
    config = render_haproxy(TABLE, servers={"draws": ["127.0.0.1:8103", "127.0.0.1:8203"]})
    for backend in ("be_profile", "be_draws"):
        section = config.split(f"backend {backend}\n", 1)[1].split("\n\n", 1)[0]
        assert "retry-on conn-failure empty-response junk-response" in section
        # without it a body sent after the headers leaves HAProxy no copy to resend (HAProxy 2.6)
        assert "option http-buffer-request" in section
        assert "option redispatch 1" in section
        assert (
            "http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS || "
            "{ req.hdr(Idempotency-Key) -m found }"
        ) in section
        assert "response-timeout" not in section  # a slow request may still be running: never sent twice
    assert "observe layer4 error-limit 1 on-error mark-down" in config
    assert "stats socket" not in config
    with_socket = render_haproxy(TABLE, admin_socket="/tmp/x/haproxy.sock")
    assert "    stats socket /tmp/x/haproxy.sock mode 600 level admin" in with_socket


SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,status
front_door,FRONTEND,,,3,9,4096,120,OPEN
be_draws,draws1,0,0,2,5,,60,DRAIN
be_draws,draws2,1,1,0,4,,60,UP
be_draws,BACKEND,0,0,2,9,410,120,UP
"""


def test_show_stat_gives_each_server_s_status_and_what_is_in_flight() -> None:
    assert parse_stat(SHOW_STAT, "be_draws", "draws1") == ServerStat("DRAIN", 2, 0)
    assert parse_stat(SHOW_STAT, "be_draws", "draws2") == ServerStat("UP", 0, 1)
    with pytest.raises(ValueError, match="no server be_draws/draws3"):
        parse_stat(SHOW_STAT, "be_draws", "draws3")
    with pytest.raises(ValueError, match="not an answer of show stat"):
        parse_stat("Unknown command.\n", "be_draws", "draws1")
