"""HTTP API: register, instruct, query. See ``create_app`` and ``watchdog.api.server``."""

from __future__ import annotations

from watchdog.api.app import create_app

__all__ = ["create_app"]
