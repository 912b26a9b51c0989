"""Build hook: the wheel carries the top-level ``alembic/`` migrations as ``watchdog/_alembic``,
so a pip-installed daemon can run ``expiry-watchdog db upgrade`` (``watchdog.schema`` looks
there first). Everything else about the package is in pyproject.toml. An editable install
copies nothing: ``watchdog.schema`` then finds the checkout's ``alembic/`` in place."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MIGRATIONS = Path(__file__).resolve().parent / "alembic"
SHIPPED = ("env.py", "script.py.mako", "versions/*.py")


class BuildWithMigrations(build_py):
    """``build_py`` plus a copy of ``alembic/`` into ``watchdog/_alembic`` of the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "watchdog" / "_alembic"
        shutil.rmtree(target, ignore_errors=True)
        for pattern in SHIPPED:
            for source in sorted(MIGRATIONS.glob(pattern)):
                destination = target / source.relative_to(MIGRATIONS)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
        if not (target / "env.py").is_file():
            raise SystemExit(f"no alembic migrations in {MIGRATIONS}: the wheel would ship none")


setup(cmdclass={"build_py": BuildWithMigrations})
