"""Well-known test credentials the in-repo sandbox accepts (never real secrets).

Each provider's live in its dialect module (``DIALECT.credentials``); ``SANDBOX_ENV`` is
all of them, by the watchdog's variable name, ready for ``os.environ.update``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from watchdog.sandbox.dialect import dialects


class _SandboxEnv(Mapping[str, str]):
    """Every dialect's credentials in one mapping, read from the dialects on each access."""

    def _all(self) -> dict[str, str]:
        return {k: v for d in dialects() for k, v in d.credentials.items()}

    def __getitem__(self, variable: str) -> str:
        return self._all()[variable]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


SANDBOX_ENV: Mapping[str, str] = _SandboxEnv()
