"""The Airflow DAG (orchestration/airflow/precis_daily.py) against precis, without Airflow.

The DAG file cannot import precis, so it writes the job graph and the Delta settings out;
these tests compare them with precis' own, check that every task's command line is one
the jobs accept, and that ``python -m precis.submit --airflow-variables`` prints exactly
the Variables the DAG reads. The file is read minus every statement that needs Airflow
(its imports and whatever uses them): what is left is its data and plain functions.
tests/airflow/test_precis_daily.py runs the DAG itself, in Airflow.
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


def _bound(node: ast.stmt) -> set[str]:
    names = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        names.add(node.name)
    return names


def without_airflow(path: Path) -> dict[str, Any]:
    """The module namespace of ``path`` run without its Airflow imports and every
    top-level statement that uses a name they (or a statement left out) bind."""
    tree = ast.parse(path.read_text())
    airflow: set[str] = set()
    kept: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            modules += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(m.split(".")[0] == "airflow" for m in modules):
                airflow |= {(a.asname or a.name).split(".")[0] for a in node.names}
                continue
        if {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & airflow:
            airflow |= _bound(node)
            continue
        kept.append(node)
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "precis_daily_without_airflow"}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def dag() -> dict[str, Any]:
    return without_airflow(DAG_DIR / "precis_daily.py")


@pytest.fixture
def variables(tmp_path) -> dict[str, Any]:
    mine = tmp_path / "prod.yaml"
    mine.write_text("generate:\n  people: 500\n")
    return submit.airflow_variables(
        ["--config", str(mine), "--env", "local", "--set", f"storage.root={tmp_path}/lake"]
    )


def test_only_airflow_was_left_out(dag):
    # The graph and the functions the tests below call are plain Python; the operator
    # class and the DAG itself are Airflow's.
    assert {"NEEDS", "DELTA_CONF", "VARIABLES", "settings", "job_args", "spark_conf"} <= set(dag)
    assert not {"PrecisJob", "start_date", "dag", "tasks"} & set(dag)


def test_graph_is_precis_needs_among_the_daily_jobs(dag):
    assert tuple(dag["NEEDS"]) == jobs.DAILY_JOBS
    assert dag["NEEDS"] == {job: jobs.upstream(job, jobs.DAILY_JOBS) for job in jobs.DAILY_JOBS}


def test_delta_settings_are_precis_own(dag):
    assert dag["DELTA_CONF"] == DELTA_CONF
    assert dag["VARIABLES"]["precis_packages"] == ",".join(jvm.packages())
    # Without any Variable set, the Delta extension and catalog still reach spark-submit.
    assert dag["spark_conf"](dag["settings"](lambda name, default: default)) == DELTA_CONF


def test_each_task_runs_a_command_line_its_job_accepts(dag, variables, tmp_path):
    found = dag["settings"](lambda name, default: variables.get(name, default))
    extra = tmp_path / "today.yaml"
    extra.write_text("generate:\n  seed: 7\n")
    params = {"config": [str(extra)], "set": ["generate.items=300"]}
    for job in dag["NEEDS"]:
        args = dag["job_args"](job, RUN_DATE, found, params)
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


def test_defaults_alone_make_a_run_of_the_date(dag):
    found = dag["settings"](lambda name, default: default)
    for job in dag["NEEDS"]:
        args = dag["job_args"](job, RUN_DATE, found, {})
        assert args == [job, "--run-date", RUN_DATE]
        assert parse_config(job, args[1:]).run_date == dt.date(2026, 3, 31)


def test_a_variable_of_the_wrong_type_is_named(dag):
    with pytest.raises(TypeError, match="Airflow Variable precis_set must be a JSON list"):
        dag["settings"](lambda name, default: "a=b" if name == "precis_set" else default)


def test_airflow_variables_are_those_the_dag_reads(dag, variables, tmp_path):
    # All but the Spark connection's name, which only the Airflow deployment knows.
    assert set(variables) == set(dag["VARIABLES"]) - {"precis_spark_conn_id"}
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
    # The DAG passes them on as they are.
    found = dag["settings"](lambda name, default: variables.get(name, default))
    assert dag["spark_conf"](found) == conf


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
