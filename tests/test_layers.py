"""The layer rules (docs/architecture.md, "Layers") hold: ``lint-imports`` with the contracts of ``.importlinter``.

The contracts are checked on the tree as it is, and on a copy of the ``app`` package with deliberate violations,
which must each be caught: a contract that cannot fail would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.paths import REPO

CONFIG = REPO / ".importlinter"


def _lint_imports() -> str:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        found = shutil.which("lint-imports")
        if found is None:
            pytest.skip("import-linter is not installed (pip install import-linter): the layer contracts are unchecked")
        exe = Path(found)
    return str(exe)


def run_contracts(root: Path, config: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the ``app`` package found first under ``root``, with ``config``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([_lint_imports(), "--no-cache", str(config)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_layer_contracts_hold():
    result = run_contracts(REPO, CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    for name in ("Layers: views > api > services > render > science > data > core",
                 "app.core imports no other Fumarole module", "Only app.data.catalog imports intake",
                 "app.sample sits just above app.data"):
        assert f"{name}" in result.stdout and "KEPT" in result.stdout


#: Deliberate violations, one per contract: (module added to a copy of app, its code, what lint-imports must say).
VIOLATIONS = [
    ("app/core/_bad_core.py", "from app.data import errors\n", "app.core._bad_core -> app.data.errors"),
    ("app/views/_bad_view.py", "import app.sample.scenario\n", "app.views._bad_view -> app.sample.scenario"),
    ("app/api/_bad_api.py", "from app.sample import archive\n", "app.api._bad_api -> app.sample.archive"),
    ("app/science/_bad_intake.py", "import intake\n", "app.science._bad_intake -> intake"),
    ("app/data/_bad_layer.py", "from app.render import colormaps\n", "app.data._bad_layer -> app.render.colormaps"),
    ("app/sample/_bad_sample.py", "from app.science import units\n", "app.sample._bad_sample -> app.science.units"),
]


def test_deliberate_violations_are_each_caught(tmp_path):
    shutil.copytree(REPO / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, code, _ in VIOLATIONS:
        (tmp_path / rel).write_text(f'"""A deliberate layer violation (tests/test_layers.py)."""\n{code}')
    with (tmp_path / "app" / "data" / "index.py").open("a") as f:  # the index may not open files itself
        f.write("\n\nimport netCDF4  # noqa: E402 - a deliberate violation: the index opening files itself\n")
    config = tmp_path / ".importlinter"
    config.write_text(CONFIG.read_text())
    result = run_contracts(tmp_path, config)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "6 broken" in out, out
    for _, _, says in VIOLATIONS:
        assert says in out, f"{says!r} not reported:\n{out}"
    assert "app.data.index is not allowed to import netCDF4" in out
    assert "app.cli -> app.sample.cli" not in out  # the one allowed import of app.sample stays allowed
