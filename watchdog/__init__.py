"""expiry-watchdog: acts on manual-capture payment authorizations before they expire.

Not to be confused with the unrelated PyPI package ``watchdog`` (file-system
events), which uses the same import name; this project never depends on it.
"""

__version__ = "0.1.0"
