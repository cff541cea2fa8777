"""experiments: each arm of every campaign experiment against control, once judged.

Reads ``silver/experiment_assignments`` and ``silver/orders`` up to the end of the run
date, ``gold/identity_map`` (and ``gold/identity_guards``, ``silver/experiments`` when
present); ``precis.experiments.build`` resolves each assignment to a person, takes the
experiments whose every window has closed, and compares each arm with control on
conversion and revenue per person (Welch intervals, CUPED, Holm, the sample-ratio
test). Writes this run date's rows of ``gold/experiment_results`` (MERGE by run date,
experiment, arm and metric: an unchanged rerun rewrites nothing); a forest plot and
every number go to MLflow. With ``experiments.explain`` (a one_id) it prints that
person's part instead and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from precis import experiments
from precis import tables as T
from precis.config import Config
from precis.experiments import explain, report
from precis.experiments.results import as_dicts
from precis.person import check_one_id
from precis.progress import Progress, written_detail
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import JobRun, job_run

JOB = "experiments"
STEPS = 3  # compare, write, report


def read(lake: Lakehouse, run_date: dt.date) -> experiments.ExperimentInputs:
    lake.require(T.ORDERS, job="ingest")
    lake.require(T.IDENTITY_MAP, job="identity")
    return experiments.ExperimentInputs(
        assignments=lake.read_as_of(T.EXPERIMENT_ASSIGNMENTS, run_date),
        orders=lake.read_as_of(T.ORDERS, run_date),
        identity_map=lake.read(T.IDENTITY_MAP),
        guards=lake.read_if_exists(T.IDENTITY_GUARDS),
        arms=lake.read_if_exists(T.EXPERIMENTS),
    )


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, STEPS)
    if not lake.exists(T.EXPERIMENT_ASSIGNMENTS):
        return progress.skipped(f"{T.EXPERIMENT_ASSIGNMENTS.ref} not found: no experiment landed")
    if cfg.experiments.explain is not None:
        return run_explain(lake, cfg, cfg.experiments.explain)
    with job_run(cfg, JOB) as tracker:
        with progress.step("compare arms") as step:
            out = experiments.build(
                read(lake, cfg.run_date), cfg.experiments, cfg.run_date, tracker.key
            )
            step.detail = (
                f"{out.counts['judged_experiments']:,} of {out.counts['experiments']:,} "
                "experiments judged"
            )
        with progress.step("write gold") as step:
            written = lake.merge_run_date(out.table, T.EXPERIMENT_RESULTS, cfg.run_date)
            step.detail = written_detail(written)
        with progress.step("report") as step:
            _report(tracker, out, cfg)
            step.detail = "metrics, results and plot logged"
    print("experiments, each arm against control:")
    print(report.text(out.rows))
    flagged = out.counts["srm_failed"]
    progress.finish(
        f"{out.counts['judged_experiments']:,} experiments judged"
        + (f", {flagged} with a sample-ratio mismatch" if flagged else "")
    )
    return {"counts": out.counts, "rows": as_dicts(out.rows), "written": written}


def run_explain(lake: Lakehouse, cfg: Config, one_id: str) -> dict[str, Any]:
    """One person's part, printed; nothing is written."""
    inputs = read(lake, cfg.run_date)
    check_one_id(inputs.identity_map, one_id, lake.read_if_exists(T.IDENTITY_CHANGES))
    found = explain.trace(inputs, cfg.experiments, cfg.run_date, one_id)
    shown = explain.lines(found)
    print("\n".join(shown))
    return {"explained": one_id, "lines": shown}


def _report(tracker: JobRun, out: experiments.ExperimentOutputs, cfg: Config) -> None:
    tracker.log_params(cfg.experiments.model_dump())
    tracker.log_metrics(out.counts)
    tracker.log_metrics(report.metrics(out.rows))
    tracker.log_dict({"counts": out.counts, "results": as_dicts(out.rows)}, "experiments.json")
    if out.rows:
        title = f"Experiments judged by {cfg.run_date}"
        tracker.log_figure(report.forest_figure(out.rows, title), "experiments.png")


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
