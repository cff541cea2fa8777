"""Crashes: one writer per job, and a rerun after a crash gives an uninterrupted run's tables.

The lease tests run in this process (those through ``one_writer`` are marked ``lease``:
conftest.py leaves the lease out of other in-process job runs). The crash test stops
jobs with the test-only hook ``precis.faults.crash_after`` right after a job's n-th
table write (an exception no job catches, so the tables are left as a kill would leave
them), reruns them, and compares every table with those of an uninterrupted run of the
same world, row by row (without the columns that say when and by which run). A real
SIGKILL of a job's own process, while a second run waits for its lease, is in
test_concurrency.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import faults
from precis import tables as T
from precis.config import load_config
from precis.errors import LockedError
from precis.frames import digest
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.storage.lease import Lease, held, is_conflict, retrying
from worlds import JOBS, PROJECT, copy_world, run_job

# Wall-clock and lineage columns: when and by which run, not what.
VOLATILE = {
    "model_version",
    "map_version",  # the Delta version of gold/identity_map: reruns commit more versions
    "run_id",
    "ingest_run_id",
    "ingested_at",
    "changed_at",
    "created_at",
    "updated_at",
    "finished_at",
    "computed_at",
    "_source_file",
    "source_file",
}


# ------------------------------------------------------------------ the lease
#: Seconds of the leases these tests hold: one that expired while a loaded machine ran the
#: test's next statement would be taken over, and the test would check the wrong thing.
HOLD = 3600


def _lake(spark, tmp_path) -> Lakehouse:
    return Lakehouse(spark, str(tmp_path / "lakehouse"))


def test_a_second_run_waits_then_exits_naming_the_holder(spark, tmp_path):
    lake = _lake(spark, tmp_path)
    first = Lease(spark, lake.root, "ingest", HOLD)
    first.acquire(0)
    second = Lease(spark, lake.root, "ingest", HOLD)
    with pytest.raises(LockedError) as caught:
        second.acquire(1)
    message = str(caught.value)
    assert message.startswith("another ingest run holds this storage root: " + first.owner)
    assert f"pid {os.getpid()}" in message and "runner.lock_wait_seconds" in message
    assert caught.value.exit_code == 75
    # Another job's lease is another row: identity runs while ingest holds its own.
    other = Lease(spark, lake.root, "identity", HOLD)
    other.acquire(0)
    first.release()
    second.acquire(0)
    holders = lake.read(T.LEASES).select("job", "owner").orderBy("job").collect()
    assert [tuple(r) for r in holders] == [("identity", other.owner), ("ingest", second.owner)]
    second.release()
    other.release()
    assert lake.read(T.LEASES).count() == 0


def _insert_lease(spark, lake, job: str, owner: str, pid: int, expires: str) -> None:
    Lease(spark, lake.root, job, HOLD)._take(replacing=None)  # creates the table
    spark.sql(f"DELETE FROM delta.`{lake.path(T.LEASES)}`")
    spark.sql(
        f"INSERT INTO delta.`{lake.path(T.LEASES)}` SELECT '{job}', '{owner}', "
        f"'{os.uname().nodename}', {pid}, current_timestamp(), current_timestamp(), {expires}"
    )


def test_a_killed_holder_on_this_machine_is_taken_over_at_once(spark, tmp_path):
    lake = _lake(spark, tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer exists
    _insert_lease(spark, lake, "tags", "crashed", dead.pid, "current_timestamp() + INTERVAL 1 HOUR")
    lease = Lease(spark, lake.root, "tags", HOLD)
    lease.acquire(0)
    assert lease.holder().owner == lease.owner


def test_an_expired_lease_of_another_machine_is_taken_over(spark, tmp_path):
    lake = _lake(spark, tmp_path)
    _insert_lease(spark, lake, "tags", "elsewhere", 1, "current_timestamp() - INTERVAL 1 SECOND")
    spark.sql(f"UPDATE delta.`{lake.path(T.LEASES)}` SET host = 'another-host'")
    lease = Lease(spark, lake.root, "tags", HOLD)
    lease.acquire(0)
    assert lease.holder().owner == lease.owner
    # Unexpired and not on this machine: it waits.
    spark.sql(
        f"UPDATE delta.`{lake.path(T.LEASES)}` SET owner = 'elsewhere', host = 'another-host', pid = 1, "
        "expires_at = current_timestamp() + INTERVAL 1 HOUR"
    )
    with pytest.raises(LockedError, match="elsewhere \\(host another-host, pid 1"):
        Lease(spark, lake.root, "tags", HOLD).acquire(0)


def test_held_renews_and_releases(spark, tmp_path):
    lake = _lake(spark, tmp_path)
    with held(spark, lake.root, "forget", wait_seconds=0, lease_seconds=10) as lease:
        first = lease.holder()
        # A renewal every 2.5 s; on a loaded machine its commit may come much later.
        renewed = lease.holder()
        for _ in range(120):
            if renewed.expires_at > first.expires_at:
                break
            threading.Event().wait(1)
            renewed = lease.holder()
    assert renewed.owner == first.owner and renewed.expires_at > first.expires_at
    assert lake.read(T.LEASES).count() == 0


@pytest.mark.lease
def test_job_main_exits_75_with_the_holder(spark, tmp_path, capsys):
    root = tmp_path / "lakehouse"
    blocker = Lease(spark, str(root), "selfcheck", 60)
    blocker.acquire(0)

    @one_writer("selfcheck")
    def run(spark, cfg):  # pragma: no cover - never reached
        raise AssertionError("ran without the lease")

    argv = ["--set", f"storage.root={root}", "--set", "runner.lock_wait_seconds=0"]
    assert job_main("selfcheck", run, argv) == 75
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("precis selfcheck: error: another selfcheck run holds this storage root")
    assert blocker.owner in err
    blocker.release()


@pytest.mark.lease
def test_a_pipeline_holds_its_jobs_leases_in_one_row_set_and_its_jobs_run_inside(spark, tmp_path):
    lake = _lake(spark, tmp_path)
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={lake.root}",
            "runner.lock_wait_seconds=0",
            "pipeline.jobs=[selfcheck, rekey]",
        ],
    )
    seen = []

    @one_writer("selfcheck")
    def inner(spark, cfg):  # called by the pipeline below: its lease is held already
        seen.append(lake.read(T.LEASES).select("job", "owner").orderBy("job").collect())

    @one_writer("pipeline", runs=lambda cfg: cfg.pipeline.jobs)
    def outer(spark, cfg):
        inner(spark, cfg)
        # A run of one of its jobs from elsewhere waits for the whole pipeline.
        with pytest.raises(LockedError, match="another rekey run holds this storage root"):
            Lease(spark, lake.root, "rekey", HOLD).acquire(0)

    outer(spark, cfg)
    (rows,) = seen
    assert [r["job"] for r in rows] == ["pipeline", "rekey", "selfcheck"]
    assert len({r["owner"] for r in rows}) == 1
    assert lake.read(T.LEASES).count() == 0
    # A pipeline never waits holding part of its leases: rekey is held, so the others
    # are given back.
    blocker = Lease(spark, lake.root, "rekey", HOLD)
    blocker.acquire(0)
    with pytest.raises(
        LockedError, match=f"another rekey run holds this storage root: {blocker.owner}"
    ):
        outer(spark, cfg)
    assert [tuple(r) for r in lake.read(T.LEASES).select("job", "owner").collect()] == [
        ("rekey", blocker.owner)
    ]
    blocker.release()


def test_conflicts_are_retried_and_other_errors_are_not():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("io.delta.exceptions.ConcurrentAppendException: files added")
        return "done"

    assert retrying(flaky, "t", attempts=4) == "done" and len(calls) == 3
    assert is_conflict(RuntimeError("[DELTA_CONCURRENT_WRITE] ..."))
    assert not is_conflict(ValueError("bad column"))
    with pytest.raises(ValueError):
        retrying(lambda: (_ for _ in ()).throw(ValueError("bad column")), "t")


# ------------------------------------------------------------------ crashes
def _tables(lake: Lakehouse) -> list[T.Table]:
    candidates = [
        *T.BRONZE.values(),
        T.QUARANTINE,
        *T.SILVER.values(),
        T.IDENTITY_MAP,
        T.RECORD_IDENTITY,
        T.IDENTITY_CHANGES,
        T.IDENTITY_GUARDS,
        T.IDENTITY_STATE,
        T.IDENTITY_RECORDS,
        T.CUSTOMER_VALUE,
        T.PROFILE_TAGS,
        T.PROFILES,
        T.SEGMENTS,
        T.TAG_CHANGES,
        T.TAG_STATS,
        T.RECOMMENDATIONS,
        T.INGEST_FILES,
    ]
    return [t for t in candidates if lake.exists(t)]


def _content(lake: Lakehouse, table: T.Table):
    df = lake.read(table)
    if "path" in df.columns:  # a landed file's path, from the lakehouse's own folder on
        df = df.withColumn("path", F.regexp_extract("path", "/(landing/.*)$", 1))
    return df.select(*sorted(c for c in df.columns if c.lstrip("_") not in VOLATILE))


def assert_same_tables(spark, expected_root: Path, actual_root: Path, tables=None) -> None:
    expected, actual = Lakehouse(spark, str(expected_root)), Lakehouse(spark, str(actual_root))
    tables = tables or _tables(expected)
    assert [t.ref for t in tables if actual.exists(t)] == [t.ref for t in tables]
    for table in tables:
        want, got = _content(expected, table), _content(actual, table)
        if digest(want) == digest(got):
            continue
        missing, extra = want.exceptAll(got), got.exceptAll(want)
        raise AssertionError(
            f"{table.ref}: missing {missing.limit(3).collect()}, extra {extra.limit(3).collect()}"
        )


def _model_versions(root: Path, name: str) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root.parent}/mlflow/mlflow.db")
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))


# Ingest after its first dataset and in its fifth; identity after its map (its first
# write, the change log, is killed for real in test_concurrency.py, then rerun and
# compared the same way); inside tags; recommend after its snapshot, before the export.
# (Lifecycle writes only its run date's snapshots, as tags do.)
CRASHES = {"ingest": (2, 10), "identity": (2,), "lifecycle": (), "tags": (2,), "recommend": (1,)}


def test_crashed_at_several_points_then_rerun_gives_the_same_tables(
    spark, landed, uninterrupted, tmp_path
):
    root = copy_world(landed, tmp_path)
    # recommend with MLflow: its model registered once, however often it ran.
    tracked = ("mlflow.enabled=true", "recommend.log_model=true")
    for job in JOBS:
        more = tracked if job == "recommend" else ()
        for writes in CRASHES[job]:
            with faults.crash_after(job, writes), pytest.raises(faults.Crashed):
                run_job(root, job, *more)
        run_job(root, job, *more)

    assert_same_tables(spark, uninterrupted, root)
    lake = Lakehouse(spark, str(root))
    changes = lake.read(T.IDENTITY_CHANGES)
    assert changes.count() > 0
    assert changes.count() == changes.select(*T.IDENTITY_CHANGES.keys).distinct().count()
    assert _model_versions(root, "precis-recommend-als") == ["1"]
    stamped = lake.read(T.RECOMMENDATIONS).select("model_version").distinct().collect()
    assert [r[0] for r in stamped] == ["precis-recommend-als/1"]


@pytest.mark.lease
def test_a_crashed_run_gives_its_lease_back(spark, tmp_path):
    lake = _lake(spark, tmp_path)
    cfg = load_config(PROJECT / "conf" / "base.yaml", [f"storage.root={lake.root}"])

    @one_writer("tags")
    def run(spark, cfg):  # killed right after its first table write, lease held
        assert [r["job"] for r in lake.read(T.LEASES).collect()] == ["tags"]
        faults.after_write("gold/profile_tags")

    with faults.crash_after("tags", 1), pytest.raises(faults.Crashed):
        run(spark, cfg)
    assert lake.read(T.LEASES).count() == 0


def test_a_failed_run_reports_its_own_error_when_the_lease_cannot_be_given_back(
    spark, tmp_path, caplog
):
    lake = _lake(spark, tmp_path)
    lease = held(spark, lake.root, "tags", wait_seconds=0, lease_seconds=HOLD)
    with pytest.raises(ValueError, match="the run's own error"), lease:
        # The session can no longer reach the lease (here: its table is gone).
        shutil.rmtree(lake.path(T.LEASES))
        raise ValueError("the run's own error")
    assert "could not give the lease back after the run failed" in caplog.text
    # A run that succeeded but cannot give the lease back fails: that is its error.
    lease = held(spark, lake.root, "tags", wait_seconds=0, lease_seconds=HOLD)
    with pytest.raises(Exception) as caught, lease:
        shutil.rmtree(lake.path(T.LEASES))
    assert "leases" in str(caught.value)


def test_an_export_is_swapped_in_whole(tmp_path):
    from precis.storage.exports import _swap

    target = tmp_path / "exports" / "segments" / "run_date=2026-03-31"
    (target / "_counts").mkdir(parents=True)
    (target / "part-0.csv").write_text("yesterday")
    staged = tmp_path / "exports" / "segments" / "_staging" / "abc"
    staged.mkdir(parents=True)
    (staged / "part-0.csv").write_text("today")
    _swap(staged, target)
    assert (target / "part-0.csv").read_text() == "today"
    assert not (target / "_counts").exists() and not staged.exists()
    # The old folder, set aside under a hidden name, is gone too.
    assert sorted(p.name for p in target.parent.iterdir()) == ["_staging", target.name]
