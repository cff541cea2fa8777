"""The small generated world of the crash and concurrency tests.

conftest.py generates it once per test worker (``landed``) and runs the jobs on it once
without interruption (``uninterrupted``); the scheduler in conftest.py sends the modules
that use it to the same worker. Each scenario copies the landing folder into a lakehouse
of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyspark.sql import SparkSession

from precis import jobs
from precis.config import Config, load_config
from precis.jobs import generate

PROJECT = Path(__file__).resolve().parents[1]
RUN_DATE = "2026-03-31"
JOBS = ("ingest", "identity", "lifecycle", "tags", "recommend")
SETTINGS = [
    "generate.people=100",
    "generate.items=30",
    "generate.days=90",
    "generate.partitions=2",
    "generate.corrupt_fraction=0.05",
    "recommend.grid.rank=[4]",
    "recommend.grid.reg_param=[0.1]",
    "recommend.grid.alpha=[10.0]",
    "recommend.max_iter=3",
    # Small worlds: ALS need not beat popularity for the tests to see its lists.
    "recommend.require_lift=false",
    "recommend.measure_decay=false",
    "lifecycle.churn.log_model=false",
]


def config(root: Path, *more: str) -> Config:
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={root}", "mlflow.enabled=false", *SETTINGS, *more],
        run_date=RUN_DATE,
    )


def run_job(root: Path, job: str, *more: str):
    return jobs.load(job).run(SparkSession.getActiveSession(), config(root, *more))


def generate_world(spark: SparkSession, where: Path) -> Path:
    """A generated world's landing folder, to copy into each scenario's lakehouse."""
    root = where / "lakehouse"
    generate.run(spark, config(root))
    return root / "landing"


def copy_world(landed: Path, where: Path) -> Path:
    """A lakehouse under ``where`` holding a copy of the landing folder ``landed``."""
    root = where / "lakehouse"
    shutil.copytree(landed, root / "landing")
    return root
