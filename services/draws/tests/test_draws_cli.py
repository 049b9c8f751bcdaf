"""The ops CLI against the draws service served over a real port (PostgreSQL, Kafka, ranking stand-in)."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from draws_fixtures import *  # noqa: F403  (the fixtures)
from draws_fixtures import NOW, candidate
from draws_ranking_peer import RankingPeer, serve
from typer.testing import CliRunner, Result

from draws_service.cli import cli
from draws_service.main import build_app
from draws_service.settings import DrawsSettings
from shared.clock import Clock

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def draws_url(
    draws_settings: DrawsSettings,
    draws_topics: DrawsSettings,
    draws_database: str,
    ranking: tuple[RankingPeer, str],
) -> AsyncIterator[str]:
    app = build_app(draws_settings.model_copy(update={"ranking_url": ranking[1]}), clock=Clock.frozen(NOW))
    server, task, url = await serve(app, lifespan="on")
    yield url
    server.should_exit = True
    await task


async def run_cli(url: str, settings: DrawsSettings, *args: str) -> Result:
    """Run the CLI in a thread, so this event loop keeps serving the app it talks to."""
    options = ["--url", url, "--secret", settings.auth_secret, "--sub", "ops-tester"]
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli, [*options, *args], env={"COLUMNS": "200"})


async def test_plan_hold_export_and_list(
    draws_url: str, draws_settings: DrawsSettings, pool: RankingPeer, clean_db: None, tmp_path: Path
) -> None:
    pool.load([candidate(450 + i % 30, minutes=i, programs=("fsw", "cec")) for i in range(3000)])
    planned = await run_cli(draws_url, draws_settings, "plan", "--type", "cec", "--size", "2500")
    assert planned.exit_code == 0, planned.output
    assert "2,500 of 2,500 asked" in planned.output and "Cut-off CRS" in planned.output

    export = tmp_path / "itas.csv"
    held = await run_cli(
        draws_url,
        draws_settings,
        "hold",
        "-t",
        "cec",
        "-n",
        "2500",
        "--key",
        "cli-1",
        "--yes",
        "--export",
        str(export),
    )
    assert held.exit_code == 0, held.output
    assert "Reading back the invitations" in held.output and "2500/2500" in held.output
    with export.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2500 and rows[0]["rank"] == "1" and rows[0]["program"] == "cec"

    again = await run_cli(
        draws_url, draws_settings, "hold", "-t", "cec", "-n", "2500", "--key", "cli-1", "--yes"
    )
    assert again.exit_code == 0 and "had already held the round" in again.output

    listed = await run_cli(draws_url, draws_settings, "list")
    assert listed.exit_code == 0 and "Canadian Experience Class" in listed.output and "2,500" in listed.output
    shown = await run_cli(draws_url, draws_settings, "show", "1")
    assert shown.exit_code == 0 and "Round 1" in shown.output


async def test_errors_are_one_readable_line_and_exit_1(
    draws_url: str, draws_settings: DrawsSettings, clean_db: None
) -> None:
    bad = await run_cli(draws_url, draws_settings, "hold", "-t", "lottery", "-n", "5", "--yes")
    assert bad.exit_code == 1 and "unknown round type 'lottery'" in bad.output
    missing = await run_cli(draws_url, draws_settings, "show", "42")
    assert missing.exit_code == 1 and "404 Round not found" in missing.output
    down = await run_cli("http://127.0.0.1:9", draws_settings, "list")
    assert down.exit_code == 1 and "cannot reach the draws service" in down.output
