"""The layers point inward, and the domain and use cases import no infrastructure.

Runs import-linter on the contracts in ``pyproject.toml``; a broken contract fails the suite.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    assert LINT_IMPORTS.exists(), "import-linter is missing: pip install -e '.[dev]'"
    env = {**os.environ, "PYTHONPATH": str(project / "src")}  # ahead of the editable install's path
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


def test_a_torch_import_in_the_domain_breaks_a_contract(tmp_path):
    """Proves the check bites (the forbidden contract needs ``include_external_packages``)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "src" / "eurosat_service", tmp_path / "src" / "eurosat_service",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "src" / "eurosat_service" / "domain" / "land_cover.py", "a") as f:
        f.write("\nimport torch  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "The domain and use cases import no infrastructure BROKEN" in result.stdout
    assert "eurosat_service.domain.land_cover -> torch" in result.stdout


def test_each_entrypoint_imports_only_the_heavy_libraries_it_uses():
    """torch costs about 3 s and boto3 0.3 s at start-up: the deploy job needs neither until it
    calls AWS, and the API serving a local model never needs boto3."""
    probe = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
             "print(' '.join(m for m in ('torch', 'boto3') if m in sys.modules))")
    for entrypoint in ("deploy", "api", "train"):
        result = subprocess.run([sys.executable, "-c", probe, f"eurosat_service.entrypoints.{entrypoint}"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "", f"{entrypoint} imports {result.stdout.strip()} at start"


def test_every_deferred_adapter_resolves():
    """A typo in a ``deferred("module:name")`` string would only fail when that provider runs."""
    from eurosat_service.entrypoints import container

    targets = [t.split('"')[0] for t in Path(container.__file__).read_text().split('deferred("')[1:]]
    assert len(targets) >= 2
    for target in targets:
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name, None)), target
