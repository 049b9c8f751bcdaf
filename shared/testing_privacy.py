"""Test helpers for personal data (docs/PRIVACY.md): where could a marker written into a profile still be?

`pg_dump_text(url)` is a plain `pg_dump` of one database (data and schema); `kafka_segment_files(topic
prefix)` the log segment files of the local broker for topics under a prefix (DLQs included);
`markers_in(blob, markers)` the markers found. A test writes unique markers into a profile, erases it,
and asserts that none of them is found anywhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit


async def pg_dump_text(url: str) -> bytes:
    """`pg_dump` of the database at `url` (postgresql+asyncpg://user:pass@host:port/name)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    executable = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    process = await asyncio.create_subprocess_exec(
        executable,
        "--no-owner",
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "ee",
        parts.path.lstrip("/"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(f"pg_dump of {parts.path} failed: {err.decode(errors='replace')}")
    return out


def local_kafka_log_dirs() -> list[Path]:
    """The `log.dirs` of every Kafka broker running on this machine (from their server.properties).

    Every broker, not the first found: a test's topics carry a prefix of their own, so searching the
    other brokers' directories (a private fault-test cluster, another checkout's broker) costs only time,
    while picking the wrong broker would find nothing and pass a test that should fail.
    """
    dirs: list[Path] = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            properties = Path(args[args.index(b"kafka.Kafka") + 1].decode())
            lines = properties.read_text().splitlines()
        except (OSError, ValueError, IndexError):
            continue  # not a broker, or one that exited while we looked
        for line in lines:
            if line.startswith("log.dirs="):
                dirs.extend(Path(d) for d in line.split("=", 1)[1].split(",") if Path(d) not in dirs)
    if not dirs:
        raise AssertionError("no Kafka broker runs on this machine: its log segments cannot be searched")
    return dirs


def kafka_segment_files(topic_prefix: str) -> list[Path]:
    """Every log segment of the local broker's topics whose name starts with `topic_prefix`."""
    files: list[Path] = []
    for log_dir in local_kafka_log_dirs():
        for partition_dir in log_dir.glob(f"{topic_prefix}*"):
            files.extend(sorted(partition_dir.glob("*.log")))
    return files


def markers_in(blob: bytes, markers: Iterable[str]) -> list[str]:
    """The markers found in `blob` (compared as bytes, also case-folded)."""
    lowered = blob.lower()
    return [m for m in markers if m.encode() in blob or m.lower().encode() in lowered]
