"""Workers in ``metrics`` and ``check``: each one's last heartbeat and the rows it holds, and
a worker that stopped heartbeating while holding rows stands out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from watchdog import store
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.health import make_metrics_app
from watchdog.metrics import Metrics
from watchdog.workers import Heartbeat

from .test_check import _pass, _register, _run
from .test_metrics import _get, _samples


def _two_workers(engine: Engine, config: Config, clock: FrozenClock) -> dt.datetime:
    """``live`` beat just now and holds 2 rows; ``dead`` beat two leases ago and holds 3."""
    lease = config.scheduler.lease
    for n in range(5):
        _register(engine, config, clock, f"W{n}", dt.timedelta(hours=30))  # due: alert_lead
    dead_beat = clock.now()
    live = Heartbeat(engine, "live", clock, lease)
    live.beat()
    assert len(store.claim_due(engine, "live", clock.now(), lease, 2)) == 2
    Heartbeat(engine, "dead", clock, lease).beat()
    assert len(store.claim_due(engine, "dead", clock.now(), lease, 3)) == 3
    clock.advance(2 * lease)
    live.beat()  # live keeps beating (its rows stay its own), dead stopped
    _pass(engine, clock.now() - dt.timedelta(seconds=5))
    return dead_beat


def test_check_names_a_stalled_worker_holding_rows(
    engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path,
) -> None:
    _two_workers(engine, config, clock)
    result = _run(config.database_url, tmp_path, clock)
    assert result.exit_code == 1, result.output
    assert "worker dead holds 3 rows with no heartbeat for 30s" in result.output
    assert "live" not in result.output.split("|")[0]
    assert "workers=1 stalled_workers=1 rows_held_by_stalled=3" in result.output


def test_metrics_show_each_workers_heartbeat_rows_held_and_the_stalled_ones(
    engine: Engine, config: Config, clock: FrozenClock,
) -> None:
    dead_beat = _two_workers(engine, config, clock)
    s = _samples(_get(make_metrics_app(engine, config, clock, Metrics()), "/metrics").text)
    assert s[("expiry_watchdog_worker_heartbeat_timestamp_seconds", (("worker", "live"),))] \
        == clock.now().timestamp()
    assert s[("expiry_watchdog_worker_heartbeat_timestamp_seconds", (("worker", "dead"),))] \
        == dead_beat.timestamp()
    assert s[("expiry_watchdog_worker_rows_held", (("worker", "live"),))] == 2
    assert s[("expiry_watchdog_worker_rows_held", (("worker", "dead"),))] == 3
    assert s[("expiry_watchdog_stalled_workers", ())] == 1
    assert s[("expiry_watchdog_rows_held_by_stalled_workers", ())] == 3
