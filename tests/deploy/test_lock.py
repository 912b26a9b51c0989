"""deploy/requirements.lock, what install.sh installs as root, matches pyproject.toml.

The lock is made at release by scripts/lock-deploy.sh; this fails when pyproject changes
without a new lock, or when the lock loses a hash or an exact pin.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.deploy import DEPLOY

REPO = DEPLOY.parent
LOCK = DEPLOY / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(;[^\\]*)?\\?$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}\s*\\?$")


class LockError(AssertionError):
    """The lock does not hold what install.sh relies on."""


def read_lock(text: str) -> dict[str, Version]:
    """Pinned name -> version; LockError on any line that is not an exact, hashed pin."""
    pins: dict[str, Version] = {}
    hashes: dict[str, int] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            if current is None or not HASH.match(line):
                raise LockError(f"line {number}: not a sha256 hash of a pin: {line}")
            hashes[current] += 1
            continue
        match = PIN.match(line)
        if match is None:
            raise LockError(f"line {number}: not an exact '==' pin: {line}")
        current = canonicalize_name(match.group(1))
        pins[current] = Version(match.group(2))
        hashes[current] = 0
    unhashed = sorted(name for name, count in hashes.items() if count == 0)
    if unhashed:
        raise LockError(f"pins without a hash: {unhashed}")
    return pins


def check_against(pins: dict[str, Version], dependencies: list[str]) -> None:
    """LockError unless every dependency is pinned at a version its specifier allows."""
    for text in dependencies:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            raise LockError(f"{requirement.name} is in pyproject.toml but not locked")
        if not requirement.specifier.contains(pins[name], prereleases=True):
            raise LockError(f"{requirement.name}: locked {pins[name]} is outside {requirement}")


def project_dependencies() -> list[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["project"]["dependencies"])


def test_the_lock_pins_every_dependency_of_pyproject_with_hashes() -> None:
    pins = read_lock(LOCK.read_text(encoding="utf-8"))
    check_against(pins, project_dependencies())
    assert "expiry-watchdog" not in pins  # the package itself goes in after, --no-deps


def test_a_stale_or_broken_lock_is_refused() -> None:
    good = LOCK.read_text(encoding="utf-8")
    pins = read_lock(good)
    with pytest.raises(LockError, match="not locked"):
        check_against({k: v for k, v in pins.items() if k != "httpx"}, project_dependencies())
    with pytest.raises(LockError, match="outside"):
        check_against({**pins, "sqlalchemy": Version("1.4.0")}, project_dependencies())
    with pytest.raises(LockError, match="not an exact"):
        read_lock(good.replace("httpx==", "httpx>=", 1))
    unhashed = re.sub(r"(httpx==\S+) \\\n(\s+--hash=\S+ \\\n)*\s+--hash=\S+\n", r"\1\n", good)
    assert unhashed != good
    with pytest.raises(LockError, match="without a hash"):
        read_lock(unhashed)


def test_install_sh_installs_from_the_lock_with_hashes_and_wheels_only() -> None:
    script = (DEPLOY / "install.sh").read_text(encoding="utf-8")
    assert re.search(r"--require-hashes \\\n\s+--only-binary :all: --no-deps -r "
                     r"\"\$HERE/requirements.lock\"", script)
