"""One writer per job and storage root: a lease in ``meta/leases``.

A run takes its job's lease before it reads anything and gives it back when it ends,
however it ends. The lease row names its holder (``owner``: host, process id and a
random part), when it was taken, and until when it holds (``expires_at``); a thread
renews it every quarter of ``runner.lease_seconds``. A second run of the job waits for
the lease, up to ``runner.lock_wait_seconds``, then stops with :class:`LockedError`
(exit code 75) naming the holder. A holder that stopped renewing (its machine died) is
taken over once its lease expires; a holder on this machine whose process is gone (it
was killed) is taken over at once, so a rerun after a crash does not wait. A pipeline
takes its own lease and its jobs' together (a row each, one owner), for its whole run.

Taking the lease is one MERGE that inserts the row or replaces an expired one. Delta
commits optimistically: of two runs that MERGE at the same moment, one commit fails
with a concurrent-modification error, and that run reads the row again and waits. Only
SQL is used, so this works over Spark Connect as well.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pyspark.sql import Row, SparkSession

from precis.errors import LockedError
from precis.progress import log
from precis.storage.delta import delta_table
from precis.tables import LEASES

SCHEMA = (
    "job string, owner string, host string, pid long, "
    "acquired_at timestamp, heartbeat_at timestamp, expires_at timestamp"
)

#: Words in the errors of Delta's optimistic concurrency control (commit conflicts, and
#: two runs creating the same table at once).
_CONFLICTS = ("Concurrent", "DELTA_CONCURRENT", "FileAlreadyExists", "ProtocolChanged")

R = TypeVar("R")


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a Delta commit conflict: another writer committed first."""
    text = f"{type(exc).__name__} {exc}"
    return any(word in text for word in _CONFLICTS)


def retrying(action: Callable[[], R], what: str, attempts: int = 6) -> R:
    """``action()``, repeated with a growing pause while it fails with a commit conflict.

    Only for idempotent actions (a MERGE on keys, a replaceWhere), which may simply run
    again against the table the other writer left."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_conflict(exc):
                raise
            pause = min(0.5 * 2**attempt, 10.0)
            log.warning(
                "%s: concurrent commit, retrying in %.1fs (%d/%d)", what, pause, attempt, attempts
            )
            time.sleep(pause)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Holder:
    job: str
    owner: str
    host: str
    pid: int
    acquired_at: dt.datetime
    expires_at: dt.datetime

    def describe(self) -> str:
        return (
            f"{self.owner} (host {self.host}, pid {self.pid}, since "
            f"{self.acquired_at:%Y-%m-%d %H:%M:%S}, lease until {self.expires_at:%H:%M:%S})"
        )

    def gone(self) -> bool:
        """Whether the holder is a process of this machine that no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # exists, another user's
            return False
        return False


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease of ``jobs`` (one job, or a pipeline and the jobs it runs) on the tables
    under ``root``, for one run: one row per job, taken and given back together."""

    def __init__(
        self, spark: SparkSession, root: str, jobs: str | Sequence[str], seconds: int
    ) -> None:
        self.jobs = (jobs,) if isinstance(jobs, str) else tuple(dict.fromkeys(jobs))
        self.spark, self.job, self.seconds = spark, self.jobs[0], seconds
        self.table = delta_table(f"{root}/{LEASES.layer}/{LEASES.name}")
        self.owner = new_owner()

    # ------------------------------------------------------------------ acquire
    def acquire(self, wait_seconds: float) -> None:
        """Take the lease, waiting up to ``wait_seconds``; LockedError naming the holder."""
        deadline = time.monotonic() + wait_seconds
        announced = 0.0
        while True:
            self._take(replacing=None)
            holder = self.holder()
            if holder is not None and holder.owner != self.owner and holder.gone():
                log.warning(
                    "[%s] taking over the lease of %s: its process is gone",
                    self.job,
                    holder.describe(),
                )
                self._take(replacing=holder.owner)
                holder = self.holder()
            if holder is None:
                continue  # released between the two statements: take it again
            if holder.owner == self.owner:
                return
            if len(self.jobs) > 1:
                # Never wait holding part: two runs each waiting for the other's part
                # would wait for nothing.
                self.release()
            now = time.monotonic()
            if now >= deadline:
                raise LockedError(
                    f"another {holder.job} run holds this storage root: {holder.describe()}; "
                    f"waited {wait_seconds:.0f}s (runner.lock_wait_seconds)"
                )
            if now - announced >= 30:
                log.info("[%s] waiting for %s", self.job, holder.describe())
                announced = now
            time.sleep(min(2.0, max(deadline - now, 0.1)))

    def holder(self) -> Holder | None:
        """Who holds the lease: this run when it holds every job's row, else the first
        other holder of one of them; None when a job has no row."""
        rows = self.spark.sql(
            f"SELECT * FROM {self.table} WHERE job IN ({_listed(self.jobs)}) ORDER BY job, owner"
        ).collect()
        # Two rows of a job only if two creators raced on an empty table: the first by
        # owner wins, the other sees it here and waits.
        first: dict[str, Holder] = {}
        for row in rows:
            first.setdefault(row["job"], _holder(row))
        if any(job not in first for job in self.jobs):
            return None
        others = [h for h in first.values() if h.owner != self.owner]
        return others[0] if others else first[self.job]

    def _create(self) -> None:
        self.spark.sql(f"CREATE TABLE IF NOT EXISTS {self.table} ({SCHEMA}) USING DELTA").collect()

    def _take(self, replacing: str | None) -> None:
        """Insert this run's rows, or replace expired ones (or the gone ``replacing``)."""
        free = "t.expires_at < s.heartbeat_at"
        if replacing is not None:
            free += f" OR t.owner = '{_quoted(replacing)}'"
        statement = (
            f"MERGE INTO {self.table} t USING ({self._rows_sql()}) s ON t.job = s.job "
            f"WHEN MATCHED AND ({free}) THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )
        try:
            self.spark.sql(statement).collect()
        except Exception as exc:
            if _missing(exc):  # the first run on this root: create the table, then take
                retrying(self._create, "meta/leases")
                return self._take(replacing)
            if not is_conflict(exc):
                raise
            # Another run committed first: whoever it is, the next holder() tells.

    def _rows_sql(self) -> str:
        host, pid = socket.gethostname(), os.getpid()
        return " UNION ALL ".join(
            f"SELECT '{_quoted(job)}' AS job, '{self.owner}' AS owner, '{_quoted(host)}' AS host, "
            f"CAST({pid} AS BIGINT) AS pid, {_NOW} AS acquired_at, {_NOW} AS heartbeat_at, "
            f"{_NOW} + make_dt_interval(0, 0, 0, {self.seconds}) AS expires_at"
            for job in self.jobs
        )

    # ------------------------------------------------------------------ hold
    def renew(self) -> None:
        retrying(
            lambda: self.spark.sql(
                f"UPDATE {self.table} SET heartbeat_at = {_NOW}, "
                f"expires_at = {_NOW} + make_dt_interval(0, 0, 0, {self.seconds}) "
                f"WHERE owner = '{self.owner}'"
            ).collect(),
            "meta/leases",
        )

    def release(self) -> None:
        retrying(
            lambda: self.spark.sql(
                f"DELETE FROM {self.table} WHERE owner = '{self.owner}'"
            ).collect(),
            "meta/leases",
        )


#: The session's clock (precis sessions run in UTC); compared only with itself.
_NOW = "current_timestamp()"


def _missing(exc: Exception) -> bool:
    text = f"{getattr(exc, 'getCondition', lambda: '')() or ''} {exc}"
    return any(
        c in text
        for c in (
            "DELTA_MISSING_DELTA_TABLE",
            "PATH_NOT_FOUND",
            "not a Delta table",
            "DELTA_TABLE_NOT_FOUND",
        )
    )


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _listed(names: Sequence[str]) -> str:
    return ", ".join(f"'{_quoted(name)}'" for name in names)


def _holder(row: Row) -> Holder:
    return Holder(
        row["job"],
        row["owner"],
        row["host"],
        int(row["pid"]),
        row["acquired_at"],
        row["expires_at"],
    )


@contextlib.contextmanager
def held(
    spark: SparkSession,
    root: str,
    jobs: str | Sequence[str],
    *,
    wait_seconds: float,
    lease_seconds: int,
) -> Iterator[Lease]:
    """Hold the lease of ``jobs`` on ``root`` for the ``with`` block, renewing it meanwhile."""
    lease = Lease(spark, root, jobs, lease_seconds)
    job = lease.job
    lease.acquire(wait_seconds)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(lease_seconds / 4):
            try:
                lease.renew()
            except Exception as exc:  # the run goes on; the lease may lapse
                log.warning("[%s] could not renew the lease: %s", job, exc)

    beat = threading.Thread(target=heartbeat, name=f"precis-lease-{job}", daemon=True)
    beat.start()
    failed = True
    try:
        yield lease
        failed = False
    finally:
        # Not joined: a renewal under way ends on its own (its UPDATE then matches no
        # row), and waiting for it would add a commit to every run.
        stop.set()
        try:
            lease.release()
        except Exception as exc:
            if not failed:
                raise
            # The run's own error is the one to report (a Java heap exhausted, say, can
            # leave the session unable to run the DELETE). The row left behind is taken
            # over at once by the next run on this machine, or once it expires.
            log.warning("[%s] could not give the lease back after the run failed: %s", job, exc)
