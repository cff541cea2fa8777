"""The identity job end to end on hand-built silver tables: what it writes, reruns and
incremental runs (a merge), and operators' rules read from a table."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import IdentityConfig, load_config
from precis.identity import IdentityInputs, PreviousRun, Stats, build
from precis.identity.incremental import with_map_version
from precis.jobs import identity
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 1, 1)
OBS = "source string, record_id string, id_type string, id_key string, id_status string, observed_at timestamp"
EVENTS = "event_id string, event_time timestamp, source string, id_type string, id_key string, id_status string"

# r1: member m1 with phone A; r2: member m2 with phone B; r3: email e alone; a cookie seen
# only in an event, and an event of member m1. The placeholder row links nothing.
FIRST = [
    ("crm", "r1", "member_id", "m1", "ok", T0),
    ("crm", "r1", "phone", "hA", "ok", T0),
    ("crm", "r2", "member_id", "m2", "ok", T0),
    ("crm", "r2", "phone", "hB", "ok", T0),
    ("web", "r3", "email", "he", "ok", T0),
    ("web", "r3", "cookie_id", "junk", "blocked", T0),
]
EVENT_ROWS = [
    ("e1", T0, "web", "cookie_id", "c1", "ok"),
    ("e2", T0, "app", "member_id", "m1", "ok"),
    ("e3", T0, "web", "cookie_id", "undefined", "blocked"),
]
# The second day: a POS record with phone A and email e joins r3's email to m1's person.
SECOND = [
    ("pos", "r4", "phone", "hA", "ok", T0 + dt.timedelta(days=1)),
    ("pos", "r4", "email", "he", "ok", T0 + dt.timedelta(days=1)),
]


def _config(root, run_date: str, *extra: str):
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={root}", "mlflow.enabled=false", *extra],
        run_date=run_date,
    )


def _land_silver(spark, lake: Lakehouse, observations) -> None:
    lake.overwrite(spark.createDataFrame(observations, OBS), T.ID_OBSERVATIONS)
    lake.overwrite(spark.createDataFrame(EVENT_ROWS, EVENTS), T.EVENTS)


def _people(lake: Lakehouse) -> dict[str, str]:
    """identifier "type:key" -> one_id."""
    return {
        f"{r['id_type']}:{r['id_key']}": r["one_id"] for r in lake.read(T.IDENTITY_MAP).collect()
    }


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    """Day one, day one again, day two with a new record; the tables after each."""
    root = tmp_path_factory.mktemp("identity_job") / "lakehouse"
    lake = Lakehouse(spark, str(root))
    _land_silver(spark, lake, FIRST)
    out = {}
    out["first_stats"] = identity.run(spark, _config(root, "2026-03-01"))
    out["first"] = _people(lake)
    out["first_records"] = lake.read(T.RECORD_IDENTITY).localCheckpoint()
    out["first_versions"] = {t.name: lake.version(t) for t in (T.IDENTITY_MAP, T.RECORD_IDENTITY)}
    out["first_changes"] = lake.read(T.IDENTITY_CHANGES).count()

    out["rerun_stats"] = identity.run(spark, _config(root, "2026-03-01"))
    out["rerun"] = _people(lake)
    out["rerun_records"] = lake.read(T.RECORD_IDENTITY).localCheckpoint()
    out["rerun_changes"] = lake.read(T.IDENTITY_CHANGES).count()

    # The same second day reclustered in full, on a copy of the lakehouse.
    full_root = root.parent / "full"
    shutil.copytree(root, full_root)
    full = Lakehouse(spark, str(full_root))
    _land_silver(spark, full, FIRST + SECOND)
    out["full_stats"] = identity.run(
        spark, _config(full_root, "2026-03-02", "identity.incremental=false")
    )
    out["full_lake"] = full

    _land_silver(spark, lake, FIRST + SECOND)
    out["second_stats"] = identity.run(spark, _config(root, "2026-03-02"))
    out["second"] = _people(lake)
    out["changes"] = lake.read(T.IDENTITY_CHANGES)
    out["guards"] = lake.read(T.IDENTITY_GUARDS)
    out["lake"] = lake
    return out


def test_every_valid_identifier_gets_one_row_and_blocked_ones_none(runs):
    people = runs["first"]
    assert set(people) == {
        "member_id:m1",
        "phone:hA",
        "member_id:m2",
        "phone:hB",
        "email:he",
        "cookie_id:c1",
    }
    assert people["member_id:m1"] == people["phone:hA"]
    assert people["member_id:m2"] == people["phone:hB"]
    assert (
        len(
            {
                people["member_id:m1"],
                people["member_id:m2"],
                people["email:he"],
                people["cookie_id:c1"],
            }
        )
        == 4
    )
    assert all(v.startswith("p") and len(v) == 21 for v in people.values())


def test_every_identified_record_resolves_to_its_person(spark, runs):
    people = runs["first"]
    expected = spark.createDataFrame(
        [
            ("id_observations", "crm", "r1", people["member_id:m1"]),
            ("id_observations", "crm", "r2", people["member_id:m2"]),
            ("id_observations", "web", "r3", people["email:he"]),
            ("events", "events", "e1", people["cookie_id:c1"]),
            ("events", "events", "e2", people["member_id:m1"]),
        ],
        "dataset string, source string, record_id string, one_id string",
    )
    assert_df_equality(runs["first_records"], expected, ignore_row_order=True, ignore_nullable=True)


def test_first_run_logs_one_created_change_per_one_id(runs):
    assert runs["first_changes"] == 4
    assert runs["first_stats"].changes == {"created": 4}
    assert runs["first_stats"].guards.get("placeholder") == 2  # rows, one per dataset


def test_rerun_of_the_same_day_changes_nothing(runs):
    assert runs["rerun"] == runs["first"]
    assert_df_equality(runs["rerun_records"], runs["first_records"], ignore_row_order=True)
    assert runs["rerun_changes"] == runs["first_changes"]
    assert runs["rerun_stats"].changes == {}
    assert (
        runs["rerun_stats"].map_inserted
        == runs["rerun_stats"].map_updated
        == runs["rerun_stats"].map_deleted
        == 0
    )
    assert runs["rerun_stats"].records_changed == 0


def test_new_evidence_merges_into_the_larger_person_and_logs_it(runs):
    first, second = runs["first"], runs["second"]
    survivor = first["member_id:m1"]  # two identifiers against the email's one
    assert second["member_id:m1"] == second["phone:hA"] == second["email:he"] == survivor
    # Untouched people keep their ids exactly.
    assert second["member_id:m2"] == first["member_id:m2"]
    assert second["cookie_id:c1"] == first["cookie_id:c1"]
    day2 = runs["changes"].filter(F.col("run_date") == dt.date(2026, 3, 2))
    rows = [(r["change"], r["one_id"], r["related_one_id"]) for r in day2.collect()]
    assert rows == [("merged", first["email:he"], survivor)]


def test_runs_recluster_only_the_components_new_records_touch(runs):
    assert (runs["first_stats"].mode, runs["first_stats"].reclustered) == ("full", 6)
    assert (runs["rerun_stats"].mode, runs["rerun_stats"].reclustered) == ("incremental", 0)
    # r4 touches phone A (m1's person) and email e: m2, phone B and the cookie are copied.
    assert (runs["second_stats"].mode, runs["second_stats"].reclustered) == ("incremental", 3)
    assert (runs["full_stats"].mode, runs["full_stats"].reclustered) == ("full", 6)


@pytest.mark.parametrize(
    "table",
    [T.IDENTITY_MAP, T.RECORD_IDENTITY, T.IDENTITY_CHANGES, T.IDENTITY_GUARDS],
    ids=lambda t: t.name,
)
def test_an_incremental_run_writes_what_a_full_run_writes(runs, table):
    ignore = {"run_id", "changed_at"}

    def content(lake):
        df = lake.read(table)
        return df.select(*[c for c in df.columns if c not in ignore])

    assert_df_equality(content(runs["lake"]), content(runs["full_lake"]), ignore_row_order=True)


def test_guard_table_counts_placeholders_per_dataset(runs):
    placeholders = runs["guards"].filter(
        (F.col("guard") == "placeholder") & (F.col("run_date") == dt.date(2026, 3, 2))
    )
    assert sorted(
        (r["id_type"], r["records"], r["detail"].split()[0]) for r in placeholders.collect()
    ) == [
        ("cookie_id", 1, "events"),
        ("cookie_id", 1, "id_observations"),
    ]


def test_operator_rules_table_blocks_and_forbids(spark, tmp_path):
    root = tmp_path / "lakehouse"
    lake = Lakehouse(spark, str(root))
    # Without rules, cookie c1 would attach to member m2 (all of its records) and union
    # id u1 would join member m1 (a strong link).
    linked = [
        ("app", "r5", "cookie_id", "c1", "ok", T0),
        ("app", "r5", "member_id", "m2", "ok", T0),
        ("wechat", "r6", "union_id", "u1", "ok", T0),
        ("wechat", "r6", "member_id", "m1", "ok", T0),
    ]
    _land_silver(spark, lake, FIRST + linked)
    # Member ids, union ids and cookies are not PII types: their silver key is the
    # normalized value, so the rules below name the same identifiers (spaces trimmed).
    rules_path = tmp_path / "rules.csv"
    rules_path.write_text(
        "rule,id_type,id_value,other_type,other_value,note\n"
        "block,cookie_id, c1 ,,,shared kiosk\n"
        "never_link,member_id,m1,union_id,u1,two customers\n"
    )
    cfg = _config(
        root, "2026-03-02", f"identity.rules.path={rules_path}", "identity.rules.format=csv"
    )
    identity.run(spark, cfg)
    people = _people(lake)
    assert people["cookie_id:c1"] != people["member_id:m2"]
    assert people["union_id:u1"] != people["member_id:m1"]
    guards = {
        (r["guard"], r["id_type"], r["id_key"]) for r in lake.read(T.IDENTITY_GUARDS).collect()
    }
    assert ("rule_block", "cookie_id", "c1") in guards
    assert {("never_link", "member_id", "m1"), ("never_link", "union_id", "u1")} & guards


def test_bad_rule_names_the_row_and_column(spark, tmp_path):
    root = tmp_path / "lakehouse"
    lake = Lakehouse(spark, str(root))
    _land_silver(spark, lake, FIRST)
    rules_path = tmp_path / "rules.csv"
    rules_path.write_text(
        "rule,id_type,id_value,other_type,other_value\nforce_link,member_id,m1,fax,123\n"
    )
    cfg = _config(
        root, "2026-03-01", f"identity.rules.path={rules_path}", "identity.rules.format=csv"
    )
    with pytest.raises(Exception, match=r"row 1: other_type 'fax' is not an identifier type"):
        identity.run(spark, cfg)


def test_no_identified_silver_dataset_is_a_missing_dataset(spark, tmp_path):
    from precis.errors import MissingDatasetError

    with pytest.raises(MissingDatasetError, match="silver/id_observations"):
        identity.run(spark, _config(tmp_path / "lakehouse", "2026-03-01"))


# ------------------------------------------------------------- build, without the lakehouse
RUN_DATE, NEXT_DATE = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def _silver(spark, observations) -> dict:
    return {
        "id_observations": spark.createDataFrame(observations, OBS),
        "events": spark.createDataFrame(EVENT_ROWS, EVENTS),
    }


def _build(spark, observations, run_date, previous=None):
    inputs = IdentityInputs(silver=_silver(spark, observations), previous=previous or PreviousRun())
    return build(
        inputs, IdentityConfig(), run_date=run_date, run_id=f"run-{run_date}", changed_at=T0
    )


def _groups(identity_map) -> dict[str, frozenset[str]]:
    """one_id -> its identifiers as "type:key"."""
    groups: dict[str, set[str]] = {}
    for r in identity_map.collect():
        groups.setdefault(r["one_id"], set()).add(f"{r['id_type']}:{r['id_key']}")
    return {k: frozenset(v) for k, v in groups.items()}


def test_build_resolves_a_tiny_world_and_reports_what_it_observed(spark):
    out = _build(spark, FIRST, RUN_DATE)
    groups = _groups(out.identity_map)
    assert set(groups.values()) == {
        frozenset({"member_id:m1", "phone:hA"}),
        frozenset({"member_id:m2", "phone:hB"}),
        frozenset({"email:he"}),
        frozenset({"cookie_id:c1"}),
    }
    one_id = {ident: k for k, idents in groups.items() for ident in idents}
    assert_df_equality(
        out.identity_map,
        spark.createDataFrame(
            [
                (t, k, one_id[f"{t}:{k}"], T0, T0)
                for t, k in (
                    ("member_id", "m1"),
                    ("phone", "hA"),
                    ("member_id", "m2"),
                    ("phone", "hB"),
                    ("email", "he"),
                    ("cookie_id", "c1"),
                )
            ],
            "id_type string, id_key string, one_id string, first_seen timestamp, last_seen timestamp",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        out.record_identity,
        spark.createDataFrame(
            [
                ("id_observations", "crm", "r1", one_id["member_id:m1"]),
                ("id_observations", "crm", "r2", one_id["member_id:m2"]),
                ("id_observations", "web", "r3", one_id["email:he"]),
                ("events", "events", "e1", one_id["cookie_id:c1"]),
                ("events", "events", "e2", one_id["member_id:m1"]),
            ],
            "dataset string, source string, record_id string, one_id string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    changes = {
        (r["run_id"], r["run_date"], r["changed_at"], r["change"], r["one_id"], r["identifiers"])
        for r in out.changes.collect()
    }
    assert changes == {
        (f"run-{RUN_DATE}", RUN_DATE, T0, "created", k, len(v)) for k, v in groups.items()
    }
    assert sorted(
        (r["run_date"], r["run_id"], r["guard"], r["id_type"], r["records"], r["detail"])
        for r in out.guards.collect()
    ) == [
        (RUN_DATE, f"run-{RUN_DATE}", "placeholder", "cookie_id", 1, d)
        for d in (
            "events rows with a placeholder value (blocked at ingest)",
            "id_observations rows with a placeholder value (blocked at ingest)",
        )
    ]
    assert out.state.columns == ["node", "component", "blocked", "isolated", "fingerprint"]
    assert out.state.count() == 6 and out.record_state.count() == 5
    assert out.stats == Stats(
        identifiers=6,
        records=5,
        links=2,
        one_ids=4,
        largest_one_id=2,
        reclustered=6,
        mode="full",
        changes={"created": 4},
        guards={"placeholder": 2},
        sizes={"1": 2, "2": 2}
        | dict.fromkeys(["3", "4-5", "6-10", "11-20", "21-50", "51-100", "101-1000", ">1000"], 0),
    )


def test_build_from_the_previous_run_reclusters_what_new_records_touch(spark):
    first = _build(spark, FIRST, RUN_DATE)
    previous = PreviousRun(
        identity_map=first.identity_map,
        map_version=3,
        changes=first.changes,
        guards=first.guards,
        state=with_map_version(first.state, 3),
        records=first.record_state,
    )
    second = _build(spark, FIRST + SECOND, NEXT_DATE, previous)
    before, after = _groups(first.identity_map), _groups(second.identity_map)
    survivor = next(k for k, v in before.items() if "member_id:m1" in v)
    email = next(k for k, v in before.items() if v == {"email:he"})
    assert after[survivor] == {"member_id:m1", "phone:hA", "email:he"}
    # Untouched people keep their ids.
    assert {k: v for k, v in after.items() if k != survivor} == {
        k: v for k, v in before.items() if k not in (survivor, email)
    }
    assert (second.stats.mode, second.stats.reclustered) == ("incremental", 3)
    assert second.stats.changes == {"merged": 1}
    assert [(r["change"], r["one_id"], r["related_one_id"]) for r in second.changes.collect()] == [
        ("merged", email, survivor)
    ]
    # A map written since the state was saved: everything is reclustered, same people.
    moved = dataclasses.replace(previous, map_version=4)
    full = _build(spark, FIRST + SECOND, NEXT_DATE, moved)
    assert (full.stats.mode, full.stats.reclustered) == ("full", 6)
    assert _groups(full.identity_map) == after
