"""What one pass did (``PassReport``) and its row in the ``passes`` table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from watchdog.anchor import Checkpoint
from watchdog.db import transaction
from watchdog.models import Pass


@dataclass
class PassReport:
    """What one pass did, for logs, metrics and the CLI."""

    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    claimed: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    checkpoint: Checkpoint | None = None  # the audit chain's head after the pass
    audit_problem: str | None = None  # the checkpoint was refused: the table changed under it

    def count(self, step: str) -> None:
        """Tally one executed step."""
        self.steps[step] = self.steps.get(step, 0) + 1

    def summary(self) -> str:
        """One line for humans."""
        done = ", ".join(f"{k}={v}" for k, v in sorted(self.steps.items())) or "nothing due"
        text = f"claimed {self.claimed}: {done}; errors {self.errors}"
        if self.checkpoint is not None:
            cp = self.checkpoint
            text += f"; audit checkpoint rows={cp.rows} last_id={cp.last_id} head={cp.head}"
        if self.audit_problem is not None:
            text += f"; AUDIT CHECKPOINT REFUSED: {self.audit_problem}"
        return text

    def log_fields(self) -> dict[str, object]:
        """The audit checkpoint as structured log fields (the journal keeps it)."""
        if self.checkpoint is None:
            return {"audit_problem": self.audit_problem} if self.audit_problem else {}
        return {"audit_last_id": self.checkpoint.last_id, "audit_rows": self.checkpoint.rows,
                "audit_head": self.checkpoint.head, "audit_checkpoint_at": self.checkpoint.at}


def previous_pass_end(engine: Engine) -> dt.datetime | None:
    """When the last successful pass (of any worker) finished."""
    with Session(engine) as session:
        return session.execute(
            select(func.max(Pass.finished_at)).where(Pass.ok.is_(True))
        ).scalar_one_or_none()


def record_pass_start(engine: Engine, worker: str, now: dt.datetime, dry_run: bool) -> int:
    """Insert the pass row (not ok until it ends); returns its id."""
    with transaction(engine) as session:
        record = Pass(
            worker=worker,
            started_at=now,
            processed=0,
            failed=0,
            ok=False,
            dry_run=dry_run,
        )
        session.add(record)
        session.flush()
        return record.id


def record_pass_end(engine: Engine, pass_id: int, report: PassReport) -> None:
    """Complete the pass row from the report."""
    with transaction(engine) as session:
        record = session.get(Pass, pass_id)
        if record is not None:
            record.finished_at = report.finished_at
            record.processed = report.claimed
            record.failed = report.errors
            record.ok = report.errors == 0
