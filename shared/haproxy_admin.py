"""HAProxy's runtime API (its admin socket): drain an instance before restarting it, and wait for it.

Standard library only, so that `python -m shared.haproxy_admin` starts in a fraction of the time
`shared.gateway` (FastAPI, httpx, typer) takes: `deploy/local/cluster.sh restart` and `rolling-restart`
call it twice per instance, on machines where the cores are busy.

    python -m shared.haproxy_admin server-state --socket RUN/haproxy.sock be_profile/profile1 drain \
        --wait-idle 60
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from dataclasses import dataclass


def haproxy_command(socket_path: str, command: str, timeout_s: float = 5.0) -> str:
    """Send one command to HAProxy's runtime API (the admin socket) and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout_s)
        conn.connect(socket_path)
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


@dataclass(frozen=True, slots=True)
class ServerStat:
    """One server of a backend as `show stat` reports it."""

    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2" (going down), ...
    sessions: int  # current sessions (requests in flight on it)
    queued: int  # requests waiting for it


def parse_stat(csv_text: str, backend: str, server: str) -> ServerStat:
    """The line of `show stat` (CSV, first line `# pxname,svname,...`) of `backend`/`server`."""
    lines = csv_text.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"not an answer of show stat: {csv_text[:200]!r}")
    columns = lines[0][2:].split(",")
    for line in lines[1:]:
        row = dict(zip(columns, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") == server:
            return ServerStat(row["status"], int(row["scur"] or 0), int(row["qcur"] or 0))
    raise ValueError(f"HAProxy has no server {backend}/{server}")


def set_server_state(
    socket_path: str,
    backend: str,
    server: str,
    state: str,
    *,
    wait_idle_s: float = 0.0,
    wait_up_s: float = 0.0,
    interval_s: float = 0.1,
) -> ServerStat:
    """`set server <backend>/<server> state <state>` (ready, drain or maint); then, when asked, wait
    until nothing is in flight on it (`wait_idle_s`: after drain or maint) or until HAProxy sends it
    traffic again (`wait_up_s`: its health check passed after ready). Raises TimeoutError."""
    if state not in ("ready", "drain", "maint"):
        raise ValueError(f"state must be ready, drain or maint, not {state!r}")
    answer = haproxy_command(socket_path, f"set server {backend}/{server} state {state}").strip()
    if answer:
        raise ValueError(f"HAProxy refused 'set server {backend}/{server} state {state}': {answer}")
    deadline = time.monotonic() + max(wait_idle_s, wait_up_s)
    while True:
        stat = parse_stat(haproxy_command(socket_path, "show stat"), backend, server)
        idle = stat.sessions == 0 and stat.queued == 0
        if (not wait_idle_s or idle) and (not wait_up_s or stat.status == "UP"):
            return stat
        if time.monotonic() > deadline:
            want = "idle" if wait_idle_s else "UP"
            raise TimeoutError(f"{backend}/{server} not {want} in time: {stat}")
        time.sleep(interval_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.haproxy_admin")
    commands = parser.add_subparsers(dest="command", required=True)
    state = commands.add_parser("server-state", help="set one server's state (and wait until idle, or UP)")
    state.add_argument("--socket", required=True, help="HAProxy's admin socket")
    state.add_argument("server", help="backend/server, e.g. be_profile/profile1")
    state.add_argument("state", choices=("ready", "drain", "maint"))
    state.add_argument(
        "--wait-idle", type=float, default=0.0, help="then wait up to this many s for 0 in flight"
    )
    state.add_argument(
        "--wait-up", type=float, default=0.0, help="then wait up to this many s for it to be UP"
    )
    args = parser.parse_args(argv)
    backend, _, name = args.server.partition("/")
    try:
        stat = set_server_state(
            args.socket, backend, name, args.state, wait_idle_s=args.wait_idle, wait_up_s=args.wait_up
        )
    except (OSError, ValueError, TimeoutError) as exc:
        print(f"{args.server}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.server}: {stat.status}, {stat.sessions} in flight, {stat.queued} queued")
    return 0


if __name__ == "__main__":
    sys.exit(main())
