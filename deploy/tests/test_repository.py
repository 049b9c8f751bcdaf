"""The repository stands alone (issue 12): nothing in it needs a file outside its checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
OUTSIDE: Final = ".." + "/shared"  # written in two parts so this file does not match itself


def tracked_files() -> list[Path]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False, timeout=60)
    if done.returncode == 0:
        return [ROOT / name for name in done.stdout.decode().split("\0") if name]
    skip = {".git", ".venv", ".local", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def test_no_file_refers_to_the_shared_folder_beside_the_checkout() -> None:
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(errors="ignore")
        except (IsADirectoryError, FileNotFoundError):
            continue
        if OUTSIDE in text:
            found.append(str(path.relative_to(ROOT)))
    assert not found, f"files that read or cite a path outside the checkout: {found}"


def test_the_bench_reads_ircc_data_from_the_repository() -> None:
    from bench.ircc import DATA_DIR, ircc_distribution

    assert DATA_DIR.is_relative_to(ROOT), DATA_DIR
    assert (DATA_DIR / "README.md").exists()
    assert ircc_distribution(DATA_DIR).total > 100_000


def test_every_service_has_a_readme_and_the_docs_the_readme_names_exist() -> None:
    from shared.gateway import load_table

    for entry in load_table():
        if (ROOT / "services" / entry.name).exists():
            assert (ROOT / "services" / entry.name / "README.md").exists(), entry.name
    readme = (ROOT / "README.md").read_text()
    for doc in ("docs/DESIGN.md", "docs/ARCHITECTURE.md", "docs/PLATFORM.md", "deploy/local/README.md"):
        assert doc in readme and (ROOT / doc).exists(), doc
    migrations = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("services/*/*_service/migrations"))
    assert migrations and "services/<name>/<name>_service/migrations" in readme, migrations
