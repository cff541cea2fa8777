"""Entry points: spark-submit.sh, python -m jobs.<job>, python -m precis, exit codes and one-line errors.

Only the end-to-end test starts JVMs in subprocesses (~30-40 s each), so it is marked
slow; the failure paths stop before Spark and cost well under a second each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality

from precis import jvm
from precis import tables as T
from precis.errors import ConfigError, MissingDatasetError
from precis.runner import job_main
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
SUBMIT = str(PROJECT / "spark-submit.sh")


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PRECIS_ENV", "SPARK_MASTER", "PYSPARK_GATEWAY_PORT")
    }
    return {**env, **extra}


def run(
    cmd: list[str], env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=PROJECT, env=env or clean_env(), capture_output=True, text=True, timeout=timeout
    )


# ------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_selfcheck_through_spark_submit_then_python_m(spark, tmp_path):
    root = tmp_path / "lakehouse"
    args = ["--set", f"storage.root={root}", "--run-date", "2026-03-31"]

    first = run([SUBMIT, "selfcheck", *args])
    assert first.returncode == 0, first.stderr[-3000:]
    # The same job as a plain module, on the same lakehouse: a rerun must be safe.
    second = run([sys.executable, "-m", "jobs.selfcheck", *args])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Traceback" not in first.stderr + second.stderr

    lake = Lakehouse(spark, str(root))
    assert_df_equality(
        lake.read(T.SELFCHECK),
        spark.createDataFrame(
            [(0, "v0"), (1, "v0"), (2, "v1"), (3, "v1"), (4, "v1")], "id bigint, value string"
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        lake.read(T.SELFCHECK, version=0),
        spark.createDataFrame([(0, "v0"), (1, "v0"), (2, "v0")], "id bigint, value string"),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    db = tmp_path / "mlflow" / "mlflow.db"  # beside the lakehouse
    assert db.is_file()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("precis-selfcheck")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    for logged in runs:
        assert logged.info.status == "FINISHED"
        assert logged.data.metrics == {"rows_now": 5.0, "rows_first_version": 3.0}
        assert logged.data.tags["precis.run_date"] == "2026-03-31"
        assert logged.data.tags["precis.env"] == "local"
        assert logged.data.params["storage.root"] == str(root)


# --------------------------------------------------------------- failing before Spark
def test_bad_key_fails_fast_with_one_line_and_no_jvm(tmp_path):
    # A spark-submit that would leave a mark: it must never be reached.
    marker = tmp_path / "spark-submit-was-called"
    fake = tmp_path / "spark-submit"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)

    started = time.monotonic()
    out = run(
        [SUBMIT, "selfcheck", "--set", "storage.rooot=x"], env=clean_env(SPARK_SUBMIT=str(fake))
    )
    elapsed = time.monotonic() - started

    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("precis selfcheck: error: unknown config key 'storage.rooot'")
    assert not marker.exists()
    assert elapsed < 20  # no JVM: typically well under a second


def test_unknown_job_and_missing_job_name(tmp_path):
    out = run([SUBMIT, "nosuchjob", "--set", f"storage.root={tmp_path}"])
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "unknown job 'nosuchjob'" in lines[0]
    assert "selfcheck" in lines[0]  # the message lists the jobs that exist

    usage = run([SUBMIT])
    assert usage.returncode == 2
    assert usage.stdout.startswith("usage: spark-submit.sh [spark-submit options] <job>")


# ------------------------------------------------------------- the spark-submit command
def test_submit_command_for_local_and_cluster(monkeypatch, tmp_path):
    from precis import submit

    calls = []
    monkeypatch.setenv("SPARK_SUBMIT", "/opt/spark/bin/spark-submit")
    monkeypatch.setattr(submit.os, "execv", lambda path, cmd: calls.append(cmd))
    monkeypatch.setattr(submit.tempfile, "mkdtemp", lambda prefix: str(tmp_path))

    argv = ["--set", f"storage.root={tmp_path}", "--set=spark.conf.spark.sql.shuffle.partitions=2"]
    assert submit.main(["selfcheck", *argv]) == 0
    cmd = calls[-1]
    assert cmd[0] == "/opt/spark/bin/spark-submit"
    assert cmd[cmd.index("--master") + 1] == "local[*]"
    assert cmd[cmd.index("--packages") + 1] == ",".join(jvm.packages())
    confs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--conf"]
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in confs
    assert "spark.sql.shuffle.partitions=2" in confs  # spark.conf beats the local default
    assert "spark.sql.shuffle.partitions=8" not in confs
    assert f"spark.pyspark.python={sys.executable}" in confs
    assert "--py-files" not in cmd
    assert cmd[-len(argv) - 1 :] == [str(PROJECT / "jobs" / "selfcheck.py"), *argv]
    # Launch settings a Spark Connect server would also take: no setCheckpointDir call.
    assert f"spark.checkpoint.dir={tmp_path}/_checkpoints" in confs
    assert "spark.log.level=WARN" in confs

    # SPARK_MASTER beats the config, --set spark.master beats both (either --set form).
    monkeypatch.setenv("SPARK_MASTER", "yarn")
    assert submit.main(["selfcheck", "--set", f"storage.root={tmp_path}"]) == 0
    yarn = calls[-1]
    assert yarn[yarn.index("--master") + 1] == "yarn"
    # Off the local machine the code travels as a zip.
    import zipfile

    names = zipfile.ZipFile(yarn[yarn.index("--py-files") + 1]).namelist()
    # The library with its default configuration (conf/ in a checkout, precis/conf installed).
    assert {
        "precis/config.py",
        "precis/jobs/selfcheck.py",
        "precis/conf/base.yaml",
        "precis/conf/env/cluster.yaml",
    } <= set(names)
    assert not any(n.startswith("jobs/") or "__pycache__" in n for n in names)
    assert not any(a.startswith("spark.pyspark.python=") for a in yarn)
    for form in (["--set", "spark.master=local[2]"], ["--set=spark.master=local[2]"]):
        assert submit.main(["selfcheck", *form]) == 0
        assert calls[-1][calls[-1].index("--master") + 1] == "local[2]"


def test_submit_passes_spark_submit_options_and_ships_configs_in_cluster_mode(
    monkeypatch, tmp_path
):
    from precis import submit

    calls = []
    monkeypatch.setenv("SPARK_SUBMIT", "/opt/spark/bin/spark-submit")
    monkeypatch.setenv("SPARK_MASTER", "yarn")
    monkeypatch.setattr(submit.os, "execv", lambda path, cmd: calls.append(cmd))
    monkeypatch.setattr(submit.tempfile, "mkdtemp", lambda prefix: str(tmp_path))
    mine = tmp_path / "conf" / "prod.yaml"
    mine.parent.mkdir()
    mine.write_text("storage:\n  root: hdfs:///precis/lakehouse\n")

    # Client mode: options before the job name reach spark-submit as given, before the
    # main file; the job's own arguments (config paths included) are untouched.
    options = [
        "--deploy-mode",
        "client",
        "--archives",
        "env.tar.gz#env",
        "--verbose",
        "--executor-memory=2g",
    ]
    assert submit.main([*options, "ingest", "--config", str(mine), "--run-date", "2026-03-31"]) == 0
    cmd = calls[-1]
    main_file = cmd.index(str(PROJECT / "jobs" / "ingest.py"))
    assert cmd[main_file + 1 :] == ["--config", str(mine), "--run-date", "2026-03-31"]
    assert cmd[cmd.index("--archives") + 1] == "env.tar.gz#env"
    assert {"--verbose", "--executor-memory=2g"} <= set(cmd[:main_file])
    assert "spark.checkpoint.dir=hdfs:///precis/lakehouse/_checkpoints" in cmd

    # Cluster mode: the driver runs elsewhere, so --config files travel with --files
    # (beside any the user gave) and the job reads them by name.
    assert (
        submit.main(
            ["--deploy-mode", "cluster", "--files", "extra.txt", "ingest", f"--config={mine}"]
        )
        == 0
    )
    cmd = calls[-1]
    assert cmd[-1] == "--config=prod.yaml"
    assert cmd[cmd.index("--files") + 1] == f"extra.txt,{mine}"
    assert cmd.count("--files") == 1

    assert submit.main(["--deploy-mode"]) == 2  # an option without its value


def test_submit_from_an_installed_precis_writes_a_launcher(monkeypatch, tmp_path):
    from precis import submit

    calls = []
    monkeypatch.setenv("SPARK_SUBMIT", "/opt/spark/bin/spark-submit")
    monkeypatch.setattr(submit.os, "execv", lambda path, cmd: calls.append(cmd))
    monkeypatch.setattr(submit.tempfile, "mkdtemp", lambda prefix: str(tmp_path))
    monkeypatch.setattr(submit, "CHECKOUT_JOBS", tmp_path / "no-checkout")  # as in site-packages
    assert submit.main(["identity", "--set", f"storage.root={tmp_path}"]) == 0
    launcher = Path(calls[-1][calls[-1].index("--set") - 1])
    assert launcher.parent == tmp_path
    assert (
        launcher.read_text()
        == "import sys\nfrom precis.jobs.identity import main\nsys.exit(main())\n"
    )


def test_submit_with_spark_remote_runs_the_job_as_a_connect_client(monkeypatch, tmp_path):
    from precis import submit

    calls = []
    monkeypatch.setenv("SPARK_REMOTE", "sc://localhost:15002")
    monkeypatch.setattr(submit.os, "execv", lambda path, cmd: calls.append(cmd))
    args = ["--set", f"storage.root={tmp_path}", "--run-date", "2026-03-31"]
    assert submit.main(["selfcheck", *args]) == 0
    assert calls[-1] == [sys.executable, "-m", "precis", "selfcheck", *args]


# ------------------------------------------------------------------- in-process job_main
def test_job_main_exit_codes_and_one_line_reasons(spark, tmp_path, monkeypatch, capsys):
    from precis.jobs import selfcheck

    # Leave no log handler bound to pytest's capture stream behind.
    monkeypatch.setattr("precis.runner.configure_logging", lambda: None)
    root = ["--set", f"storage.root={tmp_path / 'lakehouse'}"]

    assert selfcheck.main(["--set", "storage.rooot=x"]) == 2
    assert selfcheck.main(["--run-date", "2026-13-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (
            "precis selfcheck: error: unknown config key 'storage.rooot' "
            "('rooot' is not one of: database_prefix, register_tables, root)"
        ),
        "precis selfcheck: error: --run-date expects YYYY-MM-DD, got '2026-13-01'",
    ]

    seen = []
    assert (
        job_main(
            "demo",
            lambda s, c: seen.append((s, c.run_date.isoformat())),
            [*root, "--run-date", "2026-03-31"],
        )
        == 0
    )
    assert seen == [(spark, "2026-03-31")]  # the active session is reused

    def missing(s, c):
        raise MissingDatasetError("landing dataset 'events' not found at /x/landing/events")

    def broken(s, c):
        raise RuntimeError("boom\nsecond line")

    assert job_main("demo", missing, root) == 3
    assert job_main("demo", broken, root) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "precis demo: error: landing dataset 'events' not found at /x/landing/events",
        "precis demo: error: RuntimeError: boom (PRECIS_DEBUG=1 shows the traceback)",
    ]


def test_pipeline_resolves_jobs_and_names_the_missing_one(monkeypatch):
    from precis import jobs
    from precis.jobs.pipeline import resolve

    assert [m.__name__ for m in resolve(["selfcheck"])] == ["precis.jobs.selfcheck"]
    with pytest.raises(ConfigError, match="unknown job 'selfchek'; jobs: generate, ingest"):
        resolve(["selfcheck", "selfchek"])
    with pytest.raises(ConfigError, match="cannot run itself"):
        resolve(["pipeline"])

    # A known job whose own dependency is missing is not an "unknown job".
    monkeypatch.setattr(jobs, "JOBS", (*jobs.JOBS, "needs_dep"))
    monkeypatch.setattr(
        jobs.importlib, "import_module", lambda name: __import__("precis_missing_dependency_xyz")
    )
    with pytest.raises(ModuleNotFoundError, match="precis_missing_dependency_xyz"):
        resolve(["needs_dep"])
