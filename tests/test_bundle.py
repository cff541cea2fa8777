"""The Databricks Asset Bundle: ``databricks.yml`` and the jobs in ``resources/``.

Two Databricks jobs, each task a ``python_wheel_task`` that calls the wheel's ``precis``
entry point with the same settings: ``precis_daily`` runs ``precis.jobs.DAILY_JOBS`` for a
run date, every day; ``precis_stream`` runs ``precis stream`` (available-now) every 15
minutes. No workspace exists here, so the bundle is checked against what it points at:
precis itself parses each task's command line, the daily task graph is
``precis.jobs.NEEDS``, and the artifact's build command really builds the wheel the tasks
install.

The ``${...}`` references of the bundle are resolved as the Databricks CLI resolves them,
for those this bundle uses (an unknown one fails the test). What only a workspace knows
is a stand-in: the current user, and the folder the bundle's files are synced to, which
is this checkout (the tasks read their ``--config`` file from there).
"""

from __future__ import annotations

import configparser
import copy
import datetime as dt
import functools
import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from precis import jobs
from precis.config import Config
from precis.runner import build_parser, parse_config

PROJECT = Path(__file__).resolve().parents[1]
BUNDLE = PROJECT / "databricks.yml"
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())
DISTRIBUTION = PYPROJECT["project"]["name"]
SCRIPTS = PYPROJECT["project"]["scripts"]
DAILY = "precis_daily"
STREAM = "precis_stream"
BUNDLE_JOBS = (DAILY, STREAM)
TARGETS = ("dev", "prod")

#: What a task passes as --run-date and --triggered-on, and what Databricks puts there for
#: the test's scheduled run: an empty run_date (the default) and the trigger's date.
RUN_DATE_REFERENCE = "{{job.parameters.run_date}}"
TRIGGER_REFERENCE = "{{job.trigger.time.iso_date}}"
TRIGGERED_ON = dt.date(2026, 4, 1)
RUN_DATE = dt.date(2026, 3, 31)  # the day that has just ended
#: The deploying user, as the workspace would report it (and the CLI's short form).
USER = "ada.lovelace@example.com"
SHORT_NAME = "ada_lovelace"

REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")
#: Local state the bundle's build never needs; copying it would only slow the copy.
LOCAL_ONLY = (
    ".git",
    ".venv",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "lakehouse",
    "mlflow",
    "spark-warehouse",
    "metastore_db",
)


# ------------------------------------------------------------------ the bundle, resolved
def raw_bundle() -> dict[str, Any]:
    """databricks.yml with the files it includes merged into ``resources``, unresolved."""
    root = yaml.safe_load(BUNDLE.read_text())
    resources: dict[str, dict[str, Any]] = {}
    for pattern in root.get("include", []):
        for path in sorted(PROJECT.glob(pattern)):
            included = yaml.safe_load(path.read_text())
            assert set(included) == {"resources"}, f"{path} declares more than resources"
            for kind, items in included["resources"].items():
                assert not set(items) & set(resources.get(kind, {})), f"{path} redefines {kind}"
                resources.setdefault(kind, {}).update(items)
    return {**root, "resources": resources}


def variables(target: str) -> dict[str, Any]:
    """The bundle's variables for ``target``: the defaults, then the target's values."""
    root = raw_bundle()
    values = {name: spec["default"] for name, spec in root["variables"].items()}
    for name, value in (root["targets"][target].get("variables") or {}).items():
        assert name in values, f"target {target} sets variable {name}, which is not declared"
        values[name] = value
    return values


def resolve(value: Any, context: dict[str, Any]) -> Any:
    """``value`` with every ``${name}`` replaced from ``context``, as the CLI does: a
    string that is one whole reference takes the value's type (``num_workers`` stays an
    int); references inside a value are resolved in turn (a variable naming the user)."""
    if isinstance(value, dict):
        return {k: resolve(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(name: str) -> Any:
        assert name in context, f"${{{name}}} is not a reference this test resolves"
        return context[name]

    for _ in range(10):
        whole = REFERENCE.fullmatch(value)
        found = lookup(whole.group(1)) if whole else None
        if whole and not isinstance(found, str):
            return found
        replaced = REFERENCE.sub(lambda m: str(lookup(m.group(1))), value)
        if replaced == value:
            return value
        value = replaced
    raise AssertionError(f"references nest too deep in {value!r}")


@functools.cache
def resolved(target: str) -> dict[str, Any]:
    """The bundle as deployed to ``target``: its variables and its jobs, by name."""
    root = raw_bundle()
    settings = root["targets"][target]
    # Target-level resource overrides would need the CLI's merge rules (tasks merged by
    # task_key); the bundle keeps targets to variables and workspace settings instead.
    assert "resources" not in settings
    context: dict[str, Any] = {
        "bundle.name": root["bundle"]["name"],
        "bundle.target": target,
        "workspace.current_user.userName": USER,
        "workspace.current_user.short_name": SHORT_NAME,
        # The synced copy of the bundle's folder holds the same files as this checkout.
        "workspace.file_path": str(PROJECT),
    }
    raw_variables = variables(target)
    context.update({f"var.{name}": value for name, value in raw_variables.items()})
    context.update({f"var.{name}": resolve(v, context) for name, v in raw_variables.items()})
    return {
        "variables": {name: context[f"var.{name}"] for name in raw_variables},
        "jobs": {name: resolve(spec, context) for name, spec in root["resources"]["jobs"].items()},
    }


def bundle_job(target: str, name: str) -> dict[str, Any]:
    """The Databricks job ``name`` (``precis_daily``, ``precis_stream``) as deployed."""
    return resolved(target)["jobs"][name]


def tasks(target: str, name: str) -> dict[str, dict[str, Any]]:
    return {t["task_key"]: t for t in bundle_job(target, name)["tasks"]}


def command_line(task: dict[str, Any], run_date: dt.date | None = None) -> list[str]:
    """The task's ``precis`` arguments with the references as Databricks fills them: the
    ``run_date`` parameter (empty unless given) and the trigger's date."""
    filled = {
        RUN_DATE_REFERENCE: run_date.isoformat() if run_date else "",
        TRIGGER_REFERENCE: TRIGGERED_ON.isoformat(),
    }
    return [filled.get(p, p) for p in task["python_wheel_task"]["parameters"]]


@functools.cache
def config(target: str, job: str, name: str) -> Config:
    """What precis makes of the command line of task ``job`` of the Databricks job
    ``name``, exactly as ``precis <job> ...`` does."""
    precis_job, *rest = command_line(tasks(target, name)[job])
    return parse_config(precis_job, rest)


# -------------------------------------------------------------------------- structure
def test_two_jobs_and_a_dev_and_a_prod_target():
    root = raw_bundle()
    assert root["bundle"]["name"] == DISTRIBUTION
    assert set(root["resources"]) == {"jobs"}
    assert set(root["resources"]["jobs"]) == set(BUNDLE_JOBS)
    assert {t: root["targets"][t]["mode"] for t in root["targets"]} == {
        "dev": "development",
        "prod": "production",
    }
    # `databricks bundle deploy` without -t must never mean production.
    assert [t for t, s in root["targets"].items() if s.get("default")] == ["dev"]
    # Production mode refuses to deploy without an explicit root (one copy of the job).
    assert "root_path" in root["targets"]["prod"]["workspace"]


def test_tasks_are_the_daily_jobs_each_waiting_for_its_upstream_jobs():
    found = tasks("prod", DAILY)
    assert set(found) == set(jobs.DAILY_JOBS)
    waits = {key: tuple(d["task_key"] for d in t.get("depends_on", [])) for key, t in found.items()}
    assert waits == {job: jobs.upstream(job, jobs.DAILY_JOBS) for job in jobs.DAILY_JOBS}


@pytest.mark.parametrize("name", BUNDLE_JOBS)
def test_every_task_calls_the_precis_entry_point_of_the_wheel(name):
    job = bundle_job("prod", name)
    clusters = {c["job_cluster_key"] for c in job["job_clusters"]}
    task_types = {"python_wheel_task", "notebook_task", "spark_python_task", "sql_task"}
    for key, task in tasks("prod", name).items():
        assert set(task) & task_types == {"python_wheel_task"}, key
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == DISTRIBUTION
        assert wheel_task["entry_point"] in SCRIPTS
        # The entry point is precis' command line, the function it names exists.
        module, _, function = SCRIPTS[wheel_task["entry_point"]].partition(":")
        assert (module, function) == ("precis.cli", "main")
        assert callable(getattr(importlib.import_module(module), function))
        assert task["libraries"] == [{"whl": "../dist/*.whl"}], key
        assert task["job_cluster_key"] in clusters


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("job", jobs.DAILY_JOBS)
def test_task_command_line_is_one_precis_accepts(target, job):
    name, *rest = tasks(target, DAILY)[job]["python_wheel_task"]["parameters"]
    assert name == job
    # `precis <job>` finds the job's module through precis.jobs, as precis.cli.main does.
    assert callable(jobs.load(name).main)
    args = build_parser(name).parse_args(rest)
    assert args.run_date == RUN_DATE_REFERENCE and args.triggered_on == TRIGGER_REFERENCE
    assert args.env == "databricks"
    assert args.configs == [str(PROJECT / "conf" / "env" / "databricks.yaml")]

    cfg = config(target, job, DAILY)
    settings = resolved(target)["variables"]
    assert cfg.run_date == RUN_DATE
    assert cfg.env == "databricks"
    # The databricks overlay applied: the workspace's MLflow and Unity Catalog registry.
    assert (cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri) == ("databricks", "databricks-uc")
    assert cfg.spark.add_packages is False
    assert cfg.storage.root == settings["storage_root"]
    assert cfg.storage.database_prefix == settings["database_prefix"]
    assert cfg.mlflow.experiment_prefix == settings["experiment_prefix"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_task_of_a_run_gets_the_same_settings(target):
    # One run's jobs read each other's tables: they must agree on where those are.
    settings = {key: tuple(command_line(t)[1:]) for key, t in tasks(target, DAILY).items()}
    assert len(set(settings.values())) == 1, settings
    hashes = {config(target, job, DAILY).config_hash() for job in jobs.DAILY_JOBS}
    assert len(hashes) == 1


def test_dev_runs_stay_out_of_production():
    dev, prod = config("dev", "recommend", DAILY), config("prod", "recommend", DAILY)
    assert dev.storage.root == f"dbfs:/precis/dev/{SHORT_NAME}/lakehouse"
    assert prod.storage.root == "dbfs:/precis/lakehouse"
    assert (dev.storage.database_prefix, prod.storage.database_prefix) == (
        f"precis_dev_{SHORT_NAME}_",
        "precis_",
    )
    assert dev.mlflow.experiment_prefix == f"/Users/{USER}/precis/"
    assert prod.mlflow.experiment_prefix == "/Shared/precis/"
    # Dev logs its models without registering them; prod registers them in Unity Catalog.
    assert (dev.recommend.registered_model_name, dev.lifecycle.churn.registered_model_name) == (
        None,
        None,
    )
    assert (prod.recommend.registered_model_name, prod.lifecycle.churn.registered_model_name) == (
        "main.precis.recommend_als",
        "main.precis.lifecycle_churn",
    )


@pytest.mark.parametrize("name", BUNDLE_JOBS)
def test_what_differs_between_workspaces_is_a_variable(name):
    job = raw_bundle()["resources"]["jobs"][name]
    (cluster,) = job["job_clusters"]
    spec = cluster["new_cluster"]
    assert (spec["spark_version"], spec["node_type_id"], spec["num_workers"]) == (
        "${var.spark_version}",
        "${var.node_type_id}",
        "${var.num_workers}",
    )
    assert spec["spark_conf"]["spark.checkpoint.dir"] == "${var.storage_root}/_checkpoints"
    assert job["email_notifications"]["on_failure"] == ["${var.alert_email}"]
    for task in job["tasks"]:
        params = task["python_wheel_task"]["parameters"]
        assert params[params.index("--config") + 1] == "${workspace.file_path}/${var.config_file}"
        sets = [params[i + 1] for i, p in enumerate(params) if p == "--set"]
        assert sets == [
            "storage.root=${var.storage_root}",
            "storage.database_prefix=${var.database_prefix}",
            "mlflow.experiment_prefix=${var.experiment_prefix}",
            "recommend.registered_model_name=${var.recommend_model}",
            "lifecycle.churn.registered_model_name=${var.churn_model}",
        ]


# ------------------------------------------------------------------------ how it runs
def test_run_date_defaults_to_the_day_before_the_run_was_triggered():
    job = bundle_job("prod", DAILY)
    assert job["parameters"] == [{"name": "run_date", "default": ""}]
    for task in tasks("prod", DAILY).values():
        name, *rest = command_line(task)
        assert parse_config(name, rest).run_date == TRIGGERED_ON - dt.timedelta(days=1)
    # A backfill sets the parameter: another date reaches every task, and precis takes it.
    backfill = dt.date(2025, 12, 1)
    for task in tasks("prod", DAILY).values():
        name, *rest = command_line(task, backfill)
        assert parse_config(name, rest).run_date == backfill


@pytest.mark.parametrize(("target", "pause_status"), [("dev", "PAUSED"), ("prod", "UNPAUSED")])
def test_schedule_is_daily_in_utc_and_runs_only_in_prod(target, pause_status):
    schedule = bundle_job(target, DAILY)["schedule"]
    assert schedule["pause_status"] == pause_status
    assert schedule["timezone_id"] == "UTC"
    # Quartz: seconds minutes hours day-of-month month day-of-week.
    seconds, minutes, hours, day, month, weekday = schedule["quartz_cron_expression"].split()
    assert (day, month, weekday) == ("*", "*", "?")  # every day
    assert seconds == minutes == "0"
    assert 0 <= int(hours) <= 23  # once, at a fixed hour


def test_failed_tasks_retry_and_a_failed_run_emails_and_runs_never_overlap():
    job = bundle_job("prod", DAILY)
    assert job["max_concurrent_runs"] == 1
    assert job["queue"] == {"enabled": True}  # a run triggered meanwhile waits, not skipped
    assert 0 < job["timeout_seconds"] < 24 * 3600  # a hung run cannot hold the next day's
    for key, task in tasks("prod", DAILY).items():
        assert task["max_retries"] == 2, key
        assert task["min_retry_interval_millis"] == 10 * 60 * 1000, key
    assert job["email_notifications"] == {"on_failure": ["precis-alerts@example.com"]}
    dev = bundle_job("dev", DAILY)
    assert dev["email_notifications"] == {"on_failure": [USER]}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("name", "task"), [(DAILY, "identity"), (STREAM, "stream")])
def test_the_cluster_gives_precis_its_key_and_its_checkpoints(target, name, task):
    (cluster,) = bundle_job(target, name)["job_clusters"]
    spec = cluster["new_cluster"]
    cfg = config(target, task, name)
    # The environment variable precis reads the hashing key from, filled from a secret.
    assert set(spec["spark_env_vars"]) == {cfg.privacy.pii_key_env}
    assert spec["spark_env_vars"][cfg.privacy.pii_key_env] == "{{secrets/precis/pii_key}}"
    # precis reuses the cluster's session: the launch settings it gives sessions it
    # starts (precis.session.launch_conf) must come from the cluster.
    assert spec["spark_conf"]["spark.checkpoint.dir"] == cfg.checkpoint_dir
    assert spec["spark_conf"]["spark.cleaner.referenceTracking.cleanCheckpoints"] == "true"
    assert spec["spark_conf"]["spark.sql.session.timeZone"] == "UTC"
    assert spec["data_security_mode"] == "SINGLE_USER"
    # Spark 4 (Databricks Runtime 17 and later) reads spark.checkpoint.dir at start.
    assert int(spec["spark_version"].split(".")[0]) >= 17
    assert isinstance(spec["num_workers"], int)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", BUNDLE_JOBS)
def test_the_job_is_one_the_databricks_bundles_package_accepts(target, name):
    # databricks-bundles (PyPI) holds the CLI's typed model of a job: unknown fields and
    # values outside an enumeration are errors there, as they are at deploy time.
    from databricks.bundles import jobs as bundles_jobs

    spec = bundle_job(target, name)
    job = bundles_jobs.Job.from_dict(copy.deepcopy(spec))
    assert job.as_dict() == spec


# ------------------------------------------------------------------------- the stream
@pytest.mark.parametrize("target", TARGETS)
def test_the_stream_is_one_task_whose_command_line_precis_accepts(target):
    found = tasks(target, STREAM)
    assert set(found) == {"stream"}
    assert "stream" in jobs.JOBS and "stream" not in jobs.DAILY_JOBS
    name, *rest = found["stream"]["python_wheel_task"]["parameters"]
    assert name == "stream"
    assert callable(jobs.load(name).main)
    args = build_parser(name).parse_args(rest)
    # It works on event time: no run date to give, none to get wrong.
    assert args.run_date is None and args.triggered_on is None
    assert args.env == "databricks"
    assert args.configs == [str(PROJECT / "conf" / "env" / "databricks.yaml")]

    cfg = config(target, "stream", STREAM)
    settings = resolved(target)["variables"]
    assert cfg.env == "databricks"
    assert (cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri) == ("databricks", "databricks-uc")
    assert cfg.storage.root == settings["storage_root"]
    # Processes what has landed and stops: a run of a job ends, and the next landing
    # starts the next one. An interval would keep the run, and the queue, going.
    assert cfg.stream.trigger == "available_now"
    assert cfg.stream.run_seconds is None


@pytest.mark.parametrize("target", TARGETS)
def test_the_stream_gets_the_settings_of_the_daily_tasks(target):
    # It reads the tables the daily tasks write (identity map, segments) and writes
    # beside them: the same arguments but the run date, and so the same config.
    daily = command_line(tasks(target, DAILY)["identity"])[1:]
    for flag in ("--run-date", "--triggered-on"):
        at = daily.index(flag)
        del daily[at : at + 2]
    stream = command_line(tasks(target, STREAM)["stream"])
    assert stream[1:] == daily
    # The config hash covers the run date: given the daily tasks' run date, it is theirs.
    name, *rest = stream
    same_date = parse_config(name, [*rest, "--run-date", RUN_DATE.isoformat()])
    assert same_date.config_hash() == config(target, "identity", DAILY).config_hash()


@pytest.mark.parametrize("target", TARGETS)
def test_the_stream_runs_on_the_daily_jobs_cluster(target):
    # Same runtime, key, checkpoints and time zone: written twice, checked equal here.
    stream, daily = bundle_job(target, STREAM), bundle_job(target, DAILY)
    assert stream["job_clusters"] == daily["job_clusters"]


@pytest.mark.parametrize(("target", "pause_status"), [("dev", "PAUSED"), ("prod", "UNPAUSED")])
def test_the_stream_runs_every_15_minutes_and_only_in_prod(target, pause_status):
    job = bundle_job(target, STREAM)
    # A periodic trigger works on any storage (a file arrival trigger needs a Unity
    # Catalog location, which the default dbfs:/ root is not; the file says how).
    assert "schedule" not in job and "continuous" not in job and "parameters" not in job
    assert job["trigger"] == {
        "pause_status": pause_status,
        "periodic": {"interval": 15, "unit": "MINUTES"},
    }
    raw = raw_bundle()["resources"]["jobs"][STREAM]["trigger"]
    assert raw["pause_status"] == "${var.schedule_pause_status}"


def test_stream_runs_never_overlap_and_a_failed_run_retries_and_emails():
    job = bundle_job("prod", STREAM)
    # One checkpoint, one lease on the storage root: one run at a time. Files that land
    # during a run queue the next one rather than being skipped until the next landing.
    assert job["max_concurrent_runs"] == 1
    assert job["queue"] == {"enabled": True}
    assert 0 < job["timeout_seconds"] <= 4 * 3600  # a hung run cannot hold the queue for long
    (task,) = tasks("prod", STREAM).values()
    assert task["max_retries"] == 2
    assert task["min_retry_interval_millis"] == 10 * 60 * 1000
    assert job["email_notifications"] == {"on_failure": ["precis-alerts@example.com"]}
    assert bundle_job("dev", STREAM)["email_notifications"] == {"on_failure": [USER]}


# ---------------------------------------------------------------------------- the wheel
@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A copy of the project after the bundle's artifact build ran in it, the way the CLI
    runs it: ``bash -ec <build>`` in the artifact's path, ``python3`` being this Python."""
    (artifact,) = raw_bundle()["artifacts"].values()
    assert artifact["type"] == "whl"
    copied = tmp_path_factory.mktemp("bundle") / "precis"
    shutil.copytree(PROJECT, copied, ignore=shutil.ignore_patterns(*LOCAL_ONLY))
    # A wheel of an older version, left from an earlier build: it must not be shipped.
    (copied / "dist").mkdir()
    (copied / "dist" / f"{DISTRIBUTION}-0.0.1-py3-none-any.whl").write_bytes(b"old")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    out = subprocess.run(
        ["bash", "-ec", artifact["build"]],
        cwd=copied / artifact["path"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, f"{artifact['build']} failed:\n{out.stderr[-4000:]}"
    return copied


def test_the_artifact_build_makes_the_one_wheel_every_task_installs(built):
    every_task = [t for name in BUNDLE_JOBS for t in tasks("prod", name).values()]
    (library,) = {lib["whl"] for t in every_task for lib in t["libraries"]}
    # A task's library path is relative to the file that declares it (resources/).
    pattern = Path(library)
    wheels = sorted((built / "resources" / pattern.parent).glob(pattern.name))
    version = PYPROJECT["project"]["version"]
    assert [w.name for w in wheels] == [f"{DISTRIBUTION}-{version}-py3-none-any.whl"]

    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        info = f"{DISTRIBUTION}-{version}.dist-info"
        entry_points = configparser.ConfigParser()
        entry_points.read_string(wheel.read(f"{info}/entry_points.txt").decode())
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert dict(entry_points["console_scripts"]) == SCRIPTS
    for task in every_task:
        wheel_task = task["python_wheel_task"]
        assert entry_points["console_scripts"][wheel_task["entry_point"]] == "precis.cli:main"
        assert f"Name: {wheel_task['package_name']}\n" in metadata
    # What `precis <job> --env databricks` loads, packaged: no checkout on the cluster.
    assert {"precis/cli.py", "precis/conf/base.yaml", "precis/conf/env/databricks.yaml"} <= names
    # The runtime's own Spark stays: the wheel asks for PySpark only in extras.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert all("pyspark" not in r or "extra ==" in r for r in requires), requires


def test_a_failing_job_fails_its_wheel_task(monkeypatch):
    """Call the entry point the way Databricks does: its function, with ``sys.argv`` set
    to the package name and the task's parameters, and its return value ignored (the
    CLI's python_wheel_wrapper, which stands in for the wheel runner on old runtimes,
    runs ``entry[0].load()()``)."""
    (entry,) = [
        ep
        for ep in importlib.metadata.distribution(DISTRIBUTION).entry_points
        if ep.group == "console_scripts" and ep.name == "precis"
    ]
    monkeypatch.setattr(sys, "argv", [DISTRIBUTION, "ingest", "--run-date", "31.03.2026"])
    try:
        entry.load()()
    except SystemExit as exc:
        assert exc.code not in (0, None)
    except Exception:
        pass  # any exception fails the task, as it should
    else:
        pytest.fail("`precis ingest --run-date 31.03.2026` returned normally: the task succeeds")
