"""The report's product sections: tags and segments, recommendations, attribution (with
the budget plan), experiments, and the pipeline's own runs.

Same shape as ``sections``: tables in, one ``Section`` out, a sentence for what is missing.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from precis.columns import ITEM_ID, ONE_ID, RUN_DATE
from precis.report.inputs import Inputs, on, recent, rows
from precis.report.page import Chart, Section
from precis.report.sections import model_metrics
from precis.report.settings import ReportConfig

TAG_FIGURES = ("tag", "type", "people", "covered", "coverage", "distinct_values", "changes")
ATTRIBUTION_FIGURES = ("model", "channel", "conversions", "revenue", "share", "spend", "roi")
PLAN_FIGURES = (
    "channel",
    "model",
    "current_spend",
    "suggested_spend",
    "expected_conversions",
    "expected_revenue",
    "marginal_roi",
)
EXPERIMENT_FIGURES = (
    "experiment_id",
    "arm",
    "n",
    "n_control",
    "value",
    "control_value",
    "lift_abs",
    "ci_low",
    "ci_high",
    "p_value",
    "p_value_holm",
    "srm_failed",
    "adjusted",
)
#: The models ``recommend`` writes validation figures of (``<model>_<metric>``).
VALIDATED = ("als", "popularity")
#: ``gold/experiment_results.metric`` values, a figure each.
EXPERIMENT_METRICS = ("conversion_rate", "revenue_per_person")


def tags(inputs: Inputs, settings: ReportConfig) -> Section:
    """Coverage and changed values per tag; segment sizes over the last run dates."""
    day, title, stats = inputs.run_date, "Tags and segments", inputs.tag_stats
    if stats is None:
        return Section("tags", title, {}, missing="No tags yet (gold/tag_stats).")
    figures = {"tags": rows(stats.filter(on(day)).select(*TAG_FIGURES).orderBy("tag"))}
    if not figures["tags"]:
        return Section("tags", title, {}, missing=f"No tags computed for {day}.")
    charts = [
        Chart(
            "tags", "barh", "Coverage per tag (share of people with a value)", "tag", ("coverage",)
        ),
        Chart("tags", "barh", "Values changed since the previous run", "tag", ("changes",)),
    ]
    segments = inputs.segments
    figures["segments"] = (
        rows(
            recent(segments, day, settings.runs)
            .groupBy(RUN_DATE, "segment")
            .agg(F.count(F.lit(1)).alias("people"))
            .orderBy(RUN_DATE, "segment")
        )
        if segments is not None
        else []
    )
    charts.append(
        Chart(
            "segments",
            "line",
            "Segment sizes per run date (consented people)",
            RUN_DATE,
            ("people",),
            series="segment",
        )
    )
    return Section("tags", title, figures, tuple(charts))


def recommendations(inputs: Inputs) -> Section:
    """ALS against popularity on the validation split; catalogue and people covered."""
    day, title, lists = inputs.run_date, "Recommendations", inputs.recommendations
    if lists is None:
        return Section("recommendations", title, {}, missing="No recommendations yet.")
    today = lists.filter(on(day))
    sources = rows(
        today.groupBy("source").agg(F.countDistinct(ONE_ID).alias("people")).orderBy("source")
    )
    if not sources:
        return Section("recommendations", title, {}, missing=f"No recommendations for {day}.")
    figures: dict[str, list] = {"sources": sources}
    charts: list[Chart] = []
    notes: tuple[str, ...] = ()
    if measured := model_metrics(inputs, "recommend"):
        figures["validation"] = sorted(
            (
                {"metric": metric, "model": model, "value": r["value"]}
                for r in measured
                for model, _, metric in [r["metric"].partition("_")]
                if model in VALIDATED
            ),
            key=lambda r: (r["metric"], r["model"]),
        )
        charts.append(
            Chart(
                "validation",
                "bar",
                "ALS against popularity on the validation split",
                "metric",
                ("value",),
                series="model",
            )
        )
    else:
        notes = ("No validation figures for this date (meta/model_metrics).",)
    catalogue = inputs.items.select(ITEM_ID).distinct().count() if inputs.items else None
    covered = rows(
        today.agg(
            F.countDistinct(ITEM_ID).alias("items_recommended"),
            F.countDistinct(ONE_ID).alias("people"),
        )
    )[0]
    figures["coverage"] = [{**covered, "items_in_catalogue": catalogue}]
    charts.append(
        Chart("sources", "bar", "People by the source of their list", "source", ("people",))
    )
    return Section("recommendations", title, figures, tuple(charts), notes)


def attribution(inputs: Inputs) -> Section:
    """Every model's credit per channel side by side, ROI, and the newest budget plan."""
    day, title, table = inputs.run_date, "Attribution", inputs.attribution
    if table is None:
        return Section("attribution", title, {}, missing="No attribution yet (gold/attribution).")
    channel = table.filter(on(day) & (F.col("granularity") == "channel"))
    figures = {"models": rows(channel.select(*ATTRIBUTION_FIGURES).orderBy("model", "channel"))}
    if not figures["models"]:
        return Section("attribution", title, {}, missing=f"No attribution for {day}.")
    charts = [
        Chart(
            "models",
            "bar",
            "Conversions credited per channel, by model",
            "channel",
            ("conversions",),
            series="model",
        ),
        Chart("models", "bar", "ROI per channel, by model", "channel", ("roi",), series="model"),
    ]
    notes: tuple[str, ...] = ("No budget plan yet (the budget job).",)
    planned = newest_plan(inputs)
    if planned:
        newest = planned[0][RUN_DATE]
        figures["budget_plan"] = planned
        charts.append(
            Chart(
                "budget_plan",
                "bar",
                f"Budget plan of {newest}: daily spend now and suggested",
                "channel",
                ("current_spend", "suggested_spend"),
            )
        )
        notes = (f"Budget plan of {newest}.",)
    return Section("attribution", title, figures, tuple(charts), notes)


def newest_plan(inputs: Inputs) -> list:
    """The newest budget plan up to the run date (a plan is made when one is due, not
    daily), in one read: its run date's rows, by channel."""
    if inputs.budget_plan is None:
        return []
    planned = inputs.budget_plan.filter(F.col(RUN_DATE) <= F.lit(inputs.run_date))
    newest = planned.agg(F.max(RUN_DATE).alias(RUN_DATE))
    return rows(
        planned.join(newest, on=RUN_DATE, how="left_semi")
        .select(RUN_DATE, *PLAN_FIGURES)
        .orderBy("channel")
    )


def experiments(inputs: Inputs) -> Section:
    """Each judged experiment's arms against control, per metric."""
    day, title, results = inputs.run_date, "Experiments", inputs.experiment_results
    if results is None:
        return Section("experiments", title, {}, missing="No experiment judged yet.")
    today = rows(
        results.filter(on(day))
        .select("metric", *EXPERIMENT_FIGURES)
        .orderBy("experiment_id", "arm")
    )
    if not today:
        return Section("experiments", title, {}, missing=f"No experiment judged on {day}.")
    figures, charts = {}, []
    for metric in EXPERIMENT_METRICS:
        figures[metric] = [
            {k: v for k, v in r.items() if k != "metric"} for r in today if r["metric"] == metric
        ]
        charts.append(
            Chart(
                metric,
                "barh",
                f"Lift in {metric.replace('_', ' ')} against control, 95% interval",
                "experiment_id",
                ("lift_abs",),
                series="arm",
                interval=("ci_low", "ci_high"),
            )
        )
    failed = sorted({r["experiment_id"] for r in figures[EXPERIMENT_METRICS[0]] if r["srm_failed"]})
    notes = (f"Sample-ratio mismatch: {', '.join(failed)}.",) if failed else ()
    return Section("experiments", title, figures, tuple(charts), notes)


def runs(inputs: Inputs, settings: ReportConfig) -> Section:
    """The pipeline's jobs of the last run dates: status and seconds."""
    day, title, ledger = inputs.run_date, "Runs", inputs.pipeline_runs
    missing = "No pipeline run recorded (meta/pipeline_runs)."
    if ledger is None:
        return Section("runs", title, {}, missing=missing)
    window = recent(ledger, day, settings.runs)
    figures = {
        "jobs": rows(window.select(RUN_DATE, "job", "status", "seconds").orderBy(RUN_DATE, "job")),
    }
    if not figures["jobs"]:
        return Section("runs", title, {}, missing=missing)
    charts = (
        Chart("jobs", "line", "Seconds per job per run date", RUN_DATE, ("seconds",), series="job"),
    )
    failed = [r for r in figures["jobs"] if r["status"] != "done" and r[RUN_DATE] == str(day)]
    notes = tuple(f"{r['job']} failed on {day}." for r in failed)
    return Section("runs", title, figures, charts, notes)
