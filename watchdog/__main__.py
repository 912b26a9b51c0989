"""``python -m watchdog`` is the same as ``expiry-watchdog``."""

from watchdog.cli import main

main()
