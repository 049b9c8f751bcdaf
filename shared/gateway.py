"""The front door: one base URL for partners (HAProxy on 127.0.0.1:8000) and the merged API document.

Everything comes from one table, `deploy/services.conf` (`name offset route...` per line): each service
listens on `EE_PORT_BASE + offset`, the front door on the base itself, and a request whose path is one of
a service's route prefixes (or below it) goes to that service. Adding a service or a route (a fifth
service `notifications` with `/v1/webhooks`, a `/console` page) is one line there.

- `render_haproxy(...)`: HAProxy's configuration for the table: path routing, health checks on
  `/readyz`, `X-Correlation-Id` passed on (one generated when the request has none, and returned), every
  error HAProxy answers itself (no route, no instance ready, timeouts) as RFC 9457 problem+json.
- `merge_openapi(documents, table)`: one OpenAPI document for the front door: each service's operations
  under its routes (their health, metrics and admin routes are per instance, so left out), components
  merged (a name two services define differently is renamed `<service>_<name>` in the second, with its
  references), operation ids kept unique.
- `app`: the tiny process behind `/openapi.json`, `/docs`, `/healthz` and `/readyz` of the front door
  (`uvicorn shared.gateway:app`); it reads each service's `/openapi.json` (`EE_GATEWAY_UPSTREAMS`, or the
  table and `EE_PORT_BASE`) and serves the merge.

`python -m shared.gateway render-haproxy --port-base 8000` prints the configuration (`--compose`: the
compose file's)
(`deploy/local/frontdoor.sh` writes it and starts HAProxy with it).
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import httpx
import orjson
import typer
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

ROOT: Final = Path(__file__).resolve().parents[1]
SERVICES_CONF: Final = ROOT / "deploy" / "services.conf"
DEFAULT_PORT_BASE: Final = 8000
DOCS_OFFSET: Final = 90
"""The merged-document process listens on the port base + 90 (8090): clear of the services' offsets."""
DOCS_PATHS: Final = ("/openapi.json", "/docs", "/healthz", "/readyz")
CORRELATION_HEADER: Final = "X-Correlation-Id"
PROBLEM_JSON: Final = "application/problem+json"
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_ROUTE_RE: Final = re.compile(r"^/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$")


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One line of the table: a service, its port offset and the path prefixes routed to it."""

    name: str
    offset: int
    routes: tuple[str, ...]

    def port(self, port_base: int = DEFAULT_PORT_BASE) -> int:
        return port_base + self.offset

    def owns(self, path: str) -> bool:
        return any(path == route or path.startswith(route + "/") for route in self.routes)


def load_table(path: Path = SERVICES_CONF) -> tuple[ServiceEntry, ...]:
    """The service table; raises ValueError naming the line that is wrong."""
    entries: list[ServiceEntry] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, offset, *routes = line.split()
        where = f"{path.name}:{number}"
        if not _NAME_RE.match(name):
            raise ValueError(f"{where}: service name {name!r} must match {_NAME_RE.pattern}")
        if not offset.isascii() or not offset.isdigit() or not 1 <= int(offset) < DOCS_OFFSET:
            raise ValueError(f"{where}: port offset {offset!r} must be a number from 1 to {DOCS_OFFSET - 1}")
        for route in routes:
            if not _ROUTE_RE.match(route):
                raise ValueError(f"{where}: route {route!r} must be a path prefix such as /v1/profiles")
        entries.append(ServiceEntry(name, int(offset), tuple(routes)))
    columns: tuple[tuple[str, list[str]], ...] = (
        ("service", [e.name for e in entries]),
        ("port offset", [str(e.offset) for e in entries]),
        ("route", [r for e in entries for r in e.routes]),
    )
    for label, values in columns:
        doubled = sorted({v for v in values if values.count(v) > 1})
        if doubled:
            raise ValueError(f"{path.name}: {label} listed twice: {', '.join(doubled)}")
    for entry in entries:
        for route in entry.routes:
            for other in entries:
                if other is not entry and other.owns(route):
                    raise ValueError(f"{path.name}: route {route} of {entry.name} is under {other.name}'s")
    return tuple(entries)


def route_of(path: str, table: Iterable[ServiceEntry]) -> str | None:
    """The service the front door sends `path` to (None: no route, a 404)."""
    for entry in table:
        if entry.owns(path):
            return entry.name
    return None


# --- HAProxy ---------------------------------------------------------------------------------------------


def _problem(status: int, title: str, detail: str) -> str:
    return orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).decode()


_ERRORS: Final = {
    400: ("Bad request", "The front door could not read the request; check its syntax and headers."),
    403: ("Forbidden", "The front door refused the request."),
    408: ("Request timeout", "The request was not received in time; send it again."),
    500: ("Internal error", "The front door failed; retry, and report it if it keeps happening."),
    502: ("Bad gateway", "The service answered with something that is not HTTP; retry later."),
    503: (
        "Service unavailable",
        "No instance of the service that owns this path is ready (it is starting, or lost Kafka or "
        "PostgreSQL). Retry later.",
    ),
    504: (
        "Gateway timeout",
        "The service did not answer in time; retry later (with the same Idempotency-Key).",
    ),
}


_RETRIES: Final = (
    # When an instance fails, HAProxy sends the request again, to another instance (redispatch on every
    # retry). A connection that could not be made carried nothing: always safe to retry. A connection
    # that died with the request in flight (empty or junk answer: an instance killed) may have applied
    # it, so that is retried only for requests safe to repeat: GET, HEAD and OPTIONS, and any request
    # with an Idempotency-Key (the service answers a repeat with its first answer, and applies nothing
    # twice). A POST, PUT or DELETE without one gets the 502 instead: the client must find out what
    # happened before sending it again. Timeouts are never retried (the request may still be running).
    # HAProxy keeps a copy of each request for this, but only of a request it had received whole when
    # it began sending it: a client writing a PUT's body after its headers (httpx does) would lose the
    # retry, and an instance killed under it then closes the client's kept-alive connection without an
    # answer. http-buffer-request waits for the whole body first (bounded by timeout http-request), so
    # every request can be resent; one larger than the buffer (tune.bufsize, 16 kB) never is.
    "    option http-buffer-request",
    "    retry-on conn-failure empty-response junk-response",
    "    retries 3",
    "    option redispatch 1",
    "    http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS || "
    "{ req.hdr(Idempotency-Key) -m found }",
)


def render_haproxy(
    table: Iterable[ServiceEntry],
    *,
    port_base: int = DEFAULT_PORT_BASE,
    bind: str | None = None,
    servers: Mapping[str, list[str]] | None = None,
    docs_server: str | None = None,
    host: str = "127.0.0.1",
    log_target: str = "stdout",
    dns: str | None = None,
    admin_socket: str | None = None,
) -> str:
    """HAProxy's configuration: the front door on `bind` (`host:port_base`), one backend per service of
    the table with its instances (`servers[name]`, "host:port" each; default the one on host:base +
    offset), the documents process on `docs_server` (host:base + 90). The same function writes the local
    configuration and the compose file's (`deploy/compose/haproxy.cfg`), so they cannot drift apart.
    `admin_socket`: HAProxy's runtime API on that Unix socket (`set server be_x/x1 state drain`, `show
    stat`: `deploy/local/cluster.sh restart` drains an instance through it)."""
    entries = list(table)
    lines = [
        "# Written by shared.gateway from deploy/services.conf: edit the table, not this file.",
        "global",
        f"    log {log_target} format raw local0 info",
        "    maxconn 4096",
        *([f"    stats socket {admin_socket} mode 600 level admin"] if admin_socket else []),
        "",
        "defaults",
        "    mode http",
        "    log global",
        '    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc '
        '%sq/%bq cid=%[var(txn.cid)] %{+Q}r"',
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    timeout queue 10s",
        # observe layer4: a connection refused (an instance killed) takes the server out at once; the
        # health check (every second, one success) brings it back.
        "    default-server inter 1s fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down"
        + (" init-addr last,libc,none resolvers dns" if dns else ""),
        "    # HAProxy's own answers (no instance ready, timeouts, bad requests) are problem+json too.",
    ]
    for status, (title, detail) in _ERRORS.items():
        extra = " hdr Retry-After 5" if status in (503, 504) else ""
        lines.append(
            f"    http-error status {status} content-type {PROBLEM_JSON} "
            f"string '{_problem(status, title, detail)}' hdr Cache-Control no-store{extra}"
        )
    if dns:  # names resolved at run time: a service not up yet does not stop HAProxy from starting
        lines += ["", "resolvers dns", f"    nameserver dns1 {dns}", "    hold valid 10s"]
    lines += [
        "",
        "frontend front_door",
        f"    bind {bind or f'{host}:{port_base}'}",
        "    # X-Correlation-Id: passed on as the client sent it, or a new one; returned in every answer.",
        f"    http-request set-header {CORRELATION_HEADER} %[uuid(4)] "
        f"unless {{ req.hdr({CORRELATION_HEADER}) -m found }}",
        f"    http-request set-var(txn.cid) req.hdr({CORRELATION_HEADER})",
        f"    http-after-response set-header {CORRELATION_HEADER} %[var(txn.cid)] "
        "if { var(txn.cid) -m found }",
    ]
    for path in DOCS_PATHS:
        lines.append(f"    use_backend be_docs if {{ path {path} }}")
    for entry in entries:
        for route in entry.routes:
            lines.append(f"    use_backend be_{entry.name} if {{ path {route} }} || {{ path_beg {route}/ }}")
    not_found = _problem(404, "Not found", "No service answers this path at the front door; see /docs.")
    lines += [
        "    default_backend be_not_found",
        "",
        "backend be_not_found",
        f"    http-request return status 404 content-type {PROBLEM_JSON} string '{not_found}'",
        "",
    ]
    for entry in entries:
        addresses = list((servers or {}).get(entry.name) or [f"{host}:{entry.port(port_base)}"])
        lines += [
            f"backend be_{entry.name}",
            "    option httpchk",
            "    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost",
            "    http-check expect status 200",
            *_RETRIES,
            *(f"    server {entry.name}{i} {address} check" for i, address in enumerate(addresses, start=1)),
            "",
        ]
    lines += [
        "backend be_docs",
        "    option httpchk",
        "    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host localhost",
        "    http-check expect status 200",
        f"    server docs1 {docs_server or f'{host}:{port_base + DOCS_OFFSET}'} check",
        "",
    ]
    return "\n".join(lines)


def compose_haproxy(table: Iterable[ServiceEntry]) -> str:
    """The compose file's front door: every service by its compose name, HAProxy on *:8000."""
    entries = list(table)
    return render_haproxy(
        entries,
        bind=f"*:{DEFAULT_PORT_BASE}",
        servers={e.name: [f"{e.name}:{e.port()}"] for e in entries},
        docs_server=f"gateway:{DEFAULT_PORT_BASE + DOCS_OFFSET}",
        dns="127.0.0.11:53",  # Docker's embedded DNS
    )


# --- the merged OpenAPI document ----------------------------------------------------------------------


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value in renames:
                out[key] = renames[value]
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


_METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def merge_openapi(
    documents: Mapping[str, Mapping[str, Any]],
    table: Iterable[ServiceEntry],
    *,
    title: str = "Express Entry API (front door)",
) -> dict[str, Any]:
    """One OpenAPI document of the services' routed operations (see the module's docstring)."""
    entries = {entry.name: entry for entry in table}
    first = next(iter(documents.values()), {})
    merged: dict[str, Any] = {
        "openapi": first.get("openapi", "3.1.0"),
        "info": {
            "title": title,
            "version": "1",
            "description": "Every service of the Express Entry backend behind one base URL. Each operation "
            "is tagged with the service that answers it: "
            + ", ".join(
                f"`{name}` ({', '.join(entries[name].routes)})" for name in documents if name in entries
            )
            + ".",
        },
        "paths": {},
        "components": {},
        "tags": [],
    }
    operation_ids: set[str] = set()
    for name, original in documents.items():
        entry = entries.get(name)
        if entry is None:
            raise ValueError(f"{name} is not in the service table")
        doc = copy.deepcopy(dict(original))
        renames: dict[str, str] = {}
        for kind, items in (doc.get("components") or {}).items():
            target = merged["components"].setdefault(kind, {})
            for key, value in items.items():
                if key in target and target[key] != value:
                    renames[f"#/components/{kind}/{key}"] = f"#/components/{kind}/{name}_{key}"
        doc = _rewrite_refs(doc, renames)
        for kind, items in (doc.get("components") or {}).items():
            target = merged["components"][kind]
            for key, value in items.items():
                new_key = renames.get(f"#/components/{kind}/{key}", f"#/components/{kind}/{key}").rsplit(
                    "/", 1
                )[1]
                target.setdefault(new_key, value)
        for path, item in (doc.get("paths") or {}).items():
            if not entry.owns(path):
                continue  # health, metrics, admin: per instance, not through the front door
            item = dict(item)
            for method in _METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                operation["tags"] = [name, *[t for t in operation.get("tags", []) if t != name]]
                op_id = operation.get("operationId")
                if op_id is not None:
                    if op_id in operation_ids:
                        op_id = f"{name}_{op_id}"
                        operation["operationId"] = op_id
                    operation_ids.add(op_id)
            merged["paths"][path] = item
        merged["tags"].append(
            {"name": name, "description": f"the {name} service ({', '.join(entry.routes)})"}
        )
    if not merged["components"]:
        del merged["components"]
    return merged


# --- the docs process ----------------------------------------------------------------------------------


def upstreams_from_env(table: Iterable[ServiceEntry]) -> dict[str, str]:
    """Service name -> base URL: `EE_GATEWAY_UPSTREAMS` (`name=url,...`) or the table and EE_PORT_BASE."""
    raw = os.environ.get("EE_GATEWAY_UPSTREAMS", "").strip()
    if raw:
        pairs = (item.split("=", 1) for item in raw.split(",") if item.strip())
        return {name.strip(): url.strip().rstrip("/") for name, url in pairs}
    base = int(os.environ.get("EE_PORT_BASE") or DEFAULT_PORT_BASE)
    return {entry.name: f"http://127.0.0.1:{entry.port(base)}" for entry in table}


class MergedDocument:
    """Each service's `/openapi.json`, merged; cached for a few seconds."""

    def __init__(self, table: tuple[ServiceEntry, ...], upstreams: Mapping[str, str], ttl_s: float = 5.0):
        self.table = table
        self.upstreams = dict(upstreams)
        self.ttl_s = ttl_s
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def fetch(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The merge, or None and the services that did not answer."""
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl_s:
                return self._cached[1], []
            documents: dict[str, Any] = {}
            missing: list[str] = []
            async with httpx.AsyncClient(timeout=5) as client:
                answers = await asyncio.gather(
                    *(client.get(f"{url}/openapi.json") for url in self.upstreams.values()),
                    return_exceptions=True,
                )
            for name, answer in zip(self.upstreams, answers, strict=True):
                if isinstance(answer, httpx.Response) and answer.status_code == 200:
                    documents[name] = answer.json()
                else:
                    missing.append(name)
            if missing:
                return None, missing
            merged = merge_openapi(documents, self.table)
            self._cached = (time.monotonic(), merged)
            return merged, []


def create_app(
    table: tuple[ServiceEntry, ...] | None = None, upstreams: Mapping[str, str] | None = None
) -> FastAPI:
    entries = table if table is not None else load_table()
    merged = MergedDocument(entries, upstreams if upstreams is not None else upstreams_from_env(entries))
    app = FastAPI(title="front door documents", openapi_url=None, docs_url=None, redoc_url=None)

    def unavailable(missing: list[str]) -> Response:
        body = _problem(
            503, "Service unavailable",
            f"The API document of {', '.join(missing)} could not be read; retry when every service is up.",
        )  # fmt: skip
        return Response(body, status_code=503, media_type=PROBLEM_JSON, headers={"Retry-After": "5"})

    @app.get("/openapi.json")
    async def openapi() -> Response:
        document, missing = await merged.fetch()
        if document is None:
            return unavailable(missing)
        return Response(orjson.dumps(document), media_type="application/json")

    @app.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Express Entry API")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        document, missing = await merged.fetch()
        if document is None:
            return unavailable(missing)
        return JSONResponse({"status": "ready", "services": list(merged.upstreams)})

    return app


app = create_app()

cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command("render-haproxy")
def render_haproxy_command(
    port_base: Annotated[int, typer.Option(envvar="EE_PORT_BASE")] = DEFAULT_PORT_BASE,
    instances: Annotated[str, typer.Option(help="name=port+port,... (default: the table's one each)")] = "",
    compose: Annotated[
        bool, typer.Option(help="the compose file's (services by their compose names)")
    ] = False,
    admin_socket: Annotated[str, typer.Option(help="HAProxy's runtime API on this Unix socket")] = "",
) -> None:
    """Print HAProxy's configuration for the table."""
    table = load_table()
    if compose:
        typer.echo(compose_haproxy(table))
        return
    chosen: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in instances.split(","))):
        name, ports = item.split("=", 1)
        chosen[name] = [f"127.0.0.1:{int(p)}" for p in ports.split("+")]
    typer.echo(render_haproxy(table, port_base=port_base, servers=chosen, admin_socket=admin_socket or None))


@cli.command("services")
def services_command() -> None:
    """Print the table: name, offset, routes."""
    for entry in load_table():
        typer.echo(f"{entry.name} {entry.offset} {' '.join(entry.routes)}")


if __name__ == "__main__":
    cli()
