"""The pipeline's ledger: which (run date, job) finished, so a rerun resumes.

``meta/pipeline_runs`` holds one row per (run date, job): ``done`` with the versions of
the tables the job read (``precis.tables.READS``), or ``failed`` with the error. A rerun
of the same dates skips what is done and starts at the first (date, job) that is not;
``pipeline.force`` runs everything again. Pure functions here; the pipeline job reads
and writes the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from precis.columns import RUN_DATE

#: Columns of meta/pipeline_runs.
SCHEMA = (
    f"{RUN_DATE} date, job string, status string, started_at timestamp, "
    "finished_at timestamp, seconds double, inputs map<string,bigint>, error string"
)
DONE, FAILED = "done", "failed"

#: A backfill longer than this is almost surely a typo in --from (a year instead of a day).
MAX_DATES = 3660


@dataclass(frozen=True)
class Step:
    run_date: dt.date
    job: str
    done: bool  # finished before: skipped unless forced


def run_dates(first: dt.date | None, last: dt.date) -> list[dt.date]:
    """Every date from ``first`` to ``last``, in order (``last`` alone without ``first``)."""
    first = first or last
    if first > last:
        raise ValueError(f"pipeline.from_date ({first}) is after the run date ({last})")
    days = (last - first).days + 1
    if days > MAX_DATES:
        raise ValueError(f"a backfill of {days} dates ({first} to {last}); at most {MAX_DATES}")
    return [first + dt.timedelta(days=i) for i in range(days)]


def plan(
    dates: Sequence[dt.date], jobs: Sequence[str], done: Iterable[tuple[dt.date, str]]
) -> list[Step]:
    """The (date, job)s of a run in order, each marked whether the ledger has it done."""
    finished = set(done)
    return [Step(d, job, (d, job) in finished) for d in dates for job in jobs]


def row(
    step: Step,
    started: dt.datetime,
    finished: dt.datetime,
    inputs: Mapping[str, int],
    error: BaseException | None = None,
) -> tuple[object, ...]:
    """The ledger row of one attempt (columns of :data:`SCHEMA`)."""
    reason = None
    if error is not None:
        text = str(error).strip()
        reason = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:2000]
    return (
        step.run_date,
        step.job,
        DONE if error is None else FAILED,
        started,
        finished,
        round((finished - started).total_seconds(), 3),
        dict(inputs),
        reason,
    )
