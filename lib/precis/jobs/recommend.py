"""recommend: implicit-feedback ALS top-N per person, tuned and evaluated honestly.

Reads ``silver/events``, ``silver/orders`` + ``silver/order_items`` up to the end of the
run date, ``silver/customers`` (marketing consent) and ``gold/identity_map``;
``precis.recommend.build`` tunes ALS on a validation split against a popularity baseline,
trains the chosen parameters on everything (unless popularity ships) and makes the top
``top_n`` per person (unseen people get the most popular items; bought items are left
out by default). Logs the model, writes the run date's ``gold/recommendations`` snapshot and validation figures
(``meta/model_metrics``) and exports the lists of people with marketing consent. No
events or order lines: a warning, nothing written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from precis import recommend
from precis import tables as T
from precis.columns import ITEM_ID, ONE_ID
from precis.config import Config
from precis.frames import row_count
from precis.progress import Progress, log
from precis.recommend.interactions import without_evidence
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import JobRun, inputs_tag, job_run

JOB = "recommend"
STEPS = 6  # three in build, then the model, the lists and the writes


def read(lake: Lakehouse, run_date: dt.date) -> recommend.RecommendInputs:
    lake.require(T.IDENTITY_MAP, job="identity")
    return recommend.RecommendInputs(
        identity_map=lake.read(T.IDENTITY_MAP),
        events=lake.read_if_exists(T.EVENTS, as_of=run_date),
        orders=lake.read_if_exists(T.ORDERS, as_of=run_date),
        order_items=lake.read_if_exists(T.ORDER_ITEMS),
        customers=lake.read_if_exists(T.CUSTOMERS),
    )


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    rc = cfg.recommend
    progress = Progress(JOB, STEPS)
    inputs = read(lake, cfg.run_date)
    if why := without_evidence(inputs.events, inputs.orders, inputs.order_items):
        return progress.skipped(why)
    lineage = inputs_tag(lake.versions(T.READS[JOB]))  # one model version per lineage
    with job_run(cfg, JOB, lineage) as tracker, contextlib.ExitStack() as scope:
        out = recommend.build(
            inputs, rc, run_date=cfg.run_date, steps=progress.step, on_trial=_trial
        )
        with progress.step("log the model") as step:
            version = _log_model(cfg, out.model, out.example, tracker)
            step.detail = f"model version {version}"
        with progress.step("top-N for everyone") as step:
            stamped = recommend.stamp(
                out.lists, model_version=version, run_id=tracker.key, run_date=cfg.run_date
            )
            table, sources = scope.enter_context(recommend.kept_table(stamped))
            step.rows = sum(sources.values())
            step.detail = ", ".join(f"{k} {v:,}" for k, v in sorted(sources.items()))
        with progress.step("write gold and export") as step:
            written = lake.write_snapshot(table, T.RECOMMENDATIONS, cfg.run_date)
            lake.write_model_metrics(JOB, cfg.run_date, tracker.key, out.tuning.metrics())
            exported = _export(lake, cfg, table) if rc.export else 0
            step.rows = written
            step.detail = f"snapshot {cfg.run_date}; {exported:,} rows exported"
        result = {
            "people": out.people,
            "items": out.items,
            "interactions": out.interactions,
            "tuning": out.tuning.as_dict(),
            "sources": sources,
            "written": written,
            "exported": exported,
            "model_version": version,
        }
        _report(tracker, out.tuning, result)
    print(f"recommend: {out.tuning.summary()}")
    progress.finish(f"{sum(sources.values()):,} rows")
    return result


def _trial(name: str, metrics: Mapping[str, float]) -> None:
    log.info("[%s]   %s: %s", JOB, name, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def _report(tracker: JobRun, tuning: recommend.Tuning, result: dict[str, Any]) -> None:
    """Every model tried (a nested run each), the chosen one, row counts, the summary."""
    tracker.log_metrics(tuning.metrics())
    tracker.log_child("popularity", {"model": "popularity"}, tuning.baseline)
    for trial in tuning.trials:
        tracker.log_child(trial.name, trial.settings(), trial.metrics)
    tracker.log_params({f"best_{p}": v for p, v in tuning.best.settings().items()})
    tracker.log_params({"shipped": tuning.shipped, "validation_split": tuning.split})
    sources = result["sources"]
    tracker.log_metrics(
        {"exported_rows": result["exported"], **{f"rows_{k}": v for k, v in sources.items()}}
    )
    tracker.log_dict(result, "recommend.json")


def _log_model(cfg: Config, model: Any, example: DataFrame | None, tracker: JobRun) -> str:
    """Log (and register) the model; the version string written with every row. Its
    input example is (user, item) index pairs: dense indices, never people's or items' ids.
    No model (popularity ships): nothing logged, a ``popularity-`` version."""
    rc, version = cfg.recommend, None
    if rc.log_model and model is not None and example is not None:
        example = example.select("user", "item").limit(recommend.MODEL_EXAMPLE_ROWS)
        version = tracker.log_spark_model(model, "als_model", example, rc.registered_model_name)
    made = f"{cfg.run_date.isoformat()}-{cfg.config_hash()[:8]}"
    return version or (made if model is not None else f"popularity-{made}")


def _export(lake: Lakehouse, cfg: Config, table: DataFrame) -> int:
    """Consented people's lists to <root>/exports/recommendations/run_date=<date> (replaced)."""
    consented = table.filter(F.col("consent_marketing")).select(
        ONE_ID, "rank", ITEM_ID, "score", "source", "model_version"
    )
    # Counted while written, not by a second pass; above the sort, whose sampling pass
    # over its input would count every row twice.
    observation = Observation()
    lake.export(
        consented.orderBy(ONE_ID, "rank").observe(observation, row_count()),
        T.RECOMMENDATIONS.name,
        cfg.run_date,
        cfg.recommend.export_format,
    )
    lake.prune_exports(T.RECOMMENDATIONS.name, cfg.run_date, cfg.exports.retention_days)
    return int(observation.get["rows"])


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
