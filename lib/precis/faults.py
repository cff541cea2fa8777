"""A hook for fault tests: stop a job right after its N-th table write.

``PRECIS_FAULT=identity:3`` makes the process SIGKILL itself right after the third
table write (a Delta commit or an export) made while the ``identity`` job runs: no
``finally`` block, no lease release, no ledger row, as when a machine dies. In a test's
own process, :func:`crash_after` raises :class:`Crashed` at that point instead, which
no job catches, so the tables are left exactly as the kill would leave them. Tests use
both to prove that a rerun after a crash at any point gives the tables of an
uninterrupted run. Unset (always, outside tests), the hook does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar

ENV = "PRECIS_FAULT"

_job: ContextVar[str | None] = ContextVar("precis_job", default=None)
_writes: Counter[str] = Counter()
_planned: dict[str, int] = {}


class Crashed(BaseException):
    """Raised by the hook under :func:`crash_after`; a BaseException, so no job's
    ``except Exception`` turns it into a handled failure."""


@contextlib.contextmanager
def running(job: str) -> Iterator[None]:
    """Count the table writes made inside the block as ``job``'s."""
    token = _job.set(job)
    _writes[job] = 0
    try:
        yield
    finally:
        _job.reset(token)


@contextlib.contextmanager
def crash_after(job: str, writes: int) -> Iterator[None]:
    """Within the block, raise :class:`Crashed` right after ``job``'s ``writes``-th write."""
    _planned[job] = writes
    try:
        yield
    finally:
        _planned.pop(job, None)


def after_write(what: str) -> None:
    """Called by the lakehouse after each write; stops the job when a test says so."""
    job = _job.get()
    if job is None:
        return
    target, _, count = os.environ.get(ENV, "").partition(":")
    if job != target and job not in _planned:
        return
    _writes[job] += 1
    if job in _planned and _writes[job] == _planned[job]:
        raise Crashed(f"{job}: crashed after write {_writes[job]} ({what})")
    if job == target and _writes[job] == int(count or 1):
        print(f"precis {job}: {ENV}: killed after write {count} ({what})", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
