"""The Airflow DAGs (orchestration/airflow) against precis, without Airflow.

Three files: ``precis_daily.py`` and ``precis_stream.py`` each define a DAG, and both
import what they share (the Variables, the task's command line, the operator) from
``precis_tasks.py``. They cannot import precis, so they write the job graph and the Delta
settings out; these tests compare them with precis' own, check that every task's command
line is one the jobs accept, and that ``python -m precis.submit --airflow-variables``
prints exactly the Variables the DAGs read. Each file is read minus every statement that
needs Airflow (its imports, those of ``precis_tasks``, which imports Airflow, and
whatever uses them): what is left is its data and plain functions. tests/airflow runs
the DAGs themselves, in Airflow.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from precis import jobs, jvm, submit
from precis.errors import ConfigError
from precis.runner import build_parser, parse_config
from precis.session import DELTA_CONF

PROJECT = Path(__file__).resolve().parents[1]
DAG_DIR = PROJECT / "orchestration" / "airflow"
RUN_DATE = "2026-03-31"
#: Modules the DAG files import that need Airflow: precis_tasks is the DAGs' own.
NEEDS_AIRFLOW = ("airflow", "precis_tasks")


def _bound(node: ast.stmt) -> set[str]:
    names = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        names.add(node.name)
    return names


def imported(node: ast.stmt) -> list[str]:
    """The modules an import statement imports (none for another statement)."""
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return []


def without_airflow(path: Path) -> dict[str, Any]:
    """The module namespace of ``path`` run without its imports of Airflow (and of
    precis_tasks) and every top-level statement that uses a name they (or a statement
    left out) bind."""
    tree = ast.parse(path.read_text())
    airflow: set[str] = set()
    kept: list[ast.stmt] = []
    for node in tree.body:
        if any(m.split(".")[0] in NEEDS_AIRFLOW for m in imported(node)):
            assert isinstance(node, ast.Import | ast.ImportFrom)
            airflow |= {(a.asname or a.name).split(".")[0] for a in node.names}
            continue
        if {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & airflow:
            airflow |= _bound(node)
            continue
        kept.append(node)
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": f"{path.stem}_without_airflow"}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def shared() -> dict[str, Any]:
    return without_airflow(DAG_DIR / "precis_tasks.py")


@pytest.fixture(scope="module")
def daily() -> dict[str, Any]:
    return without_airflow(DAG_DIR / "precis_daily.py")


@pytest.fixture(scope="module")
def stream() -> dict[str, Any]:
    return without_airflow(DAG_DIR / "precis_stream.py")


@pytest.fixture
def variables(tmp_path) -> dict[str, Any]:
    mine = tmp_path / "prod.yaml"
    mine.write_text("generate:\n  people: 500\n")
    return submit.airflow_variables(
        ["--config", str(mine), "--env", "local", "--set", f"storage.root={tmp_path}/lake"]
    )


def test_only_airflow_was_left_out(shared, daily, stream):
    # The graph and the functions the tests below call are plain Python; the operator
    # class, the DAG params and the DAGs themselves are Airflow's.
    shared_data = {"DELTA_CONF", "VARIABLES", "RETRIES", "LAUNCHER"}
    assert shared_data | {"settings", "job_args", "spark_conf"} <= set(shared)
    assert not {"PrecisJob", "params", "_variable"} & set(shared)
    assert {"NEEDS", "DAG_ID", "START_DATE_VARIABLE"} <= set(daily)
    assert not {"PrecisJob", "start_date", "dag", "tasks"} & set(daily)
    assert {"DAG_ID", "JOB", "SCHEDULE"} <= set(stream)
    assert not {"PrecisJob", "dag"} & set(stream)


def test_the_dag_files_share_one_module_that_defines_no_dag(shared, daily, stream):
    """Airflow registers every DAG made in a ``with DAG(...)`` block of the file it is
    parsing, imported modules included: a DAG file that imported the other one would
    define its DAG twice. Each imports precis_tasks, which makes none, and nothing else
    of the DAGs folder."""
    for name in ("precis_daily.py", "precis_stream.py"):
        tree = ast.parse((DAG_DIR / name).read_text())
        modules = {m for node in tree.body for m in imported(node)}
        beside = {p.stem for p in DAG_DIR.glob("*.py")} & {m.split(".")[0] for m in modules}
        assert beside == {"precis_tasks"}, name
    tasks_tree = ast.parse((DAG_DIR / "precis_tasks.py").read_text())
    assert not any(
        isinstance(node, ast.Name) and node.id == "DAG" for node in ast.walk(tasks_tree)
    ), "precis_tasks.py must not make a DAG"
    # Defined once, in precis_tasks.py.
    for name in ("VARIABLES", "DELTA_CONF", "settings", "job_args", "spark_conf", "RETRIES"):
        assert name not in daily and name not in stream, name
    # Each DAG file's DAG id is its own, and is the file's name.
    assert (daily["DAG_ID"], stream["DAG_ID"]) == ("precis_daily", "precis_stream")


def test_graph_is_precis_needs_among_the_daily_jobs(daily):
    assert tuple(daily["NEEDS"]) == jobs.DAILY_JOBS
    assert daily["NEEDS"] == {job: jobs.upstream(job, jobs.DAILY_JOBS) for job in jobs.DAILY_JOBS}


def test_delta_settings_are_precis_own(shared):
    assert shared["DELTA_CONF"] == DELTA_CONF
    assert shared["VARIABLES"]["precis_packages"] == ",".join(jvm.packages())
    # Without any Variable set, the Delta extension and catalog still reach spark-submit.
    assert shared["spark_conf"](shared["settings"](lambda name, default: default)) == DELTA_CONF


def test_each_task_runs_a_command_line_its_job_accepts(shared, daily, variables, tmp_path):
    found = shared["settings"](lambda name, default: variables.get(name, default))
    extra = tmp_path / "today.yaml"
    extra.write_text("generate:\n  seed: 7\n")
    params = {"config": [str(extra)], "set": ["generate.items=300"]}
    for job in daily["NEEDS"]:
        args = shared["job_args"](job, RUN_DATE, found, params)
        assert args[0] == job  # the launcher's first argument
        parsed = build_parser(job).parse_args(args[1:])
        assert parsed.run_date == RUN_DATE
        assert parsed.configs == [*variables["precis_config"], str(extra)]
        assert parsed.env == "local"
        assert parsed.overrides == [*variables["precis_set"], "generate.items=300"]
        # The job's own validation, settings files and all, in the order given.
        cfg = parse_config(job, args[1:])
        assert cfg.run_date == dt.date(2026, 3, 31)
        assert (cfg.generate.people, cfg.generate.seed, cfg.generate.items) == (500, 7, 300)
        assert cfg.root == f"{tmp_path}/lake"


def test_defaults_alone_make_a_run_of_the_date(shared, daily):
    found = shared["settings"](lambda name, default: default)
    for job in daily["NEEDS"]:
        args = shared["job_args"](job, RUN_DATE, found, {})
        assert args == [job, "--run-date", RUN_DATE]
        assert parse_config(job, args[1:]).run_date == dt.date(2026, 3, 31)


def test_the_stream_task_runs_precis_stream_with_the_daily_settings(
    shared, daily, stream, variables, tmp_path
):
    assert stream["JOB"] == "stream"
    assert stream["JOB"] in jobs.JOBS and stream["JOB"] not in daily["NEEDS"]
    found = shared["settings"](lambda name, default: variables.get(name, default))
    extra = tmp_path / "today.yaml"
    extra.write_text("stream:\n  watermark_minutes: 5\n")
    params = {"config": [str(extra)], "set": ["stream.max_files_per_trigger=10"]}
    # No run date: the stream works on event time; the job's default (today) tags it.
    args = shared["job_args"](stream["JOB"], None, found, params)
    assert args[0] == "stream" and "--run-date" not in args
    parsed = build_parser("stream").parse_args(args[1:])
    assert parsed.configs == [*variables["precis_config"], str(extra)]
    assert parsed.env == "local"
    assert parsed.overrides == [*variables["precis_set"], "stream.max_files_per_trigger=10"]
    cfg = parse_config("stream", args[1:])
    assert (cfg.stream.watermark_minutes, cfg.stream.max_files_per_trigger) == (5, 10)
    # Processes what has landed, then stops: each run of the DAG ends.
    assert cfg.stream.trigger == "available_now"
    assert cfg.root == f"{tmp_path}/lake"
    # The daily tasks' settings but the run date, so the same tables.
    ingest = shared["job_args"]("ingest", RUN_DATE, found, params)
    assert args[1:] == ingest[3:]
    same_date = parse_config("stream", [*args[1:], "--run-date", RUN_DATE])
    assert same_date.config_hash() == parse_config("ingest", ingest[1:]).config_hash()
    # Defaults alone: `precis stream`.
    assert shared["job_args"]("stream", None, shared["settings"](lambda n, d: d), {}) == ["stream"]


def test_the_stream_runs_every_quarter_of_an_hour(stream):
    minute, hour, day, month, weekday = stream["SCHEDULE"].split()
    assert (minute, hour, day, month, weekday) == ("*/15", "*", "*", "*", "*")


def test_a_variable_of_the_wrong_type_is_named(shared):
    with pytest.raises(TypeError, match="Airflow Variable precis_set must be a JSON list"):
        shared["settings"](lambda name, default: "a=b" if name == "precis_set" else default)


def test_airflow_variables_are_those_the_dag_reads(shared, variables, tmp_path):
    # All but the Spark connection's name, which only the Airflow deployment knows.
    assert set(variables) == set(shared["VARIABLES"]) - {"precis_spark_conn_id"}
    assert variables["precis_python"] == sys.executable
    assert variables["precis_config"] == [str((tmp_path / "prod.yaml").resolve())]
    assert (variables["precis_env"], variables["precis_set"]) == (
        "local",
        [f"storage.root={tmp_path}/lake"],
    )
    assert variables["precis_packages"] == ",".join(jvm.packages())
    conf = variables["precis_spark_conf"]
    # What precis gives a session it starts itself, for spark-submit to give instead.
    assert DELTA_CONF.items() <= conf.items()
    assert conf["spark.jars.ivySettings"] == jvm.ivy_settings_path()
    assert conf["spark.checkpoint.dir"] == f"{tmp_path}/lake/_checkpoints"
    assert conf["spark.pyspark.python"] == sys.executable  # local master: local executors
    assert "spark.jars.packages" not in conf  # it is --packages
    # The DAGs pass them on as they are.
    found = shared["settings"](lambda name, default: variables.get(name, default))
    assert shared["spark_conf"](found) == conf


def test_airflow_variables_command_prints_json_or_one_line_reason(tmp_path, capsys):
    assert submit.main(["--airflow-variables", "--set", f"storage.root={tmp_path}"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["precis_set"] == [f"storage.root={tmp_path}"]

    assert submit.main(["--airflow-variables", "--set", "storage.nope=1"]) == 2
    assert "unknown config key 'storage.nope'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="each Airflow run passes its own logical date"):
        submit.airflow_variables(["--run-date", RUN_DATE])


def test_launcher_runs_precis_even_beside_modules_that_would_shadow_its_imports(tmp_path):
    # A DAGs folder holds other files: one named like a dependency must not replace it.
    launcher = tmp_path / "precis_job.py"
    launcher.write_text((DAG_DIR / "precis_job.py").read_text())
    (tmp_path / "yaml.py").write_text("raise ImportError('the DAGs folder shadowed yaml')\n")
    out = subprocess.run(
        [sys.executable, str(launcher), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (out.returncode, out.stdout.strip()) == (0, "precis 0.1.0"), out.stderr[-2000:]
