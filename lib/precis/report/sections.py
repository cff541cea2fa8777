"""The report's first sections: what came in (ingest), who it is (identity) and what they
are worth (lifecycle).

Each function takes the tables it needs (``Inputs``) and returns one ``Section``: its
figures as small aggregates of those tables, the charts drawn from them, and a sentence
naming what is missing when a table or the run date's rows are not there.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import INGEST_RUN_ID, ONE_ID, RUN_DATE, RUN_ID
from precis.report.inputs import Inputs, Rows, on, recent, rows, sums
from precis.report.page import Chart, Section
from precis.report.settings import ReportConfig

#: ``meta/ingest_runs`` counts summed per dataset (``suppressed`` and the rejected and
#: waiting files came later: null in older rows, summed as 0).
INGEST_COUNTS = (
    "files",
    "rows_in",
    "silver_inserted",
    "silver_updated",
    "duplicates",
    "quarantined",
    "suppressed",
    "rejected_files",
    "waiting_files",
)
#: Where each landed row went (their sum is ``rows_in``).
OUTCOMES = ("silver_inserted", "silver_updated", "duplicates", "quarantined", "suppressed")
#: The holdout curve's points in ``meta/model_metrics``: ``<HOLDOUT>actual``, ``...predicted``.
HOLDOUT = "holdout_by_frequency_"
IDENTITY_COUNTS = ("identifiers", "records", "links", "one_ids", "largest_one_id")


def ingest(inputs: Inputs, settings: ReportConfig, datasets: tuple[str, ...]) -> Section:
    """Per dataset: rows in and where they went; quarantine reasons; the trend of rows in.
    ``datasets``: the contract's landing datasets, to say which were never landed."""
    day, runs = inputs.run_date, inputs.ingest_runs
    title = "Ingest"
    if runs is None:
        return Section("ingest", title, {}, missing="No ingest run yet (meta/ingest_runs).")
    today = runs.filter(on(day))
    if not (per_dataset := rows(sums(today, ["dataset"], INGEST_COUNTS).orderBy("dataset"))):
        return Section("ingest", title, {}, missing=f"No ingest run for {day}.")
    figures = {"datasets": per_dataset}
    charts = [
        Chart("datasets", "barh", "Where each landed row went", "dataset", OUTCOMES, stacked=True)
    ]
    if inputs.quarantine is not None:
        figures["quarantine_reasons"] = quarantine_reasons(inputs.quarantine, today)
        charts.append(
            Chart(
                "quarantine_reasons",
                "barh",
                "Quarantined rows by reason",
                "reason",
                ("rows",),
                series="dataset",
                stacked=True,
            )
        )
    figures["trend"] = rows(
        sums(recent(runs, day, settings.runs), [RUN_DATE], ("rows_in", "quarantined")).orderBy(
            RUN_DATE
        )
    )
    charts.append(
        Chart(
            "trend",
            "line",
            "Rows in and quarantined per run date",
            RUN_DATE,
            ("rows_in", "quarantined"),
        )
    )
    seen = {
        r["dataset"] for r in rows(runs.filter(F.col("files") > 0).select("dataset").distinct())
    }
    never = [d for d in datasets if d not in seen]
    notes = (f"Never landed: {', '.join(never)}.",) if never else ()
    return Section("ingest", title, figures, tuple(charts), notes)


def quarantine_reasons(quarantine: DataFrame, runs_of_day: DataFrame) -> Rows:
    """Quarantined rows of the run date's ingest runs, per dataset and reason (a row with
    several reasons counts once under each)."""
    run_ids = runs_of_day.select(F.col(RUN_ID).alias(INGEST_RUN_ID)).distinct()
    kept = quarantine.join(F.broadcast(run_ids), on=INGEST_RUN_ID, how="left_semi")
    reasons = kept.select("dataset", F.explode(F.split("reason", ";")).alias("reason"))
    return rows(
        reasons.withColumn("reason", F.trim("reason"))
        .groupBy("dataset", "reason")
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy("dataset", "reason")
    )


def identity(inputs: Inputs, settings: ReportConfig) -> Section:
    """The run's counts, identifiers per person, guards fired, changes since the last run,
    precision and recall when the evaluation has scored this run date."""
    day, title = inputs.run_date, "Identity"
    runs = inputs.identity_runs
    if runs is None or inputs.identity_map is None:
        return Section("identity", title, {}, missing="No identity run yet (meta/identity_runs).")
    last = runs.filter(on(day)).orderBy(F.col("finished_at").desc()).limit(1)
    figures = {"run": rows(last.select(*IDENTITY_COUNTS))}
    if not figures["run"]:
        return Section("identity", title, {}, missing=f"No identity run for {day}.")
    cap = settings.max_identifiers
    sizes = inputs.identity_map.groupBy(ONE_ID).agg(F.count(F.lit(1)).alias("n"))
    figures["identifiers_per_person"] = rows(
        sizes.groupBy(F.least(F.col("n"), F.lit(cap)).alias("identifiers"))
        .agg(F.count(F.lit(1)).alias("people"))
        .orderBy("identifiers")
    )
    charts = [
        Chart(
            "identifiers_per_person",
            "bar",
            f"Identifiers per person ({cap} = {cap} or more)",
            "identifiers",
            ("people",),
            log_y=True,
        )
    ]
    guards = inputs.identity_guards
    figures["guards"] = (
        rows(
            guards.filter(on(day))
            .groupBy("guard")
            .agg(F.count(F.lit(1)).alias("identifiers"), F.sum("records").alias("records"))
            .orderBy("guard")
        )
        if guards is not None
        else []
    )
    charts.append(
        Chart("guards", "barh", "Identifiers held apart by each guard", "guard", ("identifiers",))
    )
    changes = inputs.identity_changes
    figures["changes"] = (
        rows(
            changes.filter(on(day))
            .groupBy("change")
            .agg(F.count(F.lit(1)).alias("one_ids"))
            .orderBy("change")
        )
        if changes is not None
        else []
    )
    charts.append(
        Chart("changes", "bar", "one_ids created, merged, split, deleted", "change", ("one_ids",))
    )
    figures["trend"] = rows(
        recent(runs, day, settings.runs)
        .groupBy(RUN_DATE)
        .agg(F.max_by("one_ids", "finished_at").alias("one_ids"))
        .orderBy(RUN_DATE)
    )
    charts.append(Chart("trend", "line", "one_ids per run date", RUN_DATE, ("one_ids",)))
    figures["quality"] = evaluation(inputs, "identity")
    notes = () if figures["quality"] else ("No evaluation against ground truth for this date.",)
    return Section("identity", title, figures, tuple(charts), notes)


def evaluation(inputs: Inputs, target: str) -> Rows:
    """``meta/evaluations`` rows of a target for the run date (generated worlds only)."""
    if inputs.evaluations is None:
        return []
    scores = inputs.evaluations.filter(on(inputs.run_date) & (F.col("target") == target))
    return rows(scores.select("metric", "value").orderBy("metric"))


def lifecycle(inputs: Inputs, settings: ReportConfig) -> Section:
    """Stages and the flows between them since the previous snapshot, the CLV histogram,
    the BG/NBD holdout and the model figures lifecycle measured."""
    day, title, value = inputs.run_date, "Lifecycle", inputs.customer_value
    if value is None:
        return Section(
            "lifecycle", title, {}, missing="No customer value yet (gold/customer_value)."
        )
    today = value.filter(on(day))
    stages = rows(
        today.groupBy("lifecycle_stage")
        .agg(F.count(F.lit(1)).alias("people"))
        .orderBy("lifecycle_stage")
    )
    if not stages:
        return Section("lifecycle", title, {}, missing=f"No customer value snapshot for {day}.")
    figures = {
        "stages": stages,
        "flows": stage_flows(value, day),
        "clv": clv_histogram(today, settings.clv_bins),
    }
    charts = [
        Chart("stages", "bar", "People per lifecycle stage", "lifecycle_stage", ("people",)),
        Chart(
            "flows",
            "heatmap",
            "Stage flows since the previous snapshot",
            "from_stage",
            ("people",),
            series="to_stage",
        ),
        Chart("clv", "hist", "CLV distribution", "clv_from", ("people",), log_y=True),
    ]
    if measured := model_metrics(inputs, "lifecycle"):
        figures["model"] = [
            {"metric": r["metric"], "value": r["value"]} for r in measured if r["x"] is None
        ]
        figures["holdout"] = sorted(
            (
                {
                    "frequency": r["x"],
                    "series": r["metric"].removeprefix(HOLDOUT),
                    "value": r["value"],
                }
                for r in measured
                if r["metric"].startswith(HOLDOUT)
            ),
            key=lambda r: (r["frequency"], r["series"]),
        )
        charts.append(
            Chart(
                "holdout",
                "line",
                "Holdout: mean transactions by calibration frequency, actual and BG/NBD",
                "frequency",
                ("value",),
                series="series",
            )
        )
    notes = () if "model" in figures else ("No model figures for this date (meta/model_metrics).",)
    figures["trend"] = rows(
        recent(value, day, settings.runs)
        .groupBy(RUN_DATE, "lifecycle_stage")
        .agg(F.count(F.lit(1)).alias("people"))
        .orderBy(RUN_DATE, "lifecycle_stage")
    )
    charts.append(
        Chart(
            "trend",
            "line",
            "People per stage per run date",
            RUN_DATE,
            ("people",),
            series="lifecycle_stage",
        )
    )
    return Section("lifecycle", title, figures, tuple(charts), notes)


def model_metrics(inputs: Inputs, job: str) -> Rows:
    """``job``'s rows of ``meta/model_metrics`` for the run date (metric, x, value), by
    metric and x: one read for every figure a section makes of them."""
    if inputs.model_metrics is None:
        return []
    mine = inputs.model_metrics.filter(on(inputs.run_date) & (F.col("job") == job))
    return rows(mine.select("metric", "x", "value").orderBy("metric", "x"))


def stage_flows(value: DataFrame, day: dt.date) -> Rows:
    """People per (stage in the previous snapshot, stage now): ``new`` for people the
    previous snapshot lacks, ``gone`` for people this one lacks. None: no previous one."""
    before = value.filter(F.col(RUN_DATE) < F.lit(day)).agg(F.max(RUN_DATE)).collect()[0][0]
    if before is None:
        return []
    old = value.filter(on(before)).select(ONE_ID, F.col("lifecycle_stage").alias("from_stage"))
    new = value.filter(on(day)).select(ONE_ID, F.col("lifecycle_stage").alias("to_stage"))
    return rows(
        old.join(new, on=ONE_ID, how="full")
        .select(
            F.coalesce("from_stage", F.lit("new")).alias("from_stage"),
            F.coalesce("to_stage", F.lit("gone")).alias("to_stage"),
        )
        .groupBy("from_stage", "to_stage")
        .agg(F.count(F.lit(1)).alias("people"))
        .orderBy("from_stage", "to_stage")
    )


def clv_histogram(today: DataFrame, bins: int) -> Rows:
    """People per CLV bin: ``bins`` equal widths from the lowest to the highest CLV."""
    valued = today.filter(F.col("clv").isNotNull())
    low, high = valued.agg(F.min("clv"), F.max("clv")).collect()[0]
    if low is None:
        return []
    width = (high - low) / bins or 1.0
    index = F.least(F.floor((F.col("clv") - F.lit(low)) / F.lit(width)), F.lit(bins - 1))
    return rows(
        valued.groupBy(index.cast("int").alias("bin"))
        .agg(F.count(F.lit(1)).alias("people"))
        .select((F.lit(low) + F.col("bin") * F.lit(width)).alias("clv_from"), "people")
        .orderBy("clv_from")
    )
