"""The ways users run precis, for real: an installed wheel, Spark Connect, a standalone cluster.

One small world (300 generated people, the default seed) goes through the demo
pipeline in three ways at once, each in processes of its own:

1. the wheel, built from this checkout and installed with ``-c constraints.txt`` into a
   fresh virtual environment, run as ``precis pipeline`` from an empty directory (the
   classic local run every other mode is compared with);
2. ``python -m precis pipeline`` as a Spark Connect client of a ``SparkConnectServer``
   (pyspark's own jars, the Delta package and SQL extension);
3. ``./spark-submit.sh pipeline`` in client mode against a standalone master with two
   workers, each a separate JVM: the jobs up to identity, which write what is compared.

Each run's silver tables and ``gold/identity_map`` must equal the local run's (lineage
columns, which name run ids, times and file paths, aside). The recommender is tuned on
one small grid point: the demo's grid changes nothing compared, and the recommender's
own tests cover tuning. These are the slowest tests of the suite (a pipeline run is
minutes on 2 cores), hence few and marked slow.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from pyspark.sql import functions as F

import report_oracle
from precis import jobs
from precis import tables as T
from precis.config import DATASETS, load_config
from precis.report.page import read_figures
from precis.storage import Lakehouse
from services import connect_server, standalone_cluster

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
# The demo profile (packaged: found from any directory) adds generate and evaluate; the
# world is the size of the suite's other generated worlds, its model one small point.
SMALL = (
    "generate.people=300",
    "generate.items=200",
    "generate.days=120",
    "recommend.grid.rank=[4]",
    "recommend.grid.reg_param=[0.5]",
    "recommend.grid.alpha=[2.0]",
    "recommend.max_iter=3",
    # Small worlds: ALS need not beat popularity for the tests to see its lists.
    "recommend.require_lift=false",
    "recommend.measure_decay=false",
)
WORLD = ["--config", "demo.yaml", *(arg for setting in SMALL for arg in ("--set", setting))]
#: Three drivers at once (and the suite's own sessions) fit in memory with 2 GB for the
#: Connect server and the cluster's driver; the acceptance command keeps its default.
SMALLER_DRIVER = ["spark.conf.spark.driver.memory=2g"]
#: The jobs that write what is compared: on the standalone cluster the pipeline runs
#: these (where the work runs, in other JVMs, is what that mode tests); the jobs after
#: identity run in the local and Spark Connect modes.
COMPARED_JOBS = ["--set", "pipeline.jobs=[generate, ingest, forget, identity]"]
#: Seconds per mode, for the record (printed at the end of the module).
TIMES: dict[str, float] = {}


def clean_env(**extra: str) -> dict[str, str]:
    drop = (
        "PRECIS_ENV",
        "SPARK_MASTER",
        "SPARK_REMOTE",
        "PYSPARK_GATEWAY_PORT",
        "PYSPARK_PYTHON",
        "SPARK_HOME",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **extra}


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 3000, what: str = ""
) -> subprocess.CompletedProcess:
    # The timeout guards against a hung run, not a slow one: three pipelines and the rest
    # of the suite share two cores here.
    started = time.monotonic()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if what:
        TIMES[what] = time.monotonic() - started
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr[-6000:]}"
    return out


# ------------------------------------------------------------------ the installed wheel
@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh virtual environment holding the wheel built from this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = clean_env()
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            str(PROJECT),
            "-w",
            str(tmp / "dist"),
        ],
        tmp,
        env,
    )
    (wheel,) = (tmp / "dist").glob("precis-*.whl")
    run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp, env)
    pip = [
        str(tmp / "venv" / "bin" / "python"),
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--quiet",
    ]
    run(
        [*pip, "install", "-c", str(PROJECT / "constraints.txt"), f"{wheel}[local]"],
        tmp,
        env,
        what="install",
    )
    return tmp / "venv" / "bin"


def local_pipeline(installed: Path, tmp: Path) -> Path:
    """The acceptance commands, from an empty directory: selfcheck, then the pipeline."""
    empty = tmp / "empty"
    empty.mkdir(parents=True)
    precis = str(installed / "precis")
    env = clean_env()
    run([precis, "selfcheck", "--set", f"storage.root={tmp / 'selfcheck'}"], empty, env)
    run(
        [precis, "pipeline", *WORLD, "--set", f"storage.root={tmp / 'lakehouse'}"],
        empty,
        env,
        what="local",
    )
    assert list(empty.iterdir()) == []  # nothing written to the working directory
    return tmp / "lakehouse"


def connect_pipeline(tmp: Path, run_date: str) -> Path:
    """``python -m precis pipeline`` as the client of a Spark Connect server."""
    root = tmp / "lakehouse"
    cfg = load_config(overrides=[f"storage.root={root}", *SMALLER_DRIVER])
    with connect_server(cfg, tmp / "server") as url:
        command = [sys.executable, "-m", "precis", "pipeline", *WORLD]
        command += ["--set", f"storage.root={root}", "--run-date", run_date]
        run(command, tmp, clean_env(SPARK_REMOTE=url), what="connect")
    return root


def standalone_pipeline(tmp: Path, run_date: str) -> Path:
    """``./spark-submit.sh pipeline`` in client mode against a standalone master."""
    root = tmp / "lakehouse"
    with standalone_cluster(tmp / "cluster", workers=2) as cluster:
        command = [str(PROJECT / "spark-submit.sh"), "--executor-memory", "1g", "pipeline"]
        command += [*WORLD, *COMPARED_JOBS, "--set", f"storage.root={root}"]
        command += ["--run-date", run_date, "--set", *SMALLER_DRIVER]
        # Not the cluster's 200 shuffle partitions for a thousand people, nor Delta's 50
        # partitions for reading each table's log (every write reads it again).
        command += ["--set", "spark.conf.spark.sql.shuffle.partitions=8"]
        command += ["--set", "spark.conf.spark.databricks.delta.snapshotPartitions=2"]
        run(command, tmp, clean_env(SPARK_MASTER=cluster.master), what="standalone")
    return root


@pytest.fixture(scope="module")
def pipelines(installed, spark, tmp_path_factory) -> dict[str, Path]:
    """Each mode's lakehouse, and the run date they share.

    The three pipelines run at the same time, each in processes of its own (this one
    only waits), so one mode's waits (JVM starts, Delta commits) are another's work. The
    acceptance command runs for today (UTC); the other modes are given that date.
    """
    tmp = tmp_path_factory.mktemp("deploy")
    run_date = dt.datetime.now(dt.UTC).date().isoformat()
    modes = {
        "local": partial(local_pipeline, installed, tmp / "local"),
        "connect": partial(connect_pipeline, tmp / "connect", run_date),
        "standalone": partial(standalone_pipeline, tmp / "standalone", run_date),
    }
    with ThreadPoolExecutor(len(modes)) as pool:
        started = {mode: pool.submit(start) for mode, start in modes.items()}
        roots = {mode: future.result() for mode, future in started.items()}
    used = Lakehouse(spark, str(roots["local"])).read(T.IDENTITY_RUNS).agg(F.max("run_date"))
    assert str(used.first()[0]) == run_date, "the local run started after midnight UTC: rerun"
    return {**roots, "tmp": tmp, "run_date": run_date}


def test_wheel_carries_its_defaults_and_leaves_the_runtime_its_spark(installed, tmp_path):
    (wheel,) = installed.parent.parent.joinpath("dist").glob("precis-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "precis/conf/base.yaml",
        "precis/conf/demo.yaml",
        "precis/conf/tags.yaml",
        "precis/conf/segments.yaml",
        "precis/conf/env/databricks.yaml",
        "precis/jobs/pipeline.py",
        "precis/resources/ivysettings.xml",
    } <= names
    assert not any(n.startswith("jobs/") for n in names)  # no top-level package named "jobs"
    metadata = (
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    )
    requires = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    # Ranges, not pins (those are constraints.txt's); Spark only through an extra, so a
    # runtime keeps its own.
    assert requires and not [r for r in requires if "==" in r.split(";")[0]]
    spark_reqs = [
        r for r in requires if r.lower().startswith(("pyspark", "delta-spark", "mlflow "))
    ]
    assert spark_reqs and all("extra ==" in r for r in spark_reqs)
    assert any(r.startswith("matplotlib") for r in requires)

    out = run([str(installed / "precis"), "--help"], tmp_path, clean_env())
    assert out.stdout.splitlines()[1] == "jobs: " + ", ".join(jobs.JOBS)
    bad = subprocess.run(
        [str(installed / "python"), "-m", "precis", "selfcheck", "--set", "storage.rooot=x"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith(
        "precis selfcheck: error: unknown config key 'storage.rooot'"
    )


def test_installed_pipeline_runs_from_an_empty_directory(spark, pipelines):
    root, run_date = pipelines["local"], pipelines["run_date"]
    lake = Lakehouse(spark, str(root))
    # Every job of the default pipeline left its product behind.
    for table in (
        T.ORDERS,
        T.IDENTITY_MAP,
        T.CUSTOMER_VALUE,
        T.PROFILES,
        T.RECOMMENDATIONS,
        T.ATTRIBUTION,
    ):
        assert lake.exists(table), f"{table} missing"
    scores = {
        r["metric"]: r["value"]
        for r in lake.read(T.EVALUATIONS)
        .filter((F.col("target") == "identity") & (F.col("run_date") == run_date))
        .collect()
    }
    assert scores["precision"] > 0.98 and scores["recall"] > 0.95
    # The MLflow store sits beside the lakehouse, not in the working directory.
    assert (root.parent / "mlflow" / "mlflow.db").is_file()


# --------------------------------------------------------------------- the comparisons
def assert_same_world(spark, expected: Path, actual: Path) -> None:
    """Silver tables and gold/identity_map of two lakehouses hold the same rows."""
    want, got = Lakehouse(spark, str(expected)), Lakehouse(spark, str(actual))
    tables = [T.SILVER[d] for d in DATASETS if want.exists(T.SILVER[d])] + [T.IDENTITY_MAP]
    assert len(tables) > 5
    for table in tables:
        left, right = (_content(lake.read(table)) for lake in (want, got))
        assert left.columns == right.columns, f"{table}: columns {left.columns} != {right.columns}"
        missing, extra = left.exceptAll(right), right.exceptAll(left)
        rows = (left.count(), right.count())
        assert rows[0] == rows[1] and missing.isEmpty() and extra.isEmpty(), (
            f"{table}: {rows[0]} rows expected, {rows[1]} found; "
            f"missing e.g. {missing.limit(2).collect()}, unexpected e.g. {extra.limit(2).collect()}"
        )


def _content(df):
    # Lineage (_run_id, _ingested_at, _source_file with its root path) differs by run.
    return df.select(*sorted(c for c in df.columns if not c.startswith("_")))


def test_pipeline_over_spark_connect_equals_the_local_run(spark, pipelines):
    assert_same_world(spark, pipelines["local"], pipelines["connect"])


def test_pipeline_on_a_standalone_cluster_equals_the_local_run(spark, pipelines):
    assert_same_world(spark, pipelines["local"], pipelines["standalone"])
    # The work ran in the workers' executors, not in the driver.
    cluster = pipelines["tmp"] / "standalone" / "cluster"
    executors = list(cluster.glob("work-*/app-*/*/stderr"))
    assert {p.parts[-4] for p in executors} == {"work-1", "work-2"}, executors


# ------------------------------------------------------------------------ the report
SECTIONS = ["ingest", "identity", "lifecycle", "tags", "recommendations", "attribution"]
SECTIONS += ["experiments", "runs"]
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
IMAGES = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def test_the_demo_pipelines_report_shows_every_section_from_its_tables(spark, pipelines):
    """The page the installed demo pipeline wrote: every section with data, each figure
    equal to the tables it comes from (pandas over the tables), no identifier on it."""
    root, run_date = pipelines["local"], pipelines["run_date"]
    html = (root / "reports" / run_date / "index.html").read_text(encoding="utf-8")
    sections = read_figures(html)["sections"]
    assert list(sections) == SECTIONS
    assert {k: s["missing"] for k, s in sections.items()} == dict.fromkeys(SECTIONS)
    lake = Lakehouse(spark, str(root))
    want = report_oracle.expected(lake, dt.date.fromisoformat(run_date))
    assert want.keys() == set(SECTIONS) - {"runs"}
    for key, figures in want.items():
        for name, rows in figures.items():
            found = sections[key]["figures"][name]
            assert rows and report_oracle.same(found, rows), (key, name, found[:3], rows[:3])
    text = IMAGES.sub("", html)
    assert not EMAIL.search(text), EMAIL.search(text)
    one_ids = [r["one_id"] for r in lake.read(T.IDENTITY_MAP).select("one_id").limit(50).collect()]
    assert not [o for o in one_ids if o in text]
    # The same page over Spark Connect: the sections and the ingest figures' rows (the
    # landed files are cut by each session's parallelism, and the later jobs' models may
    # differ between the two sessions' Spark plans).
    connect = pipelines["connect"] / "reports" / run_date / "index.html"
    over_connect = read_figures(connect.read_text(encoding="utf-8"))["sections"]
    assert list(over_connect) == SECTIONS
    assert {k: s["missing"] for k, s in over_connect.items()} == dict.fromkeys(SECTIONS)
    rows_only = [
        [
            {k: v for k, v in r.items() if not k.endswith("files")}
            for r in page["ingest"]["figures"]["datasets"]
        ]
        for page in (sections, over_connect)
    ]
    assert rows_only[0] == rows_only[1]


def teardown_module(module) -> None:
    if TIMES:
        print("\n" + json.dumps({k: round(v, 1) for k, v in TIMES.items()}))
