"""Start every Python process of a test run with its wall clock shifted ahead.

`make test` runs the tests marked ``wallclock`` a second time with this directory on
``PYTHONPATH`` and ``WATCHDOG_TEST_CLOCK_AHEAD_DAYS`` set. Python imports ``sitecustomize`` at
start-up, so pytest and every CLI, daemon or API process it launches read the same shifted
``time.time()`` and ``datetime.now()`` (time-machine; the monotonic clock, sleeps and timeouts are
untouched). A test that registers a fixed calendar date and runs it against the real clock passes
on the day it was written and fails here, a year before it would have failed on main.
"""

import datetime as _dt
import os as _os

_DAYS = _os.environ.get("WATCHDOG_TEST_CLOCK_AHEAD_DAYS")
if _DAYS:
    import time_machine as _time_machine

    _shift = _dt.timedelta(days=float(_DAYS))
    _travel = _time_machine.travel(_dt.datetime.now(_dt.UTC) + _shift, tick=True)
    _travel.start()
