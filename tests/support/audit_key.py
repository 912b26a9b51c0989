"""The audit chain's MAC key of the test session (``watchdog.anchor``); tests/conftest.py puts
it in the environment, so PostgreSQL databases (no key file beside them) and subprocesses get it."""

TEST_AUDIT_KEY = "test-audit-key-0123456789abcdef0123456789abcdef"
