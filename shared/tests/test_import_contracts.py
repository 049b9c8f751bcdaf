"""The layer contracts of `[tool.importlinter]` (pyproject.toml) hold, also when only `make test` runs
(CI): domains pure, application without adapters, services apart, no bench or test imports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_service_package_is_a_root_of_the_contracts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    services = {p.name for p in ROOT.glob("services/*/*_service") if (p / "__init__.py").exists()}
    assert services, "no service package found"
    assert services <= set(config["root_packages"]), "add the new service to [tool.importlinter]"
    independent = next(c for c in config["contracts"] if c["id"] == "services-independent")
    assert services <= set(independent["modules"])


def test_the_layer_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
