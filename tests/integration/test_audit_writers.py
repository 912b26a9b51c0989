"""Every writer of the audit chain in one worker process makes progress together.

On PostgreSQL the chain is serialised by an advisory lock held until commit. The group
committer's transactions used to run on the event loop (SQLAlchemy's asyncio driver):
while one of them held the lock and awaited its INSERT or COMMIT, a synchronous audit
write on the loop's thread (a recovery check, an alert, the alert sender) waited for the
lock and so blocked the very loop that would have finished the lock holder. Two
connections of one process waiting on each other, which PostgreSQL's deadlock detector
cannot see (one of the waits is in the client): seen as a daemon silent for 22 s that
then ignored SIGTERM in the kill-storm test. This test interleaves both kinds of writer
and fails, instead of hanging, if they ever wait on each other.
"""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import Engine, text

from watchdog import audit
from watchdog.audit import AuditEvent
from watchdog.clock import FrozenClock
from watchdog.db import transaction
from watchdog.scan.committer import GroupCommitter

ROUNDS = 60
BUDGET_SECONDS = 30.0


def test_loop_and_committer_audit_writes_never_wait_on_each_other(
    engine: Engine, clock: FrozenClock,
) -> None:
    committer = GroupCommitter(engine, clock)
    now = clock.now()
    before = audit.verify(engine).rows  # the migrations may have written the chain's first row

    def committer_append(n: int):  # type: ignore[no-untyped-def]
        return lambda session: audit.append(
            session, [AuditEvent(event="test:committer:append", actor="w", detail={"n": n})], now)

    async def interleave() -> None:
        try:
            pending = []
            for n in range(ROUNDS):
                pending.append(asyncio.create_task(committer.transactions.run(committer_append(n))))
                for _ in range(n % 4):
                    await asyncio.sleep(0)  # let the committer's transaction get under way
                with transaction(engine) as session:  # a synchronous write on the loop thread
                    audit.append(session, [AuditEvent(event="test:loop:append", actor="w",
                                                      detail={"n": n})], now)
            await asyncio.gather(*pending)
        finally:
            await committer.aclose()

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(interleave())
        except BaseException as exc:  # reported by the test thread
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(BUDGET_SECONDS)
    stuck = worker.is_alive()
    waits = ""
    if stuck and engine.dialect.name == "postgresql":
        # Show who waits on what, then end the sessions so the thread (and pytest) can go on.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            waits = "\n".join(str(tuple(r)) for r in conn.execute(text(
                "SELECT pid, state, wait_event_type, wait_event, left(query, 60) "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")))
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        worker.join(10)
    assert not stuck, f"audit writers of one process waited on each other:\n{waits}"
    assert failure == []
    assert audit.verify(engine).rows == before + 2 * ROUNDS
