"""Fixtures for tests that run the real command as a separate process (helpers:
``tests/support/cli.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from watchdog.sandbox.server import SandboxServer


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """The in-repo provider sandbox on a free loopback port."""
    with SandboxServer() as server:
        yield server
