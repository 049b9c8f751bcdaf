"""Connection options of the platform's database engine (pure: nothing is connected)."""

from __future__ import annotations

import pytest

from shared.db import asyncpg_connect_args


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://ee:ee@127.0.0.1:5432/ranking",
        "postgresql+asyncpg://ee:ee@localhost/ranking",
        "postgresql+asyncpg://ee:ee@[::1]:5432/ranking",
        "postgresql+asyncpg://ee:ee@/ranking?host=/var/run/postgresql",
        "postgresql+asyncpg://ee:ee@/ranking",
    ],
)
def test_a_server_on_this_machine_is_spoken_to_without_tls(url: str) -> None:
    assert asyncpg_connect_args(url) == {"ssl": False}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://ee:ee@db.internal:5432/ranking",
        "postgresql+asyncpg://ee:ee@10.0.0.5/ranking",
        "postgresql+asyncpg://ee:ee@127.0.0.1/ranking?ssl=require",
        "postgresql+asyncpg://ee:ee@localhost/ranking?sslmode=verify-full",
    ],
)
def test_remote_servers_and_explicit_choices_keep_their_tls(url: str) -> None:
    assert asyncpg_connect_args(url) == {}
