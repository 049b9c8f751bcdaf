"""Benchmark code lives in `bench/`: no service (and nothing in `shared/`) imports it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_service_imports_bench() -> None:
    sources = [*ROOT.glob("services/*/*_service/**/*.py"), *ROOT.glob("shared/**/*.py")]
    assert len(sources) > 50
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_modules(path) if n.split(".")[0] == "bench")
        for path in sources
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_services_hold_no_benchmark_modules() -> None:
    assert sorted(p.name for p in ROOT.glob("services/*/*_service/**/bench*.py")) == []
