"""precis_daily under a real Airflow: two consecutive run dates, every task a spark-submit.

Runs in .venv-airflow (``make airflow-test``): Airflow 3 and the Spark provider, no
precis, as in an Airflow deployment. The project's .venv plays the environment that has
precis, as on an edge node: it generates a small world, prints the Variables the DAG
reads, runs each task's spark-submit (``local[2]``) and reads the tables afterwards. The
metadata database is a SQLite file in a temporary AIRFLOW_HOME (conftest.py).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    # Not an import: see conftest.airflow_installed.
    importlib.metadata.distribution("apache-airflow")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("needs Airflow: make airflow-test", allow_module_level=True)

PROJECT = Path(__file__).resolve().parents[2]
#: The environment that has precis and spark-submit (make setup).
PRECIS_BIN = PROJECT / ".venv" / "bin"
DATES = ("2026-03-30", "2026-03-31")
GRAPH = {
    "ingest": set(),
    "forget": {"ingest"},
    "identity": {"forget"},
    "lifecycle": {"identity"},
    "tags": {"lifecycle"},
    "recommend": {"identity"},
    "attribution": {"identity"},
    "experiments": {"identity"},
    "report": {"tags", "recommend", "attribution", "experiments"},
}
#: A small world whose last generated day is the second run date.
WORLD = ["generate.people=300", "generate.items=200", "generate.days=120", "generate.partitions=2"]
#: Every job's settings besides the lakehouse: small Spark, no MLflow store to create,
#: one small grid point for the recommender (its own tests cover tuning; the default
#: grid's five fits per run date were the DAG's longest tasks).
SMALL = [
    "spark.conf.spark.sql.shuffle.partitions=4",
    "spark.conf.spark.driver.memory=2g",
    "mlflow.enabled=false",
    "recommend.grid.rank=[4]",
    "recommend.grid.reg_param=[0.5]",
    "recommend.grid.alpha=[2.0]",
    "recommend.max_iter=3",
    # A small world: ALS need not beat popularity for the DAG to write its lists.
    "recommend.require_lift=false",
    "recommend.measure_decay=false",
]

#: Run by the precis environment after both dates: what the jobs wrote.
READ_TABLES = """
import json, sys
from precis import tables as T
from precis.columns import ONE_ID, RUN_DATE
from precis.config import load_config
from precis.session import get_spark
from precis.storage import Lakehouse

root, last_date, *overrides = sys.argv[1:]
cfg = load_config(None, [f"storage.root={root}", *overrides])
lake = Lakehouse.from_config(get_spark(cfg), cfg)


def rows_per_date(table):
    df = lake.read(table)
    if RUN_DATE not in df.columns:
        return None
    return {str(r[0]): r[1] for r in df.groupBy(RUN_DATE).count().collect()}


identity = lake.read(T.IDENTITY_MAP).select(ONE_ID).distinct()
value = lake.read(T.CUSTOMER_VALUE)
if RUN_DATE in value.columns:
    value = value.filter(value[RUN_DATE] == last_date)  # one_ids as of the last run
value = value.select(ONE_ID).distinct()
products = (T.CUSTOMER_VALUE, T.PROFILE_TAGS, T.PROFILES, T.SEGMENTS, T.RECOMMENDATIONS)
print(json.dumps({
    "attribution": rows_per_date(T.ATTRIBUTION),
    "identity_one_ids": identity.count(),
    "value_one_ids": value.count(),
    "value_unmapped": value.join(identity, on=ONE_ID, how="left_anti").count(),
    "snapshots": {t.name: rows_per_date(t) for t in products},
}))
"""


def run(cmd: list, timeout: int = 900) -> str:
    out = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {out.returncode}:\n"
        f"{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    )
    return out.stdout


def airflow(*args: str) -> str:
    return run([sys.executable, "-m", "airflow", *args])


def sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """An Airflow worker's environment on an edge node: the precis environment's
    spark-submit on PATH, the PII key, an unrelated working directory, and nothing of the
    developer's shell that would steer precis or Spark."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{PRECIS_BIN}{os.pathsep}{os.environ['PATH']}")
        mp.setenv("PRECIS_PII_KEY", "airflow-test-key")
        for var in (
            "PRECIS_ENV",
            "SPARK_MASTER",
            "SPARK_HOME",
            "SPARK_REMOTE",
            "PYSPARK_PYTHON",
            "PYSPARK_GATEWAY_PORT",
        ):
            mp.delenv(var, raising=False)
        mp.chdir(tmp_path_factory.mktemp("worker"))
        yield


@pytest.fixture(scope="module")
def lakehouse(worker, dags_folder, tmp_path_factory) -> Path:
    """The DAG deployed as a user deploys it, on a freshly generated world.

    The DAG files in the DAGs folder (conftest.dags_folder), the Variables that precis
    prints imported with Airflow's CLI, a Spark connection for ``local[2]`` named by
    ``precis_spark_conn_id``.
    """
    tmp = tmp_path_factory.mktemp("precis")
    root = tmp / "lakehouse"
    lake = [f"storage.root={root}", *SMALL]
    python = PRECIS_BIN / "python"
    run([python, "-m", "precis", "generate", "--run-date", DATES[-1], *sets(lake + WORLD)])

    variables = tmp / "precis-variables.json"
    variables.write_text(run([python, "-m", "precis.submit", "--airflow-variables", *sets(lake)]))
    airflow("variables", "import", str(variables))
    airflow("connections", "add", "precis_local", "--conn-type", "spark", "--conn-host", "local[2]")
    airflow("variables", "set", "precis_spark_conn_id", "precis_local")
    return root


@pytest.fixture(scope="module")
def dag(lakehouse, dag_bag):
    assert dag_bag.import_errors == {}
    # The module the DAG files share and the launcher beside them are not taken for DAGs.
    assert sorted(dag_bag.dag_ids) == ["precis_daily", "precis_stream"]
    return dag_bag.get_dag("precis_daily")


def test_airflow_reads_the_graph_schedule_and_retries(dag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    assert {t.task_id: t.upstream_task_ids for t in dag.tasks} == GRAPH
    assert all(isinstance(t, SparkSubmitOperator) for t in dag.tasks)

    start = dt.datetime.fromisoformat(os.environ["AIRFLOW_VAR_PRECIS_START_DATE"])
    assert dag.start_date == start.replace(tzinfo=dt.UTC)
    assert (dag.catchup, dag.max_active_runs, dag.max_consecutive_failed_dag_runs) == (True, 1, 1)
    assert dag.is_paused_upon_creation  # nothing runs before the Variables are set
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    # The first run covers the start date and starts when that day ends (asked of the
    # scheduler's form of the timetable, as the scheduler asks it).
    first = coerce_to_core_timetable(dag.timetable).next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert first.logical_date == dag.start_date
    assert first.run_after == dag.start_date + dt.timedelta(days=1)

    for task in dag.tasks:
        assert task.retries == 3
        assert task.retry_delay == dt.timedelta(minutes=5)
        assert task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == dt.timedelta(hours=1)
        assert task.depends_on_past


@pytest.fixture(scope="module")
def runs(dag, lakehouse) -> dict[str, dict]:
    """Both run dates through dag.test(), in order; each task's state by date."""
    for task in dag.tasks:
        task.retries = 0  # a failure shows now, not after the backoff
    states = {}
    for day in DATES:
        logical = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        run_ = dag.test(logical_date=logical)
        states[day] = {ti.task_id: ti.state for ti in run_.get_task_instances()}
        assert run_.state == "success", f"{day}: {states[day]}"
    return states


@pytest.fixture(scope="module")
def tables(runs, lakehouse) -> dict:
    out = run([PRECIS_BIN / "python", "-c", READ_TABLES, lakehouse, DATES[-1], *SMALL])
    return json.loads(out.strip().splitlines()[-1])


def test_every_task_of_both_dates_succeeded(runs):
    assert runs == {day: dict.fromkeys(GRAPH, "success") for day in DATES}


def test_attribution_has_rows_for_both_run_dates(tables):
    assert set(tables["attribution"]) == set(DATES)
    assert all(rows > 0 for rows in tables["attribution"].values())


def test_identity_map_covers_customer_value(tables):
    assert tables["identity_one_ids"] > 0
    assert tables["value_one_ids"] > 0
    assert tables["value_unmapped"] == 0


def test_product_tables_keep_a_snapshot_per_run_date(tables):
    for table, dates in tables["snapshots"].items():
        assert dates is not None, f"gold/{table} has no run_date column"
        assert set(dates) == set(DATES), f"gold/{table}: {dates}"
        assert all(rows > 0 for rows in dates.values()), f"gold/{table}: {dates}"


def test_each_run_date_has_its_report_with_the_trend_so_far(runs, lakehouse):
    """The report task's page per date; the second date's trends hold both dates (the
    page's JSON, read without precis: Airflow's environment has none)."""
    import re

    pages = {day: lakehouse / "reports" / day / "index.html" for day in DATES}
    assert all(page.is_file() for page in pages.values()), pages
    html = pages[DATES[-1]].read_text(encoding="utf-8")
    embedded = re.search(
        r'<script type="application/json" id="precis-figures">(.*?)</script>', html, re.S
    )
    sections = json.loads(embedded.group(1))["sections"]
    trend = sections["lifecycle"]["figures"]["trend"]  # people per stage per snapshot
    assert sorted({row["run_date"] for row in trend}) == list(DATES)
    assert sections["attribution"]["missing"] is None
