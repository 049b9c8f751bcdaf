"""Operations CLI of the draws service: plan, hold and list rounds of invitations over HTTP.

    python -m draws_service.cli plan --type cec --size 2000
    python -m draws_service.cli hold --type healthcare --size 3500 --export itas.csv
    python -m draws_service.cli list --limit 20
    python -m draws_service.cli show 444

It talks to the draws service (`--url`, `EE_DRAWS_URL`, default http://127.0.0.1:8003) with an ops
token it mints itself from `EE_AUTH_SECRET` (the same secret the services verify with).
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from shared.auth import DEV_SECRET, mint_token

DEFAULT_URL = "http://127.0.0.1:8003"
PAGE = 2_000
INVITATION_FIELDS = (
    "rank",
    "profile_id",
    "owner",
    "program",
    "crs",
    "citizenship",
    "submitted_at",
    "deadline",
)

cli = typer.Typer(help="Plan, hold and list Express Entry rounds of invitations.", no_args_is_help=True)
console = Console()


class CliError(Exception):
    """A failure to report in one sentence and exit 1."""


@dataclass
class DrawsClient:
    http: httpx.Client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the draws service at {self.http.base_url} ({exc}); start it, or pass --url"
            ) from exc
        if response.status_code >= 400:
            raise CliError(_problem_text(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def invitations(self, round_id: str) -> Iterator[list[dict[str, Any]]]:
        after = 0
        while True:
            page = self.json(
                "GET", f"/v1/draws/{round_id}/invitations", params={"limit": PAGE, "after": after}
            )
            yield page["items"]
            if page["next_after"] is None:
                return
            after = page["next_after"]


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"the draws service answered {response.status_code}: {response.text[:200]}"
    detail = body.get("detail") if isinstance(body, dict) else None
    title = body.get("title") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    lines = [f"{response.status_code} {title or 'Error'}: {detail or body}"]
    lines += [f"  {e.get('field')}: {e.get('message')}" for e in errors or []]
    return "\n".join(lines)


def _fail(error: CliError) -> NoReturn:
    console.print(f"[bold red]error:[/] {error}", highlight=False)
    raise typer.Exit(1)


def _client(ctx: typer.Context) -> DrawsClient:
    client: DrawsClient = ctx.obj
    return client


@cli.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(envvar="EE_DRAWS_URL", help="Base URL of the draws service.")
    ] = DEFAULT_URL,
    secret: Annotated[
        str,
        typer.Option(
            envvar="EE_AUTH_SECRET", help="Secret the ops token is signed with.", show_default=False
        ),
    ] = DEV_SECRET,
    sub: Annotated[str, typer.Option(envvar="USER", help="Who is acting (the token's `sub`).")] = "ops",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 120.0,
) -> None:
    token = mint_token(secret, sub, "ops", ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    ctx.obj = DrawsClient(httpx.Client(base_url=url, headers=headers, timeout=timeout))
    ctx.call_on_close(ctx.obj.http.close)


# -- rendering ------------------------------------------------------------------------------------


def _plan_table(plan: dict[str, Any]) -> Table:
    table = Table(title=f"Plan: {plan['name']}", show_header=False)
    rows = [
        ("Would invite", f"{plan['would_invite']:,} of {plan['size']:,} asked"),
        ("Cut-off CRS", str(plan["cutoff_crs"] if plan["cutoff_crs"] is not None else "-")),
        ("Tie-breaking rule", plan["tie_break_at"] or "-"),
        ("Eligible now", f"{plan['eligible_count']:,} (pool {plan['pool_size']:,})"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def _distribution_table(plan: dict[str, Any]) -> Table:
    table = Table(title="Scores of the would-be invited")
    table.add_column("CRS")
    table.add_column("Candidates", justify="right")
    table.add_column("")
    top = max((b["count"] for b in plan["distribution"]), default=0) or 1
    for row in plan["distribution"]:
        if row["count"]:
            table.add_row(row["range"], f"{row['count']:,}", "█" * max(1, round(30 * row["count"] / top)))
    return table


def _rounds_table(rounds: list[dict[str, Any]], title: str = "Rounds of invitations") -> Table:
    table = Table(title=title)
    for column in ("#", "Date and time (UTC)", "Round type", "Invitations", "CRS", "Tie-breaking rule"):
        table.add_column(column, justify="right" if column in ("#", "Invitations", "CRS") else "left")
    for r in rounds:
        ircc = r["ircc"]
        table.add_row(
            ircc["drawNumber"],
            ircc["drawDateTime"],
            ircc["drawName"],
            ircc["drawSize"],
            ircc["drawCRS"] or "-",
            ircc["drawCutOff"] or "-",
        )
    return table


# -- commands -------------------------------------------------------------------------------------


RoundTypeOpt = Annotated[
    str, typer.Option("--type", "-t", help="general, cec, fsw, fst, pnp or a category code.")
]
SizeOpt = Annotated[int, typer.Option("--size", "-n", min=1, help="How many invitations at most.")]


@cli.command()
def plan(ctx: typer.Context, round_type: RoundTypeOpt, size: SizeOpt) -> None:
    """Dry run: who would be invited now. Nothing is written."""
    try:
        with console.status("Asking for the current selection..."):
            result = _client(ctx).json("POST", "/v1/draws/plan", json={"type": round_type, "size": size})
    except CliError as error:
        _fail(error)
    console.print(_plan_table(result))
    console.print(_distribution_table(result))


@cli.command()
def hold(
    ctx: typer.Context,
    round_type: RoundTypeOpt,
    size: SizeOpt,
    key: Annotated[
        str | None, typer.Option(help="Idempotency-Key; reuse it to retry a round safely.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    export: Annotated[Path | None, typer.Option(help="Write the invitations to this CSV file.")] = None,
) -> None:
    """Hold a round: plan it, confirm, hold it, then read back every invitation it issued."""
    client = _client(ctx)
    key = key or str(uuid.uuid4())
    try:
        if not yes:
            plan(ctx, round_type, size)
            typer.confirm(f"Hold this round (Idempotency-Key {key})?", abort=True)
        console.print(f"Idempotency-Key: [bold]{key}[/] (pass --key {key} to retry this very round)")
        held = _hold(client, round_type, size, key)
        _read_back(client, held, export)
    except CliError as error:
        _fail(error)
    console.print(_rounds_table([held], title="Round held"))


def _hold(client: DrawsClient, round_type: str, size: int, key: str) -> dict[str, Any]:
    with console.status(f"Holding a round of up to {size:,} invitations..."):
        response = client.request(
            "POST", "/v1/draws", json={"type": round_type, "size": size}, headers={"Idempotency-Key": key}
        )
    if response.headers.get("Idempotent-Replayed") == "true":
        console.print("[yellow]This key had already held the round; showing that round.[/]")
    held: dict[str, Any] = response.json()
    return held


def _read_back(client: DrawsClient, held: dict[str, Any], export: Path | None) -> None:
    """Page through the invitations with a progress bar; check the count; optionally write a CSV."""
    total = held["invitations"]
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    seen = 0
    with Progress(*columns, console=console) as progress, _csv(export) as writer:
        task = progress.add_task("Reading back the invitations", total=total)
        for items in client.invitations(held["id"]):
            for item in items:
                writer(item)
            seen += len(items)
            progress.update(task, completed=seen)
    if seen != total:
        raise CliError(
            f"round {held['round_number']} reports {total:,} invitations but {seen:,} were read back"
        )
    if export is not None:
        console.print(f"Wrote {seen:,} invitations to {export}")


@contextmanager
def _csv(path: Path | None) -> Iterator[Callable[[dict[str, Any]], Any]]:
    """A row writer for `--export`, or a no-op without it."""
    if path is None:
        yield lambda item: None
        return
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=INVITATION_FIELDS, extrasaction="ignore")
        writer.writeheader()
        yield writer.writerow


@cli.command("list")
def list_rounds(
    ctx: typer.Context, limit: Annotated[int, typer.Option(min=1, max=500, help="How many rounds.")] = 20
) -> None:
    """The latest rounds, as IRCC publishes them."""
    try:
        rounds = _client(ctx).json("GET", "/v1/draws", params={"limit": limit})["items"]
    except CliError as error:
        _fail(error)
    console.print(_rounds_table(rounds))


@cli.command()
def show(ctx: typer.Context, round_ref: Annotated[str, typer.Argument(help="Round number or id.")]) -> None:
    """One round as published."""
    try:
        found = _client(ctx).json("GET", f"/v1/draws/{round_ref}")
    except CliError as error:
        _fail(error)
    console.print(_rounds_table([found], title=f"Round {found['round_number']}"))


if __name__ == "__main__":
    cli()
