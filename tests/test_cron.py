"""The crontab line of docs/running.md, run as cron runs it: ``sh -c`` with cron's almost
empty environment, ``\\%`` unescaped, paths of the example replaced by a test's."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import ledger
from precis import tables as T
from precis.columns import RUN_DATE
from precis.config import load_config
from precis.jobs import generate
from precis.storage import Lakehouse

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
DOCS = PROJECT / "docs" / "running.md"


def crontab_line() -> str:
    block = re.search(r"```crontab\n(.+?)\n```", DOCS.read_text(), re.S)
    assert block, "docs/running.md has no crontab block"
    lines = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1
    return lines[0]


def as_cron_runs_it(command: str) -> str:
    """Cron turns an unescaped ``%`` into a newline (the rest is stdin) and ``\\%`` into
    ``%``: the documented line must have no unescaped one."""
    assert not re.search(r"(?<!\\)%", command), "an unescaped % would cut the command"
    return command.replace("\\%", "%")


def test_the_crontab_line_parses():
    fields = crontab_line().split(maxsplit=5)
    assert fields[:5] == ["30", "2", "*", "*", "*"]  # 02:30 every day
    assert "pipeline" in fields[5] and "--run-date" in fields[5]


def test_the_crontab_line_runs_yesterday_and_resumes(spark, tmp_path):
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    root = tmp_path / "lakehouse"
    # Landing data up to yesterday, written by the test session (no JVM of its own).
    world = [
        f"storage.root={root}",
        "generate.people=80",
        "generate.items=50",
        "generate.days=30",
        "generate.partitions=1",
        "mlflow.enabled=false",
    ]
    generate.run(spark, load_config(overrides=world, run_date=yesterday))
    daily = tmp_path / "daily.yaml"
    daily.write_text(
        f"storage:\n  root: {root}\n"
        "mlflow:\n  enabled: false\n"
        "pipeline:\n  jobs: [ingest, identity]\n"
        "spark:\n  conf:\n    spark.sql.shuffle.partitions: '2'\n"
        "    spark.driver.memory: 1g\n"
    )
    env_file = tmp_path / "env"
    env_file.write_text("export PRECIS_PII_KEY=cron-test-key\n")
    log = tmp_path / "log" / "daily.log"
    log.parent.mkdir()
    command = (
        as_cron_runs_it(crontab_line().split(maxsplit=5)[5])
        .replace("/opt/precis", str(PROJECT))
        .replace("/etc/precis/daily.yaml", str(daily))
        .replace("/etc/precis/env", str(env_file))
        .replace("/var/log/precis/daily.log", str(log))
    )
    # What cron gives a job: HOME, LOGNAME, a short PATH and /bin/sh; HOME keeps the Ivy
    # cache of the Delta jars.
    cron_env = {
        "HOME": os.environ.get("HOME", "/root"),
        "LOGNAME": "precis",
        "PATH": "/usr/bin:/bin",
        "SHELL": "/bin/sh",
    }
    for attempt in (1, 2):
        done = subprocess.run(["/bin/sh", "-c", command], env=cron_env, timeout=900)
        assert done.returncode == 0, log.read_text()[-3000:]
        if attempt == 1:
            lake = Lakehouse.from_config(spark, load_config(overrides=[f"storage.root={root}"]))
            first = {r["job"]: r for r in lake.read(T.PIPELINE_RUNS).collect()}
    text = log.read_text()
    assert f"run date {yesterday}" in text
    assert "done before, skipped" in text  # the second run found both jobs done
    runs = lake.read(T.PIPELINE_RUNS).collect()
    assert {(r[RUN_DATE], r["job"], r["status"]) for r in runs} == {
        (yesterday, "ingest", ledger.DONE),
        (yesterday, "identity", ledger.DONE),
    }
    assert {r["job"]: r["started_at"] for r in runs} == {
        job: r["started_at"] for job, r in first.items()
    }
    assert lake.read(T.IDENTITY_MAP).filter(F.col("one_id").isNotNull()).count() > 0
