"""Two runs of one job at once on one storage root, the first killed with SIGKILL.

Each run of identity is a process of its own (a JVM each), as two schedulers or a
scheduler and a person would start them. The second waits for the first's lease; the
first dies right after its first table write (``PRECIS_FAULT=identity:1``,
precis.faults); the second takes the lease over at once (its holder's process is gone)
and finishes: the tables equal those of one uninterrupted run. The same lease guards
every job; crashes of each job at several writes, then reruns, are in test_faults.py,
and a run unwilling to wait for a holder exits 75 naming it there too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from precis import tables as T
from test_faults import assert_same_tables
from worlds import PROJECT, RUN_DATE, SETTINGS

pytestmark = pytest.mark.slow


def _job(root: Path, job: str, *more: str, fault: str | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", "precis", job, "--run-date", RUN_DATE]
    for setting in [f"storage.root={root}", "mlflow.enabled=false", *SETTINGS, *more]:
        args += ["--set", setting]
    env = {k: v for k, v in os.environ.items() if k not in ("PRECIS_ENV", "PYSPARK_GATEWAY_PORT")}
    if fault:
        env["PRECIS_FAULT"] = fault
    return subprocess.Popen(
        args, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _finish(proc: subprocess.Popen, timeout: int = 900) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _wait_for_holder(spark, root: Path, job: str, proc: subprocess.Popen) -> None:
    """Until ``proc`` holds ``job``'s lease (read from this process, like any reader)."""
    path = f"{root}/meta/leases"
    for _ in range(600):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            if spark.read.format("delta").load(path).filter(F.col("job") == job).count():
                return
        except AnalysisException:  # not created yet, or being created
            pass
        time.sleep(1)
    raise AssertionError(f"{job} never took its lease")


def test_two_runs_at_once_the_first_killed_the_second_finishes_as_one(
    spark, small_ingested, uninterrupted, tmp_path
):
    root = tmp_path / "lakehouse"
    shutil.copytree(small_ingested, root)  # the small world, ingested
    first = _job(root, "identity", fault="identity:1")
    _wait_for_holder(spark, root, "identity", first)
    second = _job(root, "identity")  # started while the first holds the lease: it waits
    code, out = _finish(first)
    assert code == -signal.SIGKILL and "killed after write" in out, out[-3000:]
    code, out = _finish(second)
    assert code == 0, out[-3000:]
    # It waited for a live holder, then took over at once when it died.
    assert "waiting for" in out and "its process is gone" in out, out[-3000:]
    # The uninterrupted run's identity tables (its later jobs write others).
    tables = [T.IDENTITY_MAP, T.RECORD_IDENTITY, T.IDENTITY_CHANGES, T.IDENTITY_GUARDS]
    assert_same_tables(spark, uninterrupted, root, tables)
