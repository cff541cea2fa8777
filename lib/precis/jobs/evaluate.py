"""evaluate: score the jobs' outputs against the generator's ground truth.

Only this job (and the tests) read ``<storage.root>/truth/``; the other jobs never do.
For each product present it prints the scores, logs them to MLflow and replaces this
run date's rows of ``meta/evaluations`` (run_date, run_id, target, metric, value).
Each target's metrics (docs/tables.md, ``meta/evaluations``) come from its ``quality``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import frames
from precis import tables as T
from precis.attribution import quality as attribution_quality
from precis.columns import RUN_DATE
from precis.config import Config
from precis.errors import MissingDatasetError
from precis.experiments import quality as experiment_quality
from precis.identity import quality, records
from precis.keys import job_key
from precis.lifecycle import quality as lifecycle_quality
from precis.progress import Progress
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import job_run

JOB = "evaluate"


def evaluate_identity(lake: Lakehouse, cfg: Config) -> dict[str, float] | None:
    if not (lake.exists(T.RECORD_IDENTITY) and lake.exists(T.RECORD_PERSON)):
        return None
    truth, found = lake.read(T.RECORD_PERSON), lake.read(T.RECORD_IDENTITY)
    return quality.pairwise_scores(found, truth, evidence(lake, cfg, truth))


def evidence(lake: Lakehouse, cfg: Config, truth: DataFrame) -> DataFrame:
    """Records in evidence groups (``quality.evidence_groups``); the traps are none."""
    silver = {n: lake.read(T.SILVER[n]) for n in records.SOURCES if lake.exists(T.SILVER[n])}
    key = job_key(lake, cfg)
    shared = quality.trap_keys(lake.read(T.TRUTH["traps"]), cfg.ingest, cfg.privacy.pii_types, key)
    found, where = records.identified_records(silver), frames.checkpoint_dir(lake.spark)
    return frames.cut(quality.evidence_groups(found, truth, where, shared))


def evaluate_lifecycle(lake: Lakehouse, cfg: Config) -> dict[str, float] | None:
    needed = (T.CLV_MODEL_PARAMS, T.CUSTOMER_VALUE, T.PERSON_PURCHASE_PARAMS)
    if not all(lake.exists(table) for table in needed):
        return None
    day = cfg.run_date
    value = lake.read_snapshot(T.CUSTOMER_VALUE, day)
    params = lake.read(T.CLV_MODEL_PARAMS)
    rows = params.filter((F.col(RUN_DATE) == F.lit(day)) & (F.col("model") == "bg_nbd")).collect()
    if value is None or not rows:
        return None  # lifecycle has not run for this date
    unit = rows[0]["time_unit"]
    fitted = lifecycle_quality.in_days({r["param"]: r["value"] for r in rows}, unit)
    g = cfg.generate
    truth = lifecycle_quality.true_params(g.btyd_r, g.btyd_alpha, g.btyd_a, g.btyd_b, g.refund_rate)
    record_person = lake.read(T.RECORD_PERSON)
    oracle = lifecycle_quality.oracle_fit(lake.read_as_of(T.ORDERS, day), record_person, day, unit)
    scores = {f"true_{k}": v for k, v in truth.items()}
    scores.update({f"fitted_{k}": v for k, v in fitted.items()})
    scores.update({f"oracle_{k}": v for k, v in oracle.items()})
    scores["p_alive_auc"] = lifecycle_quality.p_alive_auc(
        value,
        lake.read(T.RECORD_IDENTITY),
        record_person,
        lake.read(T.PERSON_PURCHASE_PARAMS),
    )
    return scores


def evaluate_attribution(lake: Lakehouse, cfg: Config) -> dict[str, float] | None:
    if not (lake.exists(T.ATTRIBUTION) and lake.exists(T.CHANNEL_EFFECTS)):
        return None
    table = lake.read(T.ATTRIBUTION).filter(F.col("granularity") == "channel")
    credits = (
        table.filter(F.col(RUN_DATE) == F.lit(cfg.run_date))
        .select("model", "channel", "share")
        .toPandas()
    )
    if len(credits) == 0:
        return None  # attribution has not run for this date
    return attribution_quality.recovery(credits, lake.read(T.CHANNEL_EFFECTS).toPandas())


def evaluate_experiments(lake: Lakehouse, cfg: Config) -> dict[str, float] | None:
    if not (lake.exists(T.EXPERIMENT_RESULTS) and lake.exists(T.EXPERIMENT_LIFTS)):
        return None
    day = F.col(RUN_DATE) == F.lit(cfg.run_date)
    rows = [r.asDict() for r in lake.read(T.EXPERIMENT_RESULTS).filter(day).collect()]
    truth = [r.asDict() for r in lake.read(T.EXPERIMENT_LIFTS).collect()]
    return experiment_quality.scores(rows, truth) if rows else None


TARGETS = {
    "identity": evaluate_identity,
    "lifecycle": evaluate_lifecycle,
    "attribution": evaluate_attribution,
    "experiments": evaluate_experiments,
}


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, dict[str, float]]:
    lake = Lakehouse.from_config(spark, cfg)
    if not lake.exists(T.RECORD_PERSON):
        raise MissingDatasetError(
            f"no ground truth under {lake.root}/truth: evaluation needs data made by the generate job"
        )
    progress = Progress(JOB, len(TARGETS))
    results: dict[str, dict[str, float]] = {}
    with job_run(cfg, JOB) as tracker:
        run_id = tracker.key
        for target, evaluate in TARGETS.items():
            with progress.step(target) as step:
                scores = evaluate(lake, cfg)
                if scores is None:
                    step.detail = "nothing to evaluate yet"
                    continue
                results[target] = scores
                step.detail = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
                tracker.log_metrics({f"{target}.{k}": v for k, v in scores.items()})
                rows = [(cfg.run_date, run_id, target, k, float(v)) for k, v in scores.items()]
                frame = spark.createDataFrame(
                    rows, "run_date date, run_id string, target string, metric string, value double"
                )
                lake.replace_where(
                    frame,
                    T.EVALUATIONS,
                    f"run_date = '{cfg.run_date.isoformat()}' AND target = '{target}'",
                )
    for target, scores in results.items():
        print(f"{target}: " + "  ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    progress.finish()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
