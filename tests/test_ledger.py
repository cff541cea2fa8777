"""The pipeline's command line and ledger: date ranges, what a rerun skips, the rows."""

from __future__ import annotations

import datetime as dt

import pytest

from precis import ledger
from precis.config import load_config
from precis.errors import ConfigError
from precis.jobs import DAILY_JOBS, NEEDS, upstream
from precis.runner import parse_config

D = dt.date(2026, 3, 31)


def test_run_dates():
    assert ledger.run_dates(None, D) == [D]
    assert ledger.run_dates(D - dt.timedelta(days=2), D) == [
        D - dt.timedelta(days=2),
        D - dt.timedelta(days=1),
        D,
    ]
    with pytest.raises(ValueError, match="after the run date"):
        ledger.run_dates(D + dt.timedelta(days=1), D)
    with pytest.raises(ValueError, match="a backfill of 36525 dates"):
        ledger.run_dates(D - dt.timedelta(days=36524), D)


def test_plan_marks_what_is_done_in_date_then_job_order():
    dates = [D - dt.timedelta(days=1), D]
    steps = ledger.plan(
        dates, ["ingest", "identity"], [(dates[0], "ingest"), (dates[0], "identity"), (D, "ingest")]
    )
    assert [(s.run_date, s.job, s.done) for s in steps] == [
        (dates[0], "ingest", True),
        (dates[0], "identity", True),
        (D, "ingest", True),
        (D, "identity", False),
    ]


def test_ledger_rows():
    step = ledger.Step(D, "tags", done=False)
    start = dt.datetime(2026, 4, 1, 2, 0, tzinfo=dt.UTC)
    end = start + dt.timedelta(seconds=90.5)
    assert ledger.row(step, start, end, {"gold/customer_value": 4}) == (
        D,
        "tags",
        "done",
        start,
        end,
        90.5,
        {"gold/customer_value": 4},
        None,
    )
    failed = ledger.row(step, start, end, {}, ConfigError("tags file not found: x.yaml\nmore"))
    assert failed[2] == "failed" and failed[-1] == "ConfigError: tags file not found: x.yaml"


def test_pipeline_command_line():
    cfg = parse_config("pipeline", ["--from", "2026-03-01", "--to", "2026-03-31", "--force"])
    assert (cfg.pipeline.from_date, cfg.run_date, cfg.pipeline.force) == (
        dt.date(2026, 3, 1),
        D,
        True,
    )
    assert parse_config("pipeline", ["--run-date", "2026-03-31"]).pipeline.from_date is None
    with pytest.raises(ConfigError, match="--to 2026-03-30 and --run-date 2026-03-31 disagree"):
        parse_config("pipeline", ["--to", "2026-03-30", "--run-date", "2026-03-31"])
    with pytest.raises(
        ConfigError, match="pipeline.from_date \\(2026-04-02\\) is after the run date"
    ):
        parse_config("pipeline", ["--from", "2026-04-02", "--to", "2026-03-31"])
    with pytest.raises(ConfigError, match="--from expects YYYY-MM-DD, got '31.03.2026'"):
        parse_config("pipeline", ["--from", "31.03.2026"])
    with pytest.raises(ConfigError, match="unrecognized arguments: --from"):
        parse_config("ingest", ["--from", "2026-03-01"])  # a backfill is the pipeline's


def test_triggered_on_means_the_day_before_unless_a_run_date_is_given():
    assert parse_config("tags", ["--triggered-on", "2026-04-01"]).run_date == D
    assert parse_config("tags", ["--run-date", "", "--triggered-on", "2026-04-01"]).run_date == D
    given = ["--run-date", "2026-03-15", "--triggered-on", "2026-04-01"]
    assert parse_config("tags", given).run_date == dt.date(2026, 3, 15)


def test_default_pipeline_is_the_daily_jobs_and_the_demo_profile_adds_generate():
    assert load_config().pipeline.jobs == DAILY_JOBS
    assert "generate" not in DAILY_JOBS and "evaluate" not in DAILY_JOBS
    demo = load_config(["demo.yaml"])  # a packaged profile, found from any directory
    # The report last, after evaluate, so that the demo's page shows the scores.
    assert DAILY_JOBS[-1] == "report"
    assert demo.pipeline.jobs == ("generate", *DAILY_JOBS[:-1], "evaluate", "report")


def test_the_daily_graph():
    # The Airflow DAG and the bundle are checked against upstream(); here, its meaning:
    # ingest first, forget on it, identity after forget (the graph is built without the
    # people forgotten), then lifecycle, recommend, attribution and experiments side by side, and
    # tags after lifecycle (its model tags read customer_value), and the report after the
    # jobs whose tables its page shows.
    graph = {job: upstream(job, DAILY_JOBS) for job in DAILY_JOBS}
    assert graph.pop("ingest") == () and graph.pop("forget") == ("ingest",)
    assert graph.pop("identity") == ("forget",)
    assert graph.pop("tags") == ("lifecycle",)
    assert graph.pop("report") == ("tags", "recommend", "attribution", "experiments")
    assert set(graph.values()) == {("identity",)}
    assert set(graph) == {"lifecycle", "recommend", "attribution", "experiments"}


def test_upstream_follows_needs_through_jobs_left_out():
    assert upstream("tags", DAILY_JOBS) == ("lifecycle",)
    assert upstream("ingest", DAILY_JOBS) == ()  # generate is not among them
    assert upstream("evaluate", ("ingest", "evaluate")) == ("ingest",)  # through identity
    assert upstream("identity", ("ingest", "identity")) == ("ingest",)  # through forget
    assert set(NEEDS) == {"generate", *DAILY_JOBS, "evaluate", "budget", "share", "stream"}
    # share waits for tags and attribution, and through them for everything they need.
    assert upstream("share", ("ingest", "share")) == ("ingest",)
    # budget waits for experiments (the holdouts it calibrates against), through it identity.
    assert upstream("budget", DAILY_JOBS) == ("experiments",)
    assert upstream("budget", ("ingest", "identity", "budget")) == ("identity",)
