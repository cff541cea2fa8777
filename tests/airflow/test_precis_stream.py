"""precis_stream under a real Airflow: the DAGs folder with both DAG files, the stream
DAG's schedule and task, and the spark-submit command its task runs.

Runs in .venv-airflow (``make airflow-test``), beside test_precis_daily.py, which runs
the daily DAG's spark-submits for real. Here the worker's ``spark-submit`` is a stand-in
that writes down the command line it was given and exits 0, and the project's .venv
(the environment that has precis) parses that command line as ``precis stream`` would:
the stream job itself is tested in the main suite (tests/test_stream.py).
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
#: The environment that has precis (make setup).
PRECIS_PYTHON = PROJECT / ".venv" / "bin" / "python"
CONN_ID = "precis_stream_test"

#: spark-submit's stand-in: its arguments and PYSPARK_PYTHON, as JSON, to $SUBMITTED.
FAKE_SPARK_SUBMIT = """#!{python}
import json, os, sys
with open(os.environ["SUBMITTED"], "w") as out:
    json.dump({{"args": sys.argv[1:], "python": os.environ.get("PYSPARK_PYTHON")}}, out)
"""

#: Run by the precis environment: what `precis stream <args>` makes of its arguments.
PARSE = """
import json, sys
from precis.runner import parse_config
cfg = parse_config(sys.argv[1], sys.argv[2:])
print(json.dumps({"root": cfg.root, "trigger": cfg.stream.trigger,
                  "landing": cfg.landing_path("events")}))
"""


def precis(*args: str) -> str:
    out = subprocess.run(
        [str(PRECIS_PYTHON), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, f"{args} exited {out.returncode}:\n{out.stderr[-4000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def dag(dag_bag):
    assert dag_bag.import_errors == {}
    return dag_bag.get_dag("precis_stream")


def test_the_dags_folder_holds_two_dags_each_from_its_own_file(dag_bag, dags_folder):
    from airflow.dag_processing.dagbag import BundleDagBag

    # No import error: a DAG id defined in two files would be one.
    assert dag_bag.import_errors == {}
    assert sorted(dag_bag.dag_ids) == ["precis_daily", "precis_stream"]
    for dag_id in dag_bag.dag_ids:
        assert Path(dag_bag.get_dag(dag_id).fileloc).name == f"{dag_id}.py"
    # Each file parsed alone, as the DAG processor parses each file: a DAG file makes its
    # own DAG and no other (importing the other DAG file would register that one's DAG
    # too), and the module they share and the launcher make none.
    made = {}
    for name in sorted(p.name for p in dags_folder.glob("*.py")):
        alone = BundleDagBag(dag_folder=dags_folder / name, bundle_path=dags_folder)
        assert alone.import_errors == {}, name
        made[name] = alone.dag_ids
    assert made == {
        "precis_daily.py": ["precis_daily"],
        "precis_job.py": [],
        "precis_stream.py": ["precis_stream"],
        "precis_tasks.py": [],
    }


def test_airflow_reads_one_task_every_quarter_of_an_hour(dag):
    import pendulum
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk import CronTriggerTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    (task,) = dag.tasks
    assert task.task_id == "stream"
    assert isinstance(task, SparkSubmitOperator)
    assert (task.job, task.dated) == ("stream", False)

    assert isinstance(dag.timetable, CronTriggerTimetable)
    timetable = coerce_to_core_timetable(dag.timetable)
    # Runs one after another, 15 minutes apart, asked of the scheduler's timetable as the
    # scheduler asks it.
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    last = pendulum.datetime(2026, 3, 31, 23, 45, tz="UTC")  # the scheduler's datetimes
    found = []
    for _ in range(3):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=DataInterval(last, last), restriction=restriction
        )
        found.append(info.run_after)
        last = info.logical_date
    assert found == [
        dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 4, 1, 0, 15, tzinfo=dt.UTC),
        dt.datetime(2026, 4, 1, 0, 30, tzinfo=dt.UTC),
    ]
    # No catch-up: unpaused, the DAG runs for the latest quarter of an hour, not for every
    # one since the start date.
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=False),
    )
    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(minutes=15) < first.run_after <= now
    assert first.run_after.minute % 15 == 0 and first.run_after.second == 0

    assert (dag.catchup, dag.max_active_runs) == (False, 1)
    assert dag.is_paused_upon_creation  # nothing runs before the Variables are set
    assert not task.depends_on_past
    assert task.retries == 3
    assert task.retry_delay == dt.timedelta(minutes=5)
    assert task.retry_exponential_backoff == 2.0
    assert task.execution_timeout == dt.timedelta(hours=2)


@pytest.fixture(scope="module")
def submitted(dag, dags_folder, tmp_path_factory) -> dict:
    """One run of the DAG through dag.test(), its Variables those precis prints, on a
    worker whose spark-submit is the stand-in; what the stand-in was given."""
    tmp = tmp_path_factory.mktemp("stream")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "spark-submit"
    fake.write_text(FAKE_SPARK_SUBMIT.format(python=sys.executable))
    fake.chmod(0o755)
    root = tmp / "lakehouse"
    variables = json.loads(
        precis("-m", "precis.submit", "--airflow-variables", "--set", f"storage.root={root}")
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        mp.setenv("SUBMITTED", str(tmp / "submitted.json"))
        # Variables and the connection from the environment, as Airflow reads them first:
        # the daily test's, in the database, stay out of this run.
        for name, value in variables.items():
            text = value if isinstance(value, str) else json.dumps(value)
            mp.setenv(f"AIRFLOW_VAR_{name.upper()}", text)
        mp.setenv("AIRFLOW_VAR_PRECIS_SPARK_CONN_ID", CONN_ID)
        mp.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            json.dumps({"conn_type": "spark", "host": "local[2]"}),
        )
        for task in dag.tasks:
            task.retries = 0  # a failure shows now, not after the backoff
        run_ = dag.test()
        states = {ti.task_id: ti.state for ti in run_.get_task_instances()}
    assert run_.state == "success", states
    return {
        "variables": variables,
        "root": root,
        **json.loads((tmp / "submitted.json").read_text()),
    }


def test_the_task_spark_submits_precis_stream_with_the_variables(submitted, dags_folder):
    args, variables = submitted["args"], submitted["variables"]
    launcher = str((dags_folder / "precis_job.py").resolve())
    at = args.index(launcher)
    options, job_args = args[:at], args[at + 1 :]

    # spark-submit's own options: the connection's master, Delta's jars, the settings.
    assert options[options.index("--master") + 1] == "local[2]"
    assert options[options.index("--packages") + 1] == variables["precis_packages"]
    assert options[options.index("--name") + 1] == "precis-stream"
    conf = dict(options[i + 1].split("=", 1) for i, o in enumerate(options) if o == "--conf")
    # Delta's SQL settings among them.
    assert conf == {key: str(value) for key, value in variables["precis_spark_conf"].items()}
    assert submitted["python"] == variables["precis_python"]

    # The launcher's: the job and the settings of every precis task, no run date.
    assert job_args == ["stream", "--set", f"storage.root={submitted['root']}"]
    parsed = json.loads(precis("-c", PARSE, *job_args).strip().splitlines()[-1])
    assert parsed == {
        "root": str(submitted["root"]),
        "trigger": "available_now",  # processes what has landed, then stops
        "landing": f"{submitted['root']}/landing/events",
    }
