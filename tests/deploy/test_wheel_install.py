"""The built wheel works on its own: the migrations (alembic/) ship inside it.

Builds a wheel from a copy of the source tree (so the build leaves nothing in
the working tree), installs it into a brand-new plain venv (no editable
install, no --system-site-packages; dependencies come from the package index
or pip's cache), and from a directory outside the repository runs
`db upgrade` and `scan` against a temp SQLite file.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.deploy import REPO, clean_env, run, sqlite_config

pytestmark = pytest.mark.slow

_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*_cache",
    ".hypothesis", "demo", "*.db", "*.db-*",
)


def test_wheel_in_a_fresh_venv_migrates_and_scans(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    dist = tmp_path / "dist"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source],
                timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("expiry_watchdog-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as archive:
        names = set(archive.namelist())
    # The checkout's alembic/ travels as watchdog/_alembic (setup.py), every revision of it.
    assert "watchdog/_alembic/env.py" in names and "watchdog/_alembic/script.py.mako" in names
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("watchdog/_alembic/versions/")}
    assert shipped == {p.name for p in (REPO / "alembic" / "versions").glob("*.py")}

    venv = tmp_path / "venv"
    created = run([sys.executable, "-m", "venv", venv], timeout=120)
    assert created.returncode == 0, created.stderr
    installed = run([venv / "bin/python", "-m", "pip", "install", "--quiet", wheels[0]],
                    timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = clean_env()
    env.pop("PYTHONPATH", None)
    where = run([venv / "bin/python", "-c", "import watchdog; print(watchdog.__file__)"],
                cwd=work, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    cli = venv / "bin/expiry-watchdog"
    config = sqlite_config(work / "watchdog.toml", work / "watchdog.db")
    upgrade = run([cli, "--config", config, "db", "upgrade"], cwd=work, env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.startswith("database at ")
    current = run([cli, "--config", config, "db", "current"], cwd=work, env=env)
    assert current.returncode == 0, current.stdout + current.stderr
    scan = run([cli, "--config", config, "scan"], cwd=work, env=env)
    assert scan.returncode == 0, scan.stderr
    assert "claimed 0" in scan.stdout
