"""Under systemd the JSON log lines carry their syslog priority for journald."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from watchdog.logs import JournalFormatter, JsonFormatter

_CHILD = """
import logging, sys
from watchdog.logs import setup_logging
setup_logging()
logging.getLogger("t").warning("careful", extra={"action": "t:warn"})
"""


def record(level: int) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "t", "levelno": level,
                                  "levelname": logging.getLevelName(level), "msg": "m",
                                  "action": "t:x"})


def test_each_level_gets_its_syslog_priority_and_the_json_stays_intact() -> None:
    formatter = JournalFormatter(JsonFormatter())
    for level, priority in ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4),
                            (logging.ERROR, 3), (logging.CRITICAL, 2)):
        line = formatter.format(record(level))
        assert line.startswith(f"<{priority}>{{"), line
        assert json.loads(line[3:])["action"] == "t:x"


def _run(tmp_path: Path, journal_stream: str | None) -> str:
    err = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with err.open("w") as handle:
        st = os.fstat(handle.fileno())
        if journal_stream == "match":
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        elif journal_stream is not None:
            env["JOURNAL_STREAM"] = journal_stream
        subprocess.run([sys.executable, "-c", _CHILD], stderr=handle, env=env, check=True,
                       timeout=60)
    return err.read_text()


def test_prefix_only_when_stderr_is_the_journal_stream(tmp_path: Path) -> None:
    assert _run(tmp_path, "match").startswith("<4>{")
    # Not systemd's stream (stderr redirected elsewhere by a child of the unit): plain JSON.
    assert _run(tmp_path, "1:2").startswith("{")
    assert _run(tmp_path, None).startswith("{")
