"""The crontab lines of docs/running.md, run as cron runs them: ``sh -c`` with cron's
almost empty environment, ``\\%`` unescaped, paths of the example replaced by a test's.

Two lines: yesterday's pipeline once a day, and the stream (available-now) every 5
minutes. Both run against one small generated world, whose landed events the stream
reads."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import ledger
from precis import tables as T
from precis.columns import RUN_DATE
from precis.config import load_config
from precis.jobs import generate
from precis.runner import build_parser
from precis.storage import Lakehouse

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
DOCS = PROJECT / "docs" / "running.md"


def crontab_lines() -> list[str]:
    block = re.search(r"```crontab\n(.+?)\n```", DOCS.read_text(), re.S)
    assert block, "docs/running.md has no crontab block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def crontab_line(job: str) -> str:
    """The line that runs ``./spark-submit.sh <job>``."""
    (line,) = [line for line in crontab_lines() if f"./spark-submit.sh {job} " in line]
    return line


def precis_args(command: str) -> tuple[str, list[str]]:
    """The job and the arguments ``./spark-submit.sh`` is given in ``command``."""
    words = shlex.split(command.split(" >> ")[0])
    at = words.index("./spark-submit.sh")
    return words[at + 1], words[at + 2 :]


def as_cron_runs_it(command: str) -> str:
    """Cron turns an unescaped ``%`` into a newline (the rest is stdin) and ``\\%`` into
    ``%``: the documented line must have no unescaped one."""
    assert not re.search(r"(?<!\\)%", command), "an unescaped % would cut the command"
    return command.replace("\\%", "%")


def test_the_crontab_has_the_pipeline_and_the_stream():
    lines = crontab_lines()
    assert len(lines) == 2
    assert [precis_args(line.split(maxsplit=5)[5])[0] for line in lines] == ["pipeline", "stream"]


def test_the_crontab_line_parses():
    fields = crontab_line("pipeline").split(maxsplit=5)
    assert fields[:5] == ["30", "2", "*", "*", "*"]  # 02:30 every day
    assert "pipeline" in fields[5] and "--run-date" in fields[5]


def test_the_stream_crontab_line_parses():
    fields = crontab_line("stream").split(maxsplit=5)
    assert fields[:5] == ["*/5", "*", "*", "*", "*"]  # every 5 minutes
    daily = crontab_line("pipeline").split(maxsplit=5)[5]
    # The pipeline's folder, key and settings file, so the tables it writes; its own log.
    before = daily.split("./spark-submit.sh")[0]
    assert fields[5].startswith(before)
    assert fields[5].endswith(" >> /var/log/precis/stream.log 2>&1")
    job, args = precis_args(fields[5])
    parsed = build_parser(job).parse_args(args)
    assert parsed.configs == build_parser("pipeline").parse_args(precis_args(daily)[1]).configs
    # Event time: no run date. A run that finds the previous one at work leaves at once.
    assert parsed.run_date is None and parsed.triggered_on is None
    assert parsed.overrides == ["runner.lock_wait_seconds=0"]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory) -> dict:
    """Landing data up to yesterday, the files the lines name, and a log folder."""
    tmp_path = tmp_path_factory.mktemp("cron")
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    root = tmp_path / "lakehouse"
    # Landing data up to yesterday, written by the test session (no JVM of its own).
    overrides = [
        f"storage.root={root}",
        "generate.people=80",
        "generate.items=50",
        "generate.days=30",
        "generate.partitions=1",
        "mlflow.enabled=false",
    ]
    generate.run(spark, load_config(overrides=overrides, run_date=yesterday))
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
    (tmp_path / "log").mkdir()
    return {"root": root, "yesterday": yesterday, "daily": daily, "env": env_file, "tmp": tmp_path}


def as_the_test_runs_it(job: str, world: dict) -> tuple[str, Path]:
    """The job's crontab command with the example's paths replaced; its log."""
    log = world["tmp"] / "log" / f"{job}.log"
    command = (
        as_cron_runs_it(crontab_line(job).split(maxsplit=5)[5])
        .replace("/opt/precis", str(PROJECT))
        .replace("/etc/precis/daily.yaml", str(world["daily"]))
        .replace("/etc/precis/env", str(world["env"]))
        .replace("/var/log/precis/daily.log", str(log))
        .replace("/var/log/precis/stream.log", str(log))
    )
    return command, log


def run_as_cron(command: str) -> subprocess.CompletedProcess:
    # What cron gives a job: HOME, LOGNAME, a short PATH and /bin/sh; HOME keeps the Ivy
    # cache of the Delta jars.
    cron_env = {
        "HOME": os.environ.get("HOME", "/root"),
        "LOGNAME": "precis",
        "PATH": "/usr/bin:/bin",
        "SHELL": "/bin/sh",
    }
    return subprocess.run(["/bin/sh", "-c", command], env=cron_env, timeout=900)


def test_the_crontab_line_runs_yesterday_and_resumes(spark, world):
    root, yesterday = world["root"], world["yesterday"]
    command, log = as_the_test_runs_it("pipeline", world)
    for attempt in (1, 2):
        done = run_as_cron(command)
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


def test_the_stream_line_processes_what_has_landed(spark, world):
    # One run: each run costs a Spark driver's start, and a second run finding nothing
    # new is tests/test_stream.py's (restarts lose and repeat nothing).
    command, log = as_the_test_runs_it("stream", world)
    done = run_as_cron(command)
    assert done.returncode == 0, log.read_text()[-3000:]
    assert "[stream] finished" in log.read_text()
    lake = Lakehouse.from_config(spark, load_config(overrides=[f"storage.root={world['root']}"]))
    progress = lake.read(T.STREAM_PROGRESS).collect()
    assert progress and sum(r["rows"] for r in progress) > 0
    assert lake.read(T.REALTIME_TAGS).count() > 0
