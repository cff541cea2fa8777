"""report: one static page of what the run date's jobs wrote, for people and machines.

Reads the meta and gold tables the other jobs wrote (ingest and identity runs,
quarantine, identity map, changes and guards, customer value, tag stats, segments,
recommendations, attribution, budget plan, experiment results, model figures,
evaluations and the pipeline's ledger); ``precis.report`` turns each into a section's
figures and charts. Writes ``<report.path>/<run_date>/index.html`` (default
``<storage.root>/reports``): self-contained (images inline, no network), its figures
embedded as JSON; logs the page to MLflow. Writes no table. A missing table or run date
makes its section say so; the page is written regardless.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from precis import tables as T
from precis.config import Config
from precis.contract import DATASETS
from precis.progress import Progress, log
from precis.report.build import build, headline
from precis.report.inputs import Inputs
from precis.report.page import read_figures, render
from precis.runner import job_main, one_writer
from precis.settings import local_file_path
from precis.storage import Lakehouse
from precis.tracking import job_run

JOB = "report"
STEPS = 3  # read, figures and charts, write


def read(lake: Lakehouse, run_date: dt.date) -> Inputs:
    return Inputs(
        run_date=run_date,
        ingest_runs=lake.read_if_exists(T.INGEST_RUNS),
        quarantine=lake.read_if_exists(T.QUARANTINE),
        identity_runs=lake.read_if_exists(T.IDENTITY_RUNS),
        identity_map=lake.read_if_exists(T.IDENTITY_MAP),
        identity_changes=lake.read_if_exists(T.IDENTITY_CHANGES),
        identity_guards=lake.read_if_exists(T.IDENTITY_GUARDS),
        customer_value=lake.read_if_exists(T.CUSTOMER_VALUE),
        tag_stats=lake.read_if_exists(T.TAG_STATS),
        segments=lake.read_if_exists(T.SEGMENTS),
        recommendations=lake.read_if_exists(T.RECOMMENDATIONS),
        items=lake.read_if_exists(T.ITEMS),
        attribution=lake.read_if_exists(T.ATTRIBUTION),
        budget_plan=lake.read_if_exists(T.BUDGET_PLAN),
        experiment_results=lake.read_if_exists(T.EXPERIMENT_RESULTS),
        model_metrics=lake.read_if_exists(T.MODEL_METRICS),
        evaluations=lake.read_if_exists(T.EVALUATIONS),
        pipeline_runs=lake.read_if_exists(T.PIPELINE_RUNS),
    )


def report_folder(cfg: Config) -> str:
    """Where the run date's page goes: ``<report.path or storage.root/reports>/<date>``."""
    base = cfg.report.path or f"{cfg.root}/reports"
    return f"{base.rstrip('/')}/{cfg.run_date.isoformat()}"


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, STEPS)
    with job_run(cfg, JOB) as tracker:
        with progress.step("read tables"):
            inputs = read(lake, cfg.run_date)
        with progress.step("figures and charts") as step:
            sections = build(inputs, cfg.report, DATASETS)
            facts = {
                "run date": cfg.run_date.isoformat(),
                "storage root": cfg.root,
                "generated at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "run id": tracker.key,
                "config hash": cfg.config_hash()[:12],
            }
            html = render(
                "precis run report",
                cfg.run_date.isoformat(),
                sections,
                facts,
                headline=headline(sections),
            )
            missing = [s.key for s in sections if s.missing]
            step.rows = sum(len(rows) for s in sections for rows in s.figures.values())
            step.detail = f"{len(sections)} sections" + (
                f", no data for: {', '.join(missing)}" if missing else ""
            )
        with progress.step("write the page") as step:
            folder = report_folder(cfg)
            path = publish(html, folder)
            tracker.log_text(html, "report/index.html")
            tracker.log_dict(read_figures(html), "report/figures.json")
            step.detail = path or f"{folder} is not reachable from here: the page is in MLflow only"
    result = {"path": path, "sections": [s.key for s in sections], "missing": missing}
    print(f"report: {path or 'MLflow artifact report/index.html'}")
    progress.finish(f"{len(sections) - len(missing)} of {len(sections)} sections with data")
    return result


def publish(html: str, folder: str) -> str | None:
    """Write ``folder/index.html`` whole or not at all (a temporary file renamed over it),
    so a crash never leaves half a page. None, with a warning, when this process cannot
    see where the pages go: an object store, or a folder whose parent is not here (a
    Spark Connect client away from the cluster's storage: ``report.path`` can name a
    mounted folder); the page is then in MLflow only."""
    local = local_file_path(folder)
    # <base>/<run_date>: the base (reports/) may be new, its parent (the root) must be here.
    if local is None or not Path(local).parent.parent.is_dir():
        log.warning("[%s] %s is not reachable from here: the page is in MLflow only", JOB, folder)
        return None
    target = Path(local)
    target.mkdir(parents=True, exist_ok=True)
    staged = target / f".index-{uuid.uuid4().hex}.tmp"  # readable as the umask allows
    staged.write_text(html, encoding="utf-8")
    os.replace(staged, target / "index.html")
    return str(target / "index.html")


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
