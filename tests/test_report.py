"""The run report's sections on tiny tables: each figure is the aggregate of its table,
and a section without its table says what is missing."""

from __future__ import annotations

import datetime as dt

import pytest

from precis.report import products, sections
from precis.report.build import build, headline
from precis.report.inputs import Inputs, recent, rows
from precis.report.page import Section, read_figures, render
from precis.report.settings import ReportConfig

DAY = dt.date(2026, 3, 31)
BEFORE = dt.date(2026, 3, 30)
SETTINGS = ReportConfig()


def test_a_report_of_an_empty_lakehouse_says_what_is_missing_in_every_section():
    built = build(Inputs(run_date=DAY), SETTINGS, ("orders", "events"))
    assert [s.key for s in built] == [
        "ingest",
        "identity",
        "lifecycle",
        "tags",
        "recommendations",
        "attribution",
        "experiments",
        "runs",
    ]
    assert {s.key: s.missing for s in built} == {
        "ingest": "No ingest run yet (meta/ingest_runs).",
        "identity": "No identity run yet (meta/identity_runs).",
        "lifecycle": "No customer value yet (gold/customer_value).",
        "tags": "No tags yet (gold/tag_stats).",
        "recommendations": "No recommendations yet.",
        "attribution": "No attribution yet (gold/attribution).",
        "experiments": "No experiment judged yet.",
        "runs": "No pipeline run recorded (meta/pipeline_runs).",
    }
    page = read_figures(render("precis run report", DAY.isoformat(), built, {}))
    assert set(page["sections"]) == {s.key for s in built}


def test_ingest_sums_the_run_dates_runs_per_dataset_and_names_what_never_landed(spark):
    runs = spark.createDataFrame(
        [
            ("r1", DAY, "orders", 1, 10, 6, 1, 1, 2, None),
            ("r2", DAY, "orders", 1, 5, 5, 0, 0, 0, 0),
            ("r0", BEFORE, "orders", 1, 7, 7, 0, 0, 0, 0),
        ],
        "run_id string, run_date date, dataset string, files int, rows_in long, "
        "silver_inserted long, silver_updated long, duplicates long, quarantined long, "
        "suppressed long",
    )
    for column in ("rejected_files", "waiting_files"):
        runs = runs.withColumn(column, runs["files"] * 0)
    quarantine = spark.createDataFrame(
        [
            ("orders", "bad amount; bad date", "r1"),
            ("orders", "bad amount", "r1"),
            ("orders", "bad amount", "r0"),
        ],
        "dataset string, reason string, _run_id string",
    )
    section = sections.ingest(
        Inputs(run_date=DAY, ingest_runs=runs, quarantine=quarantine),
        SETTINGS,
        ("orders", "events"),
    )
    assert section.missing is None
    assert section.figures["datasets"] == [
        {
            "dataset": "orders",
            "files": 2,
            "rows_in": 15,
            "silver_inserted": 11,
            "silver_updated": 1,
            "duplicates": 1,
            "quarantined": 2,
            "suppressed": 0,
            "rejected_files": 0,
            "waiting_files": 0,
        }
    ]
    # Each reason of a row counts once; the older run's row is not the run date's.
    assert section.figures["quarantine_reasons"] == [
        {"dataset": "orders", "reason": "bad amount", "rows": 2},
        {"dataset": "orders", "reason": "bad date", "rows": 1},
    ]
    assert section.figures["trend"] == [
        {"run_date": "2026-03-30", "rows_in": 7, "quarantined": 0},
        {"run_date": "2026-03-31", "rows_in": 15, "quarantined": 2},
    ]
    assert section.notes == ("Never landed: events.",)


def test_stage_flows_follow_people_from_the_previous_snapshot(spark):
    value = spark.createDataFrame(
        [
            ("a", "active", BEFORE, 1.0),
            ("b", "active", BEFORE, 2.0),
            ("c", "lapsed", BEFORE, 3.0),
            ("a", "active", DAY, 10.0),
            ("b", "lapsed", DAY, 0.0),
            ("d", "new", DAY, 5.0),
        ],
        "one_id string, lifecycle_stage string, run_date date, clv double",
    )
    assert sections.stage_flows(value, DAY) == [
        {"from_stage": "active", "to_stage": "active", "people": 1},
        {"from_stage": "active", "to_stage": "lapsed", "people": 1},
        {"from_stage": "lapsed", "to_stage": "gone", "people": 1},
        {"from_stage": "new", "to_stage": "new", "people": 1},
    ]
    assert sections.stage_flows(value, BEFORE) == []
    # Two bins over 0..10: [0, 5) and [5, 10], the highest value in the last bin.
    today = value.filter(value["run_date"] == DAY)
    assert sections.clv_histogram(today, 2) == [
        {"clv_from": 0.0, "people": 1},
        {"clv_from": 5.0, "people": 2},
    ]


def test_trends_keep_the_last_run_dates_the_table_has(spark):
    days = [dt.date(2026, 3, d) for d in (1, 8, 15, 22, 29)]
    df = spark.createDataFrame([(d, 1) for d in days], "run_date date, n int")
    kept = rows(recent(df, dt.date(2026, 3, 25), 2).orderBy("run_date"))
    assert kept == [{"run_date": "2026-03-15", "n": 1}, {"run_date": "2026-03-22", "n": 1}]


def test_experiments_name_the_sample_ratio_mismatch(spark):
    columns = products.EXPERIMENT_FIGURES
    schema = (
        "experiment_id string, arm string, n long, n_control long, value double, "
        "control_value double, lift_abs double, ci_low double, ci_high double, "
        "p_value double, p_value_holm double, srm_failed boolean, adjusted boolean, "
        "metric string, run_date date"
    )
    results = spark.createDataFrame(
        [
            ("e1", "b", 10, 12, 0.2, 0.1, 0.1, 0.0, 0.2, 0.04, 0.04, True, False, metric, DAY)
            for metric in products.EXPERIMENT_METRICS
        ]
        + [
            (
                "e0",
                "b",
                9,
                9,
                0.2,
                0.2,
                0.0,
                -0.1,
                0.1,
                0.9,
                0.9,
                False,
                True,
                "conversion_rate",
                BEFORE,
            )
        ],
        schema,
    )
    section = products.experiments(Inputs(run_date=DAY, experiment_results=results))
    assert section.notes == ("Sample-ratio mismatch: e1.",)
    assert [list(r) for r in section.figures["conversion_rate"]] == [list(columns)]
    assert section.figures["conversion_rate"][0]["lift_abs"] == pytest.approx(0.1)
    missing = products.experiments(
        Inputs(run_date=BEFORE - dt.timedelta(1), experiment_results=results)
    )
    assert missing.missing == "No experiment judged on 2026-03-29."


def test_the_headline_reads_its_numbers_from_the_sections_figures():
    def section(key, **figures):
        return Section(key, key.title(), figures)

    built = [
        section(
            "ingest", datasets=[{"rows_in": 10, "quarantined": 1}, {"rows_in": 5, "quarantined": 0}]
        ),
        section(
            "identity",
            run=[{"one_ids": 7}],
            quality=[{"metric": "precision", "value": 0.99}, {"metric": "f1", "value": 0.9}],
        ),
        section(
            "lifecycle",
            stages=[{"people": 3}, {"people": 4}],
            model=[{"metric": "churn_auc", "value": 0.8}, {"metric": "bg_nbd_r", "value": 1.0}],
        ),
        section(
            "recommendations",
            validation=[
                {"metric": "ndcg_at_10", "model": "als", "value": 0.3},
                {"metric": "ndcg_at_10", "model": "popularity", "value": 0.2},
                {"metric": "map_at_10", "model": "als", "value": 0.1},
            ],
        ),
        section("experiments", conversion_rate=[{"experiment_id": "e1"}, {"experiment_id": "e1"}]),
        Section("attribution", "Attribution", {}, missing="No attribution yet."),
    ]
    assert headline(built) == {
        "rows in": 15,
        "quarantined": 1,
        "people (one_ids)": 7,
        "identity precision": 0.99,
        "valued customers": 7,
        "churn AUC": 0.8,
        "NDCG@10 als": 0.3,
        "NDCG@10 popularity": 0.2,
        "experiments judged": 1,
    }
    assert headline([]) == {}


def test_the_page_is_published_whole_where_this_process_can_see_the_root(tmp_path):
    from precis.jobs.report import publish

    root = tmp_path / "lakehouse"
    root.mkdir()
    written = publish("<p>page</p>", f"{root}/reports/2026-03-31")
    assert written == f"{root}/reports/2026-03-31/index.html"
    assert (root / "reports" / "2026-03-31" / "index.html").read_text() == "<p>page</p>"
    # Written again: replaced, and no temporary file left behind.
    publish("<p>again</p>", f"{root}/reports/2026-03-31")
    assert [p.name for p in (root / "reports" / "2026-03-31").iterdir()] == ["index.html"]
    assert (root / "reports" / "2026-03-31" / "index.html").read_text() == "<p>again</p>"
    # An object store, or a root this process does not see: nothing written here.
    assert publish("<p>x</p>", "s3://bucket/lakehouse/reports/2026-03-31") is None
    assert publish("<p>x</p>", f"{tmp_path}/elsewhere/reports/2026-03-31") is None
    assert not (tmp_path / "elsewhere").exists()
