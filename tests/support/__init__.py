"""Helpers that start real, throwaway servers (PostgreSQL, Alertmanager) for tests.

System binaries come from ``scripts/ci-setup.sh``; a missing binary raises
``MissingBinaryError`` (tests must fail, not skip).
"""

from .alertmanager import AlertmanagerServer
from .postgres import MissingBinaryError, PostgresServer, ServerStartError

__all__ = ["AlertmanagerServer", "MissingBinaryError", "PostgresServer", "ServerStartError"]
