"""The Databricks notebooks in notebooks/, executed top to bottom on the test session.

A small runner stands in for Databricks: it splits a source-format notebook at
``# COMMAND ----------``, drops ``# MAGIC`` lines (markdown cells), and execs each cell in
one namespace holding ``spark``, ``dbutils.widgets`` and ``display``. Widgets take the
values a test presets, else the default of the widget call; ``display`` records what it
was given (Spark frames collected to pandas) under the heading of the latest markdown
cell. Also here: the lookups of ``precis.person`` on tiny frames.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import functions as F

from precis import jobs, person, privacy
from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError
from precis.ingest.conform import IdentifierSettings
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT / "notebooks"
HEADER = "# Databricks notebook source"
CELL_SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


# ------------------------------------------------------------------------ runner
class Widgets:
    """``dbutils.widgets`` as far as the notebooks use it, strict where Databricks is.

    ``preset`` plays the values a job or a user sets; a preset name no widget declares
    is an error, so a test cannot silently set a widget that does not exist.
    """

    def __init__(self, preset: Mapping[str, str]) -> None:
        self._preset = {k: str(v) for k, v in preset.items()}
        self._values: dict[str, str] = {}
        self.choices: dict[str, list[str]] = {}

    def _declare(
        self, name: str, default: str, choices: Sequence[str] | None = None, multi: bool = False
    ) -> None:
        value = self._preset.get(name, default)
        if choices is not None:
            choices = [str(c) for c in choices]
            for given in (default, value):
                picked = given.split(",") if multi else [given]
                bad = [p for p in picked if p not in choices]
                if bad:
                    # Databricks refuses a dropdown or multiselect value outside its choices.
                    raise ValueError(f"widget '{name}': {bad} not among the choices {choices}")
            self.choices[name] = choices
        self._values[name] = value

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:
        self._declare(name, defaultValue)

    def dropdown(
        self, name: str, defaultValue: str, choices: Sequence[str], label: str | None = None
    ) -> None:
        self._declare(name, defaultValue, choices)

    def combobox(
        self, name: str, defaultValue: str, choices: Sequence[str], label: str | None = None
    ) -> None:
        # A combobox offers choices but accepts any value.
        self._declare(name, defaultValue)
        self.choices[name] = [str(c) for c in choices]

    def multiselect(
        self, name: str, defaultValue: str, choices: Sequence[str], label: str | None = None
    ) -> None:
        self._declare(name, defaultValue, choices, multi=True)

    def get(self, name: str) -> str:
        if name not in self._values:
            raise ValueError(f"InputWidgetNotDefined: no widget named '{name}'")
        return self._values[name]

    def remove(self, name: str) -> None:
        self._values.pop(name, None)
        self.choices.pop(name, None)

    def removeAll(self) -> None:
        self._values.clear()
        self.choices.clear()

    def undeclared_presets(self) -> list[str]:
        return sorted(set(self._preset) - set(self._values))


@dataclass
class Displayed:
    heading: str  # of the latest markdown cell
    value: Any  # pandas for a Spark frame, else what was passed


@dataclass
class Run:
    namespace: dict[str, Any]
    widgets: Widgets
    displayed: list[Displayed] = field(default_factory=list)
    printed: str = ""  # what the cells printed (a cell's text output)

    def shown(self, heading: str) -> pd.DataFrame:
        """The one frame displayed under ``heading``."""
        found = [d.value for d in self.displayed if d.heading == heading]
        assert len(found) == 1, (
            f"expected one display under '{heading}', got {[d.heading for d in self.displayed]}"
        )
        return found[0]


def cells(path: Path) -> list[str]:
    text = path.read_text()
    assert text.startswith(HEADER + "\n"), f"{path.name} does not start with '{HEADER}'"
    return [c.strip("\n") for c in text[len(HEADER) :].split(CELL_SEPARATOR)]


def heading(cell: str) -> str | None:
    """The first Markdown heading of a ``%md`` cell."""
    for line in cell.splitlines():
        text = line.removeprefix(MAGIC).strip()
        if text.startswith("#"):
            return text.lstrip("#").strip()
    return None


def run_notebook(
    path: Path, spark, widgets: Mapping[str, str] | None = None, cells_to_run: int | None = None
) -> Run:
    """Execute the notebook at ``path`` top to bottom as Databricks would (only its first
    ``cells_to_run`` cells when given)."""
    run = Run({}, Widgets(widgets or {}))
    current = path.stem

    def display(obj: Any, *args: Any, **kwargs: Any) -> None:
        value = obj.toPandas() if hasattr(obj, "toPandas") else obj
        run.displayed.append(Displayed(current, value))

    run.namespace.update(
        spark=spark,
        dbutils=SimpleNamespace(widgets=run.widgets),
        display=display,
        __name__="__main__",
    )
    out = io.StringIO()
    try:
        for i, cell in enumerate(cells(path)[:cells_to_run]):
            lines = cell.splitlines()
            if lines and lines[0].startswith(f"{MAGIC} %md"):
                current = heading(cell) or current
            code = "\n".join(line for line in lines if not line.startswith(MAGIC))
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{path.name} cell {i}", "exec"), run.namespace)
    finally:
        run.printed = out.getvalue()
        # Still shown by pytest on a failure, as the notebook would have shown it.
        print(run.printed, end="")
    assert not run.widgets.undeclared_presets(), (
        f"{path.name} has no widget {run.widgets.undeclared_presets()}"
    )
    return run


def overrides(*items: str) -> str:
    return ";".join(items)


# ------------------------------------------------------------------ the runner itself
def test_every_notebook_is_source_format_and_tested():
    found = {p.name for p in NOTEBOOKS.glob("*.py")}
    assert found == {
        "run_job.py",
        "explore_silver.py",
        "daily_pipeline.py",
        "inspect_person.py",
        "realtime.py",
    }  # realtime.py runs in test_stream.py
    for name in found:
        for i, cell in enumerate(cells(NOTEBOOKS / name)):
            code = "\n".join(line for line in cell.splitlines() if not line.startswith(MAGIC))
            compile(code, f"{name} cell {i}", "exec")


def test_widgets_behave_like_databricks():
    w = Widgets({"pick": "b", "many": "a,c"})
    w.text("free", "x")
    w.dropdown("pick", "a", ["a", "b"])
    w.combobox("any", "zzz", ["a"])
    w.multiselect("many", "a", ["a", "b", "c"])
    assert (w.get("free"), w.get("pick"), w.get("any"), w.get("many")) == ("x", "b", "zzz", "a,c")
    with pytest.raises(ValueError, match="'c'.*not among the choices"):
        w.dropdown("bad", "c", ["a", "b"])
    with pytest.raises(ValueError, match="not among the choices"):
        Widgets({"pick": "z"}).dropdown("pick", "a", ["a"])
    w.removeAll()
    with pytest.raises(ValueError, match="no widget named 'free'"):
        w.get("free")


# ------------------------------------------------------------------------ run_job
def test_run_job_lists_the_library_jobs_and_runs_selfcheck(spark, tmp_path):
    root = tmp_path / "lakehouse"
    run = run_notebook(
        NOTEBOOKS / "run_job.py",
        spark,
        {
            "job": "selfcheck",
            "env": "local",
            "overrides": overrides(f"storage.root={root}", "mlflow.enabled=false"),
        },
    )
    assert run.widgets.choices["job"] == list(jobs.JOBS)
    assert run.namespace["result"] == {"rows_now": 5, "rows_first_version": 3}
    table = Lakehouse.from_config(spark, run.namespace["cfg"]).read(T.SELFCHECK)
    assert sorted((r["id"], r["value"]) for r in table.collect()) == [
        (0, "v0"),
        (1, "v0"),
        (2, "v1"),
        (3, "v1"),
        (4, "v1"),
    ]


def test_run_job_refuses_an_unknown_job(spark):
    with pytest.raises(ValueError, match="'nojob'.*not among the choices"):
        run_notebook(NOTEBOOKS / "run_job.py", spark, {"job": "nojob", "env": "local"})


# ----------------------------------------------------------------- explore_silver
def test_explore_silver_shows_the_world_quarantine_reasons(spark, world):
    cfg, lake, summaries = world
    run = run_notebook(
        NOTEBOOKS / "explore_silver.py",
        spark,
        {
            "env": "local",
            "overrides": overrides(f"storage.root={cfg.root}", "mlflow.enabled=false"),
        },
    )
    shown = run.shown("Quarantine reasons")
    got = {(r.dataset, r.reason): r.count for r in shown.itertuples()}
    expected = {
        (r["dataset"], r["reason"]): r["count"]
        for r in lake.read(T.QUARANTINE)
        .select("dataset", F.explode(F.split("reason", ";")).alias("reason"))
        .groupBy("dataset", "reason")
        .count()
        .collect()
    }
    assert got == expected
    # Every reason the world's ingest reported is among them (5% of the rows are corrupt).
    reported = {(d, reason) for d, s in summaries.items() for reason in s.reasons}
    assert reported and reported <= set(got)
    runs = run.shown("Ingest runs, newest first")
    assert set(summaries) <= set(runs["dataset"])
    statuses = run.shown("Identifier status in silver/id_observations")
    assert set(statuses["id_status"]) <= {"ok", "blocked", "invalid"} and "ok" in set(
        statuses["id_status"]
    )


# ------------------------------------------------- daily_pipeline, then inspect_person
#: What inspect_person needs, made fast: one ALS setting, a few boosting and K-means
#: iterations, no MLflow (the keys of conf/base.yaml).
FAST = (
    "mlflow.enabled=false",
    "recommend.grid.rank=[4]",
    "recommend.grid.reg_param=[0.5]",
    "recommend.grid.alpha=[2.0]",
    "recommend.max_iter=3",
    # Small worlds: ALS need not beat popularity for the tests to see its lists.
    "recommend.require_lift=false",
    "recommend.measure_decay=false",
    "recommend.export=false",
    "lifecycle.churn.max_iter=5",
    "lifecycle.churn.log_model=false",
    "tags.kmeans.k_max=3",
    "tags.kmeans.max_iter=10",
    "tags.export=false",
)
PIPELINE_JOBS = "identity, lifecycle, tags, recommend"


@pytest.fixture(scope="module")
def daily(spark, world, tmp_path_factory):
    """daily_pipeline on a copy of the world's lakehouse (the world stays as other tests
    left it), for the latest date the world was ingested on: (run, lake, stdout)."""
    cfg, world_lake, _ = world
    root = tmp_path_factory.mktemp("notebooks") / "lakehouse"
    shutil.copytree(cfg.root, root)
    run_date = world_lake.read(T.INGEST_RUNS).agg(F.max("run_date")).first()[0]
    run = run_notebook(
        NOTEBOOKS / "daily_pipeline.py",
        spark,
        {
            "run_date": run_date.isoformat(),
            "env": "local",
            "jobs": PIPELINE_JOBS,
            "overrides": overrides(f"storage.root={root}", *FAST),
        },
    )
    return run, Lakehouse.from_config(spark, run.namespace["cfg"]), run_date


@pytest.mark.slow
def test_daily_pipeline_runs_the_chosen_jobs_and_shows_health(daily):
    run, lake, run_date = daily
    cfg = run.namespace["cfg"]
    assert cfg.pipeline.jobs == ("identity", "lifecycle", "tags", "recommend")
    assert cfg.run_date == run_date
    for table in (
        "identity_map",
        "identity_changes",
        "customer_value",
        "profile_tags",
        "recommendations",
    ):
        assert lake.exists(T.find("gold", table)), table
    assert f"pipeline: identity, lifecycle, tags, recommend; run date {run_date}" in run.printed
    ingest_runs = run.shown("Ingest runs of the run date")
    assert set(ingest_runs["run_date"]) == {run_date} and {"id_observations", "orders"} <= set(
        ingest_runs["dataset"]
    )
    identity_runs = run.shown("Identity runs of the run date")
    assert set(identity_runs["run_date"]) == {run_date}
    latest = lake.read(T.IDENTITY_RUNS).orderBy(F.desc("finished_at")).first()
    assert identity_runs.iloc[0]["run_id"] == latest["run_id"]
    # evaluate did not run: its section says so instead of failing.
    assert "Evaluations of the run date" not in [d.heading for d in run.displayed]
    assert (
        "meta/evaluations is absent" in run.printed
        or f"no rows for run date {run_date}" in run.printed
    )


def test_daily_pipeline_parameters(spark, tmp_path):
    """The widget and parameter cells only (no job runs): defaults and a bad job name."""
    params = run_notebook(NOTEBOOKS / "daily_pipeline.py", spark, {"env": "local"}, cells_to_run=3)
    cfg = params.namespace["cfg"]
    assert cfg.run_date == dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert cfg.pipeline.jobs == load_config(env="local").pipeline.jobs
    # The jobs widget goes through the config's check of pipeline.jobs, before any work.
    with pytest.raises(ConfigError, match="unknown job 'nojob'"):
        run_notebook(
            NOTEBOOKS / "daily_pipeline.py",
            spark,
            {"env": "local", "jobs": "ingest, nojob", "overrides": f"storage.root={tmp_path}"},
        )


def _plain_values(plain_identifiers) -> set[str]:
    return {r["value"] for r in plain_identifiers.collect()}


def _assert_nothing_plain(run: Run, plain: set[str]) -> None:
    """No displayed cell equals a plain email or phone, and none appears inside any
    displayed text or printed line (short digit strings only as whole cells)."""
    long_forms = [p for p in plain if len(p) >= 8]
    texts = [run.printed]
    for d in run.displayed:
        for value in d.value.astype(str).to_numpy().ravel():
            assert value not in plain, f"plain identifier displayed under '{d.heading}'"
            texts.append(value)
    for text in texts:
        leaked = [p for p in long_forms if p in text]
        assert not leaked, "plain identifier shown"


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> set[tuple]:
    return set(frame[list(columns)].itertuples(index=False, name=None))


def _inspect(spark, lake: Lakehouse, **widgets: str) -> Run:
    return run_notebook(
        NOTEBOOKS / "inspect_person.py",
        spark,
        {
            "env": "local",
            "overrides": overrides(f"storage.root={lake.root}", "mlflow.enabled=false"),
            **widgets,
        },
    )


@pytest.mark.slow
def test_inspect_person_by_one_id_shows_only_that_person(spark, daily, plain_identifiers):
    _, lake, _ = daily
    identity_map = lake.read(T.IDENTITY_MAP)
    tags, recs = lake.read(T.PROFILE_TAGS), lake.read(T.RECOMMENDATIONS)
    # Someone with an email (a hashed identifier), tags and recommendations.
    one_id = (
        identity_map.filter(F.col("id_type") == "email")
        .select("one_id")
        .join(tags.select("one_id").distinct(), "one_id")
        .join(recs.select("one_id").distinct(), "one_id")
        .agg(F.min("one_id"))
        .first()[0]
    )
    run = _inspect(spark, lake, one_id=one_id)

    identifiers = run.shown("Identifiers")
    assert set(identifiers["one_id"]) == {one_id}
    mine = identity_map.filter(F.col("one_id") == one_id).select("id_type", "id_key").collect()
    assert _rows(identifiers, ["id_type", "id_key"]) == {tuple(r) for r in mine}
    assert "email" in set(identifiers["id_type"])

    history = run.shown("History of the one_id")
    assert ((history["one_id"] == one_id) | (history["related_one_id"] == one_id)).all()
    assert (history["one_id"] == one_id).any()

    shown_tags = run.shown("Tags")
    stored = tags.filter(F.col("one_id") == one_id).select("tag", "value").collect()
    assert set(shown_tags["one_id"]) == {one_id} and _rows(shown_tags, ["tag", "value"]) == {
        tuple(r) for r in stored
    }

    value = run.shown("Value and lifecycle stage")
    stored_value = lake.read(T.CUSTOMER_VALUE).filter(F.col("one_id") == one_id).collect()
    assert _rows(value, ["one_id", "lifecycle_stage", "rfm_segment"]) == {
        (r["one_id"], r["lifecycle_stage"], r["rfm_segment"]) for r in stored_value
    }

    shown_recs = run.shown("Recommendations")
    stored_recs = (
        recs.filter(F.col("one_id") == one_id).orderBy("rank").select("rank", "item_id").collect()
    )
    assert set(shown_recs["one_id"]) == {one_id}
    assert list(shown_recs[["rank", "item_id"]].itertuples(index=False, name=None)) == [
        tuple(r) for r in stored_recs
    ]

    _assert_nothing_plain(run, _plain_values(plain_identifiers))


@pytest.mark.slow
def test_inspect_person_by_member_id_as_landed(spark, daily, plain_identifiers):
    _, lake, _ = daily
    identity_map = lake.read(T.IDENTITY_MAP)
    landed = (
        lake.read(T.BRONZE["id_observations"])
        .filter(F.lower(F.trim("id_type")) == "member_id")
        .select(F.col("id_value").alias("raw"), F.trim("id_value").alias("id_key"))
        .join(identity_map.filter(F.col("id_type") == "member_id"), "id_key")
    )
    # Prefer a value landed with padding: the lookup must trim it as ingest did.
    pick = landed.orderBy((F.col("raw") == F.col("id_key")).asc(), "raw").first()
    run = _inspect(spark, lake, member_id=pick["raw"])

    identifiers = run.shown("Identifiers")
    assert set(identifiers["one_id"]) == {pick["one_id"]}
    assert ("member_id", pick["id_key"]) in _rows(identifiers, ["id_type", "id_key"])
    mine = (
        identity_map.filter(F.col("one_id") == pick["one_id"]).select("id_type", "id_key").collect()
    )
    assert _rows(identifiers, ["id_type", "id_key"]) == {tuple(r) for r in mine}
    for heading_, table in (("Tags", "profile_tags"), ("Recommendations", "recommendations")):
        shown = run.shown(heading_)
        stored = lake.read(T.find("gold", table)).filter(F.col("one_id") == pick["one_id"]).count()
        assert len(shown) == stored and set(shown["one_id"]) <= {pick["one_id"]}
    _assert_nothing_plain(run, _plain_values(plain_identifiers))

    with pytest.raises(ConfigError, match="no person has member_id 'M-NOBODY-0'"):
        _inspect(spark, lake, member_id="M-NOBODY-0")


def test_inspect_person_says_which_tables_are_absent(spark, tmp_path):
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    lake.overwrite(
        spark.createDataFrame(
            [
                ("member_id", "M1", "p1", dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 2)),
                ("email", "f00d", "p1", dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 3)),
                ("member_id", "M2", "p2", dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 1)),
            ],
            "id_type string, id_key string, one_id string, first_seen timestamp, last_seen timestamp",
        ),
        T.IDENTITY_MAP,
    )
    run = _inspect(spark, lake, member_id="  M1 ")
    assert _rows(run.shown("Identifiers"), ["one_id", "id_type", "id_key"]) == {
        ("p1", "member_id", "M1"),
        ("p1", "email", "f00d"),
    }
    assert [d.heading for d in run.displayed] == ["Identifiers"]
    for table in ("identity_changes", "profile_tags", "customer_value", "recommendations"):
        assert re.search(rf"gold/{table} is absent", run.printed), table
    with pytest.raises(ConfigError, match="one_id 'p9' is not in gold/identity_map"):
        _inspect(spark, lake, one_id="p9")


# ------------------------------------------------------------------ precis.person
SETTINGS = IdentifierSettings(
    rules={"member_id": "trim", "email": "email", "phone": "phone"},
    country_code="86",
    placeholder_values={},
    placeholder_patterns={},
    pii_types=("email", "phone"),
    key=b"test-key",
)


@pytest.fixture(scope="module")
def identity_map(spark):
    email_key = (
        privacy.with_key(spark.range(1), SETTINGS.key)
        .select(privacy.hmac_hex(F.lit("ann@example.com")).alias("k"))
        .first()["k"]
    )
    return spark.createDataFrame(
        [("member_id", "M1", "p1"), ("email", email_key, "p1"), ("member_id", "M2", "p2")],
        "id_type string, id_key string, one_id string",
    )


@pytest.fixture(scope="module")
def changes(spark):
    return spark.createDataFrame(
        [
            (dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 1), "created", "p1", None),
            (dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 1), "created", "p3", None),
            (dt.date(2026, 3, 2), dt.datetime(2026, 3, 2, 1), "merged", "p3", "p1"),
            (dt.date(2026, 3, 2), dt.datetime(2026, 3, 2, 1), "deleted", "p4", None),
        ],
        "run_date date, changed_at timestamp, change string, one_id string, related_one_id string",
    ).withColumn("identifiers", F.lit(1).cast("long"))


def test_resolve_by_one_id_or_member_id(identity_map):
    assert person.resolve_one_id(identity_map, SETTINGS, one_id=" p2 ") == "p2"
    assert person.resolve_one_id(identity_map, SETTINGS, member_id="  M1  ") == "p1"
    assert (
        person.one_id_of_identifier(identity_map, "email", "  Ann@Example.COM ", SETTINGS) == "p1"
    )


@pytest.mark.parametrize(
    "given, message",
    [
        ({}, "exactly one of one_id and member_id .got neither"),
        ({"one_id": "p1", "member_id": "M1"}, "got one_id 'p1' and member_id 'M1'"),
        ({"member_id": "M9"}, "no person has member_id 'M9' in gold/identity_map"),
        ({"member_id": "   "}, "got neither"),
        ({"one_id": "p9"}, "one_id 'p9' is not in gold/identity_map$"),
        (
            {"one_id": "p3"},
            "one_id 'p3' is not in gold/identity_map: merged into 'p1' on run date 2026-03-02",
        ),
        (
            {"one_id": "p4"},
            "one_id 'p4' is not in gold/identity_map: deleted on run date 2026-03-02",
        ),
    ],
)
def test_resolve_errors_name_the_value(identity_map, changes, given, message):
    with pytest.raises(ConfigError, match=message):
        person.resolve_one_id(identity_map, SETTINGS, changes=changes, **given)


def test_a_pii_identifier_is_never_named(identity_map):
    with pytest.raises(ConfigError) as err:
        person.one_id_of_identifier(identity_map, "email", "bob@example.com", SETTINGS)
    assert "bob" not in str(err.value) and "email (a PII type: value not shown)" in str(err.value)
    with pytest.raises(
        ConfigError, match="unknown identifier type 'fax'; types: email, member_id, phone"
    ):
        person.one_id_of_identifier(identity_map, "fax", "1", SETTINGS)


def test_person_view_filters_every_section_to_the_person(spark, identity_map, changes):
    recs = spark.createDataFrame(
        [("p1", 2, "i2", 0.5), ("p1", 1, "i1", 0.9), ("p2", 1, "i1", 0.7)],
        "one_id string, rank int, item_id string, score double",
    ).select(
        "*",
        F.lit("als").alias("source"),
        F.lit(True).alias("consent_marketing"),
        F.lit("v1").alias("model_version"),
        F.lit(dt.date(2026, 3, 2)).alias("run_date"),
    )
    identity_map = identity_map.select(
        "*",
        F.lit(None).cast("timestamp").alias("first_seen"),
        F.lit(None).cast("timestamp").alias("last_seen"),
    )
    view = person.person_view(
        "p1",
        {T.IDENTITY_MAP: identity_map, T.IDENTITY_CHANGES: changes, T.RECOMMENDATIONS: recs},
    )
    assert set(view) == set(person.SECTIONS)
    assert view["tags"] is None and view["value"] is None
    assert [(r["rank"], r["item_id"]) for r in view["recommendations"].collect()] == [
        (1, "i1"),
        (2, "i2"),
    ]
    assert {r["id_type"] for r in view["identifiers"].collect()} == {"member_id", "email"}
    # Its own creation and the merge of p3 into it; nothing of p4.
    assert [(r["change"], r["one_id"]) for r in view["history"].collect()] == [
        ("created", "p1"),
        ("merged", "p3"),
    ]
