"""The ``expiry-watchdog`` command line (``main``, also run by ``python -m watchdog``).

``app`` holds the root group and the core commands; ``api`` (``serve``, ``tokens``),
``oncall`` (``check``, ``ack``, ``notify``, ``alerts``) and ``control`` (``pause``,
``resume``, ``approve``, ``explain``, ``resolve``) are imported only when one of their
commands runs; ``common`` is what they all share (context object, operator, error output).
"""

from watchdog.cli.app import main

__all__ = ["main"]
