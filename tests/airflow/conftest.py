"""An Airflow home and metadata database of their own, set before Airflow is imported,
and the DAGs folder as a user deploys it."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HOME: Path | None = None
DAG_SOURCES = Path(__file__).resolve().parents[2] / "orchestration" / "airflow"
#: What a user copies into the DAGs folder (docs/running.md): the two DAG files, the
#: module they share and the launcher spark-submit runs.
DAG_FILES = ("precis_daily.py", "precis_stream.py", "precis_tasks.py", "precis_job.py")

#: The first run date the DAG schedules, given as Airflow gives any Variable through the
#: environment; test_precis_daily.py checks the DAG reads it.
START_DATE = "2026-03-01"


def airflow_installed() -> bool:
    # Asked of the installed distributions, not the import system: importing Airflow
    # reads its settings, and where tests/ is on sys.path this folder is an importable
    # "airflow" namespace package.
    try:
        importlib.metadata.distribution("apache-airflow")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def pytest_configure(config):
    global HOME
    if not airflow_installed():
        return  # the project's own environment: the test modules skip themselves
    HOME = Path(tempfile.mkdtemp(prefix="precis-airflow-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(HOME / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            "AIRFLOW_VAR_PRECIS_START_DATE": START_DATE,
            # The jobs the DAG submits read the suite's Spark defaults, like every Spark
            # process of the main suite (tests/spark-conf/spark-defaults.conf says why).
            "SPARK_CONF_DIR": str(Path(__file__).resolve().parents[1] / "spark-conf"),
        }
    )


def pytest_unconfigure(config):
    if HOME is not None:
        shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    """The DAGs folder holding :data:`DAG_FILES`, and a migrated metadata database."""
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    for name in DAG_FILES:
        shutil.copy(DAG_SOURCES / name, dags / name)
    migrate = [sys.executable, "-m", "airflow", "db", "migrate"]
    out = subprocess.run(migrate, capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, f"airflow db migrate exited {out.returncode}:\n{out.stderr[-6000:]}"
    return dags


@pytest.fixture(scope="session")
def dag_bag(dags_folder):
    """Every DAG of the folder, parsed as the DAG processor and a task's runner parse it:
    a bundle whose folder is on sys.path, so the DAG files import precis_tasks."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=dags_folder, bundle_path=dags_folder)
