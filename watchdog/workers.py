"""Workers and their heartbeats (procrastinate's stalled-worker detection).

A worker leases each row it acts on (``claimed_by``, ``claimed_until`` = claim + one
lease). While it lives, a thread renews its heartbeat in the ``workers`` table every
third of a lease, and its rows stay its own however long a provider call takes (the
JPMMPS read timeout is 90 s, the default lease 15 s). A row whose lease ran out and whose
holder has no heartbeat younger than one lease is free to claim: a killed worker's rows
come back within one lease of its death, and at once to a worker started on the same
machine that can see the dead one's pid is gone (a restarted daemon). Late writes of a
worker presumed dead are still refused by the generation fence (``store.guarded_update``).

The heartbeat is a thread, not a job on the event loop: a loop busy with hundreds of
provider answers, or blocked in a long transaction, must not make a live worker look
dead.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, and_, case, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from watchdog.clock import Clock
from watchdog.db import transaction
from watchdog.models import Authorization, Worker

log = logging.getLogger("watchdog.workers")

HEARTBEATS_PER_LEASE = 3
"""Beats per lease: two may be lost (a slow database) before a live worker looks dead."""


def holder_is_live(now: dt.datetime, lease: dt.timedelta) -> ColumnElement[bool]:
    """SQL: the row's holder has a heartbeat younger than one lease."""
    return exists().where(Worker.id == Authorization.claimed_by, Worker.heartbeat_at >= now - lease)


def is_free(now: dt.datetime, lease: dt.timedelta) -> ColumnElement[bool]:
    """SQL: nobody holds the row, or its lease ran out and its holder stopped heartbeating."""
    return or_(
        Authorization.claimed_until.is_(None),
        and_(Authorization.claimed_until < now, ~holder_is_live(now, lease)),
    )


def beat(
    session: Session,
    worker: str,
    now: dt.datetime,
    host: str | None = None,
    pid: int | None = None,
) -> None:
    """Renew ``worker``'s heartbeat (creating its row the first time, or after another
    worker's start presumed it dead and ``forget_stale`` removed it)."""
    renewed = session.connection().execute(
        update(Worker).where(Worker.id == worker).values(heartbeat_at=now)
    ).rowcount
    if not renewed:
        session.add(Worker(id=worker, started_at=now, heartbeat_at=now, host_key=host, pid=pid))


def host_key() -> str | None:
    """This machine's boot id and this process's PID namespace, or None where they cannot
    be read: processes with the same key see each other's pids, so "pid gone" means dead
    (in a container the namespace differs from the host's and from other containers')."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot}/{namespace}"


def pid_alive(pid: int) -> bool:
    """True unless no process ``pid`` exists (one we may not signal still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def take_over_dead_neighbours(
    session: Session, worker: str, host: str | None, now: dt.datetime
) -> dict[str, int]:
    """Free at once the rows of workers on this machine whose process is gone (a daemon
    restarted after a crash, or a killed ``scan``), instead of waiting out their lease;
    their in-flight intents come due now, so recovery reads the provider's status and
    resends with the same key. Returns how many rows each one held.

    Only a worker with the same ``host_key`` counts: its pid means the same process to us.
    A pid that exists (alive, or reused) is left alone and its rows go the usual way,
    one lease after its last heartbeat.
    """
    if host is None:
        return {}
    neighbours = session.execute(
        select(Worker.id, Worker.pid).where(Worker.host_key == host, Worker.id != worker)
    ).all()
    freed: dict[str, int] = {}
    for dead, pid in neighbours:
        if pid is None or pid_alive(pid):
            continue
        freed[dead] = session.connection().execute(
            update(Authorization)
            .where(Authorization.claimed_by == dead)
            .values(
                claimed_by=None,
                claimed_until=None,
                next_action_at=case(
                    (Authorization.next_action_at > now, now),
                    else_=Authorization.next_action_at,
                ),
            )
        ).rowcount
        session.execute(delete(Worker).where(Worker.id == dead))
    return freed


def leave(session: Session, worker: str) -> None:
    """``worker`` stops cleanly: its row goes, so whatever it still holds is free once
    the lease runs out (a clean stop has given back every row it had not started)."""
    session.execute(delete(Worker).where(Worker.id == worker))


class Heartbeat:
    """A thread renewing one worker's heartbeat every third of a lease, until ``stop``."""

    def __init__(self, engine: Engine, worker: str, clock: Clock, lease: dt.timedelta) -> None:
        self.engine = engine
        self.worker = worker
        self.clock = clock
        self.lease = lease
        self.host = host_key()
        self.interval = lease.total_seconds() / HEARTBEATS_PER_LEASE
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """One renewal, now."""
        with transaction(self.engine) as session:
            beat(session, self.worker, self.clock.now(), self.host, os.getpid())

    def start(self) -> None:
        """Take over the rows of dead workers on this machine, beat once (so the first
        claim is covered), then keep beating in a thread. Workers killed earlier that hold
        nothing any more are forgotten on the way."""
        with transaction(self.engine) as session:
            now = self.clock.now()
            freed = take_over_dead_neighbours(session, self.worker, self.host, now)
            forget_stale(session, now, self.lease)
            beat(session, self.worker, now, self.host, os.getpid())
        for dead, rows in freed.items():
            log.warning(
                "rows of a dead worker on this machine taken over",
                extra={"action": "worker:takeover", "worker": self.worker, "dead": dead,
                       "rows": rows},
            )
        self._thread = threading.Thread(target=self._run, name="watchdog-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove the worker's row (its leases then run out as usual)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        try:
            with transaction(self.engine) as session:
                leave(session, self.worker)
        except Exception:  # the row goes stale by itself within a lease
            log.warning(
                "worker row not removed on stop", exc_info=True,
                extra={"action": "worker:leave:error", "worker": self.worker},
            )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - keep beating; the database may come back
                log.warning(
                    "heartbeat not renewed",
                    extra={
                        "action": "worker:heartbeat:error",
                        "worker": self.worker,
                        "error": str(exc).splitlines()[0] if str(exc) else repr(exc),
                    },
                )


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A worker as ``metrics`` and ``check`` show it."""

    worker: str
    heartbeat_at: dt.datetime | None  # None: rows held by a worker with no row (gone)
    held: int
    stalled: bool  # no heartbeat within one lease


def status(session: Session, now: dt.datetime, lease: dt.timedelta) -> list[WorkerStatus]:
    """Every worker with a heartbeat row, and every holder of leased rows, with how many
    rows each holds and whether it stopped heartbeating (its rows are free to claim once
    their lease ran out; a stalled worker still holding rows is what on-call looks at)."""
    held: dict[str, int] = {
        holder: count
        for holder, count in session.execute(
            select(Authorization.claimed_by, func.count())
            .where(Authorization.claimed_by.is_not(None))
            .group_by(Authorization.claimed_by)
        )
        if holder is not None
    }
    beats: dict[str, dt.datetime] = dict(
        session.execute(select(Worker.id, Worker.heartbeat_at)).all()
    )
    stale_before = now - lease
    result = []
    for worker in sorted(set(held) | set(beats)):
        heartbeat_at = beats.get(worker)
        result.append(
            WorkerStatus(
                worker=worker,
                heartbeat_at=heartbeat_at,
                held=held.get(worker, 0),
                stalled=heartbeat_at is None or heartbeat_at < stale_before,
            )
        )
    return result


def forget_stale(session: Session, now: dt.datetime, older_than: dt.timedelta) -> int:
    """Remove workers whose heartbeat is older than ``older_than`` and that hold nothing
    (a killed worker leaves its row behind); returns how many."""
    holds = exists().where(Authorization.claimed_by == Worker.id)
    return session.connection().execute(
        delete(Worker).where(Worker.heartbeat_at < now - older_than, ~holds)
    ).rowcount
