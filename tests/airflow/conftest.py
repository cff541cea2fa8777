"""An Airflow home and metadata database of their own, set before Airflow is imported."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

HOME: Path | None = None

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
        return  # the project's own environment: test_precis_daily.py skips itself
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
