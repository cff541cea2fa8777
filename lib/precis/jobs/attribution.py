"""attribution: credit for conversions per channel by seven models, side by side.

Reads ``silver/touchpoints``, ``silver/orders``, ``gold/identity_map`` (and
``gold/identity_guards``, ``silver/campaign_spend`` when present). Cuts each person's
touches into journeys at their conversions, credits the conversions of the window by
five rule-based models on Spark, an exactly solved Markov chain and Shapley values, and
writes this run date's rows of ``gold/attribution`` (MERGE by run date, model and
channel: an unchanged rerun rewrites nothing). Spend gives cost per conversion and ROI;
a comparison plot and every number go to MLflow.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.attribution import journeys, markov, report, rules, shapley
from precis.config import Config
from precis.errors import ConfigError, MissingDatasetError
from precis.identity.resolve import isolated_identifiers, resolve
from precis.progress import Progress
from precis.runner import job_main
from precis.storage import Lakehouse
from precis.tracking import JobRun, job_run

JOB = "attribution"
STEPS = 5
_KEEP = StorageLevel.MEMORY_AND_DISK


def _inputs(
    lake: Lakehouse, cfg: Config, window: journeys.AnalysisWindow
) -> tuple[DataFrame, DataFrame, DataFrame | None]:
    """(touch rows, conversion rows, spend per channel label or None)."""
    ac = cfg.attribution
    lake.require(T.TOUCHPOINTS, T.ORDERS, job="ingest")
    lake.require(T.IDENTITY_MAP, job="identity")
    identity_map = lake.read(T.IDENTITY_MAP)
    isolated = (
        isolated_identifiers(lake.read(T.IDENTITY_GUARDS))
        if lake.exists(T.IDENTITY_GUARDS)
        else None
    )
    touches = journeys.touches(
        resolve(lake.read(T.TOUCHPOINTS), identity_map, isolated), ac.granularity
    )
    orders = resolve(lake.read(T.ORDERS), identity_map, isolated)
    try:
        conversions = journeys.conversions(orders, ac.revenue, ac.conversion_filter)
        _ = conversions.schema  # analysis happens here: a bad expression fails before any work
    except Exception as exc:  # AnalysisException or ParseException, both name the column
        raise ConfigError(
            f"attribution.revenue ({ac.revenue!r}) or attribution.conversion_filter "
            f"({ac.conversion_filter!r}) is not valid over silver/orders: {str(exc).splitlines()[0]}"
        ) from exc
    spend = None
    if lake.exists(T.CAMPAIGN_SPEND):
        spend = report.spend_by_channel(
            lake.read(T.CAMPAIGN_SPEND), window.start, window.end, ac.granularity
        )
    return touches, conversions, spend


def _credits(cfg: Config, rows: DataFrame, tracker: JobRun) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every configured model's credits (pandas: model, channel, conversions, revenue, ...)."""
    ac = cfg.attribution
    parts, info = [], {}
    rule_models = tuple(m for m in ac.models if m in rules.RULE_MODELS)
    if rule_models:
        settings = rules.RuleSettings(
            ac.time_decay_half_life_days,
            ac.position_based.first,
            ac.position_based.middle,
            ac.position_based.last,
        )
        parts.append(rules.rule_credits(rows, rule_models, settings).toPandas())
    if "markov" in ac.models:
        paths = journeys.paths(rows, ac.markov.collapse_repeats)
        moves = markov.transitions(paths, ac.markov.order).toPandas()
        result = markov.solve(moves)
        found = markov.credits(result)
        found["model"] = "markov"
        parts.append(found)
        info["markov"] = {
            "order": ac.markov.order,
            "states": result.states,
            "conversion_probability": result.conversion_probability,
            "removal_effects": result.removal_effects,
        }
        tracker.log_metrics(
            {
                "markov_conversion_probability": result.conversion_probability,
                "markov_states": result.states,
            }
        )
    if "shapley" in ac.models:
        sets = shapley.channel_sets(rows).toPandas()
        sh = ac.shapley
        game = shapley.solve(sets, sh.worth, sh.max_exact_channels, sh.samples, sh.seed)
        found = pd.DataFrame(
            {
                "model": "shapley",
                "channel": game.channels,
                "conversions": [game.conversions[c] for c in game.channels],
                "revenue": [game.revenue[c] for c in game.channels],
            }
        )
        if game.low is not None and game.high is not None:
            found["conversions_low"] = [game.low[c] for c in game.channels]
            found["conversions_high"] = [game.high[c] for c in game.channels]
        parts.append(found)
        info["shapley"] = {
            "worth": sh.worth,
            "exact": game.exact,
            "samples": game.samples,
            "channel_sets": len(sets),
        }
    return pd.concat(parts, ignore_index=True), info


def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    ac = cfg.attribution
    window = journeys.AnalysisWindow.ending(cfg.run_date, ac.window_days, ac.lookback_days)
    progress = Progress(JOB, STEPS)
    with job_run(cfg, JOB) as tracker:
        with progress.step("journeys") as step:
            touches, conversions, spend = _inputs(lake, cfg, window)
            conversions = conversions.persist(_KEEP)
            rows = journeys.journey_touches(touches, conversions, window).persist(_KEEP)
            summary = (
                rows.groupBy("journey_id")
                .agg(F.first("converted").alias("converted"), F.first("revenue").alias("revenue"))
                .agg(
                    F.count(F.lit(1)).alias("journeys"),
                    F.sum(F.col("converted").cast("long")).alias("converting"),
                    F.sum("revenue").alias("revenue"),
                )
                .collect()[0]
            )
            untouched = (
                journeys.untouched_conversions(conversions, rows, window)
                .agg(F.count(F.lit(1)).alias("n"), F.sum("revenue").alias("revenue"))
                .collect()[0]
            )
            counts: dict[str, float] = {
                "journeys": int(summary["journeys"] or 0),
                "converting_journeys": int(summary["converting"] or 0),
                "attributed_revenue": float(summary["revenue"] or 0.0),
                "untouched_conversions": int(untouched["n"] or 0),
                "untouched_revenue": float(untouched["revenue"] or 0.0),
            }
            if counts["converting_journeys"] == 0:
                raise MissingDatasetError(
                    f"no conversion between {window.start} and {window.end} has a touch within "
                    f"{ac.lookback_days} days before it: nothing to attribute "
                    f"({counts['journeys']:,} non-converting journeys, {counts['untouched_conversions']:,} untouched conversions)"
                )
            step.rows = int(counts["journeys"])
            step.detail = (
                f"{counts['converting_journeys']:,} converting, {counts['journeys'] - counts['converting_journeys']:,} "
                f"not; {counts['untouched_conversions']:,} conversions without touches left out "
                f"({window.start} to {window.end}, lookback {ac.lookback_days} days)"
            )
            tracker.log_metrics(counts)
        with progress.step("models") as step:
            credits, info = _credits(cfg, rows, tracker)
            channels = sorted(r["channel"] for r in rows.select("channel").distinct().collect())
            step.detail = f"{', '.join(ac.models)} over {len(channels)} channels"
        with progress.step("spend and ROI") as step:
            table = report.complete(credits, ac.models, channels)
            frame = spark.createDataFrame(
                table[
                    [
                        "model",
                        "channel",
                        "conversions",
                        "revenue",
                        "share",
                        "revenue_share",
                        "conversions_low",
                        "conversions_high",
                    ]
                ],
                "model string, channel string, conversions double, revenue double, share double, "
                "revenue_share double, conversions_low double, conversions_high double",
            )
            # pandas NaN (no interval) becomes a null in the table, never a NaN.
            frame = frame.select(
                *(
                    F.when(~F.isnan(c), F.col(c)).alias(c)
                    if c.startswith("conversions_")
                    else F.col(c)
                    for c in frame.columns
                )
            )
            frame = report.with_spend(frame, spend)
            out = frame.select(
                F.lit(cfg.run_date).alias("run_date"),
                "*",
                F.lit(window.start).alias("window_start"),
                F.lit(window.end).alias("window_end"),
                F.lit(ac.lookback_days).alias("lookback_days"),
                F.lit(ac.granularity).alias("granularity"),
                F.lit(tracker.key).alias("run_id"),
            ).select(*report.COLUMNS)
            final: pd.DataFrame = out.toPandas()
            step.detail = "spend known for " + (
                f"{int(final.loc[final.model == ac.models[0], 'spend'].notna().sum())} of {len(channels)} channels"
                if spend is not None
                else "no channel (silver/campaign_spend absent)"
            )
        with progress.step("write gold") as step:
            when = f"run_date = '{cfg.run_date.isoformat()}'"
            written = lake.merge_upsert(
                out,
                T.ATTRIBUTION,
                unique=True,
                delete_missing=True,
                scope=f"t.{when}",
            )
            step.detail = f"{written['inserted']:,} inserted, {written['updated']:,} updated, {written['deleted']:,} deleted"
        with progress.step("report") as step:
            tracker.log_metrics(
                {
                    f"{r.model}_{_metric_name(r.channel)}_share": float(r.share)
                    for r in final.itertuples()
                }
            )
            tracker.log_dict(
                {"counts": counts, **info, "credits": final.astype(str).to_dict("records")},
                "attribution.json",
            )
            if ac.log_plot:
                tracker.log_figure(
                    report.comparison_figure(final, f"Attribution {window.start} to {window.end}"),
                    "attribution.png",
                )
            step.detail = (
                "metrics, credits and plot logged" if ac.log_plot else "metrics and credits logged"
            )
        rows.unpersist()
        conversions.unpersist()
    _print(final, ac.models)
    progress.finish(
        f"{counts['converting_journeys']:,} conversions credited by {len(ac.models)} models"
    )
    return {"counts": counts, "models": info, "written": written, "credits": final}


def _metric_name(channel: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in channel)


def _print(table: pd.DataFrame, models: tuple[str, ...]) -> None:
    pivot = table.pivot(index="channel", columns="model", values="conversions")[list(models)]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("credited conversions by model:")
        print(pivot.round(1).to_string())


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
