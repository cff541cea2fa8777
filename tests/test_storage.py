"""Delta I/O: every writer is idempotent, drift is named, missing tables are named."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.errors import MissingDatasetError, SchemaDriftError
from precis.storage import Lakehouse, check_schema
from precis.tables import Table

SCHEMA = "id bigint, name string, amount double"


@pytest.fixture
def lake(spark, tmp_path) -> Lakehouse:
    return Lakehouse(spark, str(tmp_path / "lakehouse"))


def frame(spark, rows, schema=SCHEMA):
    return spark.createDataFrame(rows, schema)


def assert_content(actual, expected):
    # Delta reads every column back as nullable; content and types are what matter.
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def assert_sorted_content(actual, expected, key="one_id"):
    # chispa sorts by every column (Spark cannot sort maps) and its ignore_nullable
    # misses map types, so compare the rows themselves, ordered by key.
    assert actual.columns == expected.columns
    assert actual.orderBy(key).collect() == expected.orderBy(key).collect()


def last_commit(lake: Lakehouse, table: Table):
    return DeltaTable.forPath(lake.spark, lake.path(table)).history(1).first()


def test_overwrite_round_trip_and_replace(spark, lake):
    first = frame(spark, [(1, "a", 1.5), (2, "b", None)])
    lake.overwrite(first, Table("silver", "t"))
    assert lake.exists(Table("silver", "t"))
    assert lake.path(Table("silver", "t")) == f"{lake.root}/silver/t"
    assert_content(lake.read(Table("silver", "t")), first)
    assert lake.version(Table("silver", "t")) == 0

    second = frame(spark, [(3, "c", 3.0)])
    lake.overwrite(second, Table("silver", "t"))
    assert_content(lake.read(Table("silver", "t")), second)  # replaced, not appended
    assert lake.version(Table("silver", "t")) == 1
    assert_content(lake.read(Table("silver", "t"), version=0), first)

    lake.overwrite(second, Table("silver", "t"))  # rerun: same content
    assert_content(lake.read(Table("silver", "t")), second)

    lake.delete_where(Table("silver", "t"), "id = 3")
    assert_content(lake.read(Table("silver", "t")), frame(spark, [], SCHEMA))


def test_merge_upsert_inserts_updates_and_reruns_as_a_no_op(spark, lake):
    initial = frame(spark, [(1, "a", 10.0), (2, "b", 20.0), (3, "c", None)])
    lake.merge_upsert(initial, Table("gold", "m"), keys=["id"])  # creates the table
    assert_content(lake.read(Table("gold", "m")), initial)

    # id 1 absent (kept), id 2 changed, id 3 unchanged (null compared null-safely), id 4 new.
    upsert = frame(spark, [(2, "b", 25.0), (3, "c", None), (4, "d", 40.0)])
    assert lake.merge_upsert(upsert, Table("gold", "m"), keys=["id"]) == {
        "inserted": 1,
        "updated": 1,
        "deleted": 0,
    }
    expected = frame(spark, [(1, "a", 10.0), (2, "b", 25.0), (3, "c", None), (4, "d", 40.0)])
    assert_content(lake.read(Table("gold", "m")), expected)
    commit = last_commit(lake, Table("gold", "m"))
    assert commit.operation == "MERGE"
    assert commit.operationMetrics["numTargetRowsInserted"] == "1"
    assert commit.operationMetrics["numTargetRowsUpdated"] == "1"  # only the changed row

    # The same upsert again.
    assert lake.merge_upsert(upsert, Table("gold", "m"), keys=["id"]) == {
        "inserted": 0,
        "updated": 0,
        "deleted": 0,
    }
    assert_content(lake.read(Table("gold", "m")), expected)
    commit = last_commit(lake, Table("gold", "m"))
    assert commit.operation == "MERGE"
    assert commit.operationMetrics["numTargetRowsInserted"] == "0"
    assert commit.operationMetrics["numTargetRowsUpdated"] == "0"

    # Time travel after MERGE: every earlier state is still readable.
    assert_content(lake.read(Table("gold", "m"), version=0), initial)
    assert_content(lake.read(Table("gold", "m"), version=1), expected)


def test_merge_upsert_on_composite_keys(spark, lake):
    schema = "source string, record_id string, value bigint"
    lake.merge_upsert(
        frame(spark, [("crm", "1", 1), ("web", "1", 2)], schema),
        Table("silver", "c"),
        keys=["source", "record_id"],
    )
    lake.merge_upsert(
        frame(spark, [("crm", "1", 9), ("crm", "2", 3)], schema),
        Table("silver", "c"),
        keys=["source", "record_id"],
    )
    assert_content(
        lake.read(Table("silver", "c")),
        frame(spark, [("crm", "1", 9), ("web", "1", 2), ("crm", "2", 3)], schema),
    )


def test_merge_deletes_missing_rows_only_inside_the_scope(spark, lake):
    schema = "day string, k string, v long"
    lake.merge_upsert(
        spark.createDataFrame([("d1", "a", 1), ("d1", "b", 2), ("d2", "a", 3)], schema),
        Table("gold", "t"),
        ["day", "k"],
    )
    # The new content of day d1 drops b and changes a; day d2 is outside the scope.
    counts = lake.merge_upsert(
        spark.createDataFrame([("d1", "a", 10)], schema),
        Table("gold", "t"),
        ["day", "k"],
        delete_missing=True,
        scope="t.day = 'd1'",
    )
    assert counts == {"inserted": 0, "updated": 1, "deleted": 1}
    got = sorted(tuple(r) for r in lake.read(Table("gold", "t")).collect())
    assert got == [("d1", "a", 10), ("d2", "a", 3)]


def test_merge_with_duplicate_source_keys_is_a_clear_error(spark, lake):
    dupes = frame(spark, [(1, "a", 1.0), (1, "b", 2.0), (2, "c", 3.0)])
    with pytest.raises(ValueError, match=r"source has duplicate keys \['id'\], e\.g\. \{'id': 1\}"):
        lake.merge_upsert(dupes, Table("gold", "d"), keys=["id"])
    assert not lake.exists(Table("gold", "d"))  # nothing written

    lake.merge_upsert(frame(spark, [(1, "a", 1.0)]), Table("gold", "d"), keys=["id"])
    with pytest.raises(ValueError, match="MERGE into gold/d: source has duplicate keys"):
        lake.merge_upsert(dupes, Table("gold", "d"), keys=["id"])
    assert_content(lake.read(Table("gold", "d")), frame(spark, [(1, "a", 1.0)]))


def test_merge_key_missing_from_source_names_it(spark, lake):
    with pytest.raises(SchemaDriftError, match="merge keys: missing columns customer_id"):
        lake.merge_upsert(frame(spark, [(1, "a", 1.0)]), Table("gold", "k"), keys=["customer_id"])


def test_overwrite_partitions_replaces_only_partitions_present(spark, lake):
    schema = "day string, id bigint, value string"
    lake.overwrite_partitions(
        frame(spark, [("d1", 1, "a"), ("d1", 2, "b"), ("d2", 3, "c")], schema),
        Table("silver", "p"),
        partition_by=["day"],
    )
    new = frame(spark, [("d2", 4, "x"), ("d3", 5, "y")], schema)
    lake.overwrite_partitions(new, Table("silver", "p"), partition_by=["day"])
    expected = frame(
        spark, [("d1", 1, "a"), ("d1", 2, "b"), ("d2", 4, "x"), ("d3", 5, "y")], schema
    )
    assert_content(lake.read(Table("silver", "p")), expected)

    lake.overwrite_partitions(new, Table("silver", "p"), partition_by=["day"])  # rerun
    assert_content(lake.read(Table("silver", "p")), expected)
    detail = DeltaTable.forPath(spark, lake.path(Table("silver", "p"))).detail().first()
    assert list(detail.partitionColumns) == ["day"]

    with pytest.raises(ValueError, match="needs partition columns"):
        lake.overwrite_partitions(new, Table("silver", "p"), partition_by=[])


def test_append_log_inserts_only_new_keys(spark, lake):
    schema = "change_id string, one_id string, kind string"
    lake.append_log(
        frame(spark, [("c1", "p1", "created"), ("c2", "p2", "created")], schema),
        Table("gold", "log"),
        keys=["change_id"],
    )
    batch = frame(spark, [("c2", "p2", "merged"), ("c3", "p3", "created")], schema)
    lake.append_log(batch, Table("gold", "log"), keys=["change_id"])
    expected = frame(
        spark, [("c1", "p1", "created"), ("c2", "p2", "created"), ("c3", "p3", "created")], schema
    )  # c2 keeps its first entry: the log never rewrites history
    assert_content(lake.read(Table("gold", "log")), expected)

    version = lake.version(Table("gold", "log"))
    # Rerun inserts nothing: Delta does not even commit an insert-only MERGE with no
    # new rows, so the counts must not be read off the previous commit.
    assert lake.append_log(batch, Table("gold", "log"), keys=["change_id"]) == {
        "inserted": 0,
        "updated": 0,
        "deleted": 0,
    }
    assert_content(lake.read(Table("gold", "log")), expected)
    assert lake.version(Table("gold", "log")) == version


def test_schema_drift_names_the_column(spark, lake):
    original = frame(spark, [(1, "a", 1.0)])
    lake.overwrite(original, Table("silver", "s"))
    cases = {
        "missing columns: amount": frame(spark, [(2, "b")], "id bigint, name string"),
        "unexpected columns: colour": frame(
            spark, [(2, "b", 2.0, "red")], SCHEMA + ", colour string"
        ),
        r"changed types: amount \(double -> string\)": frame(
            spark, [(2, "b", "2")], "id bigint, name string, amount string"
        ),
    }
    writers = {
        "overwrite": lambda df: lake.overwrite(df, Table("silver", "s")),
        "merge_upsert": lambda df: lake.merge_upsert(df, Table("silver", "s"), keys=["id"]),
        "append_log": lambda df: lake.append_log(df, Table("silver", "s"), keys=["id"]),
        "overwrite_partitions": lambda df: lake.overwrite_partitions(
            df, Table("silver", "s"), partition_by=["id"]
        ),
    }
    for message, df in cases.items():
        for name, write in writers.items():
            with pytest.raises(SchemaDriftError, match=f"schema drift writing silver/s.*{message}"):
                write(df)
                pytest.fail(f"{name} accepted a drifted frame")
    assert_content(lake.read(Table("silver", "s")), original)  # no failed write touched the table

    # An explicit expected schema is checked even before the table exists.
    with pytest.raises(SchemaDriftError, match="missing columns: name, amount"):
        lake.overwrite(
            frame(spark, [(1,)], "id bigint"), Table("silver", "new"), schema=original.schema
        )
    assert not lake.exists(Table("silver", "new"))

    # evolve=True is the deliberate way to change a table's schema.
    evolved = frame(spark, [(2, "b", "2")], "id bigint, name string, amount string")
    lake.overwrite(evolved, Table("silver", "s"), evolve=True)
    assert_content(lake.read(Table("silver", "s")), evolved)


def test_nested_types_rerun_without_drift_or_churn(spark, lake):
    # collect_list yields array<string> with containsNull=false; Delta stores it nullable.
    # A rerun writing the same frame must not be reported as drift.
    rows = frame(spark, [("p1", "x"), ("p1", "y"), ("p2", "z")], "one_id string, tag string")
    tags = rows.groupBy("one_id").agg(
        F.sort_array(F.collect_list("tag")).alias("tags"),
        F.struct(F.lit(1).alias("v")).alias("meta"),
        F.create_map(F.lit("k"), F.lit("v")).alias("attrs"),
    )
    lake.overwrite(tags, Table("gold", "nested"))
    lake.overwrite(tags, Table("gold", "nested"))
    # MERGE compares maps too (<=> alone cannot): unchanged rows are not rewritten...
    assert lake.merge_upsert(tags, Table("gold", "nested"), keys=["one_id"]) == {
        "inserted": 0,
        "updated": 0,
        "deleted": 0,
    }
    assert_sorted_content(lake.read(Table("gold", "nested")), tags)
    # ...and a changed map value is an update.
    changed = tags.withColumn(
        "attrs",
        F.when(F.col("one_id") == "p2", F.create_map(F.lit("k"), F.lit("w"))).otherwise(
            F.col("attrs")
        ),
    )
    assert lake.merge_upsert(changed, Table("gold", "nested"), keys=["one_id"]) == {
        "inserted": 0,
        "updated": 1,
        "deleted": 0,
    }
    assert_sorted_content(lake.read(Table("gold", "nested")), changed)

    # A real change of element type inside an array is still drift.
    with pytest.raises(SchemaDriftError, match=r"tags \(array<string> -> array<bigint>\)"):
        check_schema(
            spark.createDataFrame([], "one_id string, tags array<bigint>").schema,
            spark.createDataFrame([], "one_id string, tags array<string>").schema,
            "gold/nested",
        )


def test_missing_table_names_path(lake):
    with pytest.raises(MissingDatasetError, match="table silver/orders does not exist") as err:
        lake.read(T.ORDERS)
    assert f"{lake.root}/silver/orders" in str(err.value)
    assert err.value.exit_code == 3
    assert not lake.exists(T.ORDERS)
    lake.delete_where(T.ORDERS, "id = 1")  # deleting from nothing is a no-op
    with pytest.raises(ValueError, match="unknown layer 'platinum'"):
        Table("platinum", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gold/log: a merge table needs keys"):
        Table("gold", "log", "merge")


def test_a_folder_without_a_delta_log_is_no_table_until_one_is_written(spark, lake):
    table = Table("silver", "later")
    Path(lake.path(table)).mkdir(parents=True)  # a folder, not yet a table
    assert not lake.exists(table)
    assert lake.read_if_exists(table) is None
    # Another job writes it: this lakehouse did not remember its earlier "no".
    other = Lakehouse(spark, lake.root)
    other.overwrite(spark.createDataFrame([(1, "a")], "id long, v string"), table)
    assert lake.exists(table)
    assert [tuple(r) for r in lake.read_if_exists(table).collect()] == [(1, "a")]
    assert [tuple(r) for r in lake.read(table, version=0).collect()] == [(1, "a")]


def test_once_a_table_is_on_this_disk_missing_ones_are_looked_for_there(spark, lake, monkeypatch):
    import precis.storage as storage

    asked: list[str] = []

    def counted(session, path):
        asked.append(path)
        return is_table(session, path)

    is_table = storage.is_table
    monkeypatch.setattr(storage, "is_table", counted)
    written, missing = Table("silver", "written"), Table("silver", "missing")
    assert not lake.exists(missing)
    assert asked == [lake.path(missing)]  # the disk is not known to be Spark's yet
    lake.overwrite(frame(spark, [(1, "a", 1.0)]), written)  # asks about it first
    assert asked == [lake.path(missing), lake.path(written)]
    assert lake.exists(written)
    # Spark wrote the table into this machine's folder: the disk answers from now on.
    assert not lake.exists(missing) and not lake.exists(Table("gold", "missing"))
    assert asked == [lake.path(missing), lake.path(written)]
    # What another job writes later is found there, as it would be by Spark.
    Lakehouse(spark, lake.root).overwrite(frame(spark, [(2, "b", 2.0)]), missing)
    asked.clear()
    assert lake.exists(missing)
    assert [tuple(r) for r in lake.read(missing).collect()] == [(2, "b", 2.0)]
    assert asked == []


def test_a_file_uri_root_is_this_disk_too(spark, tmp_path):
    lake = Lakehouse(spark, (tmp_path / "lakehouse").as_uri())
    table = Table("silver", "uri")
    lake.overwrite(frame(spark, [(1, "a", 1.0)]), table)
    assert lake._logs.local  # the table's log is in the folder the URI names
    assert not lake.exists(Table("silver", "none"))
    assert lake.exists(table)


def test_a_delta_log_needs_a_commit_or_a_checkpoint(tmp_path):
    from precis.storage.delta import has_log

    log = tmp_path / "t" / "_delta_log"
    assert not has_log(str(tmp_path / "t"))  # no folder
    log.mkdir(parents=True)
    (log / ".00000000000000000000.json.1f2e.tmp").write_text("")  # a commit being written
    (log / "_commits").mkdir()
    assert not has_log(str(tmp_path / "t"))
    (log / "00000000000000000010.checkpoint.parquet").write_text("")
    assert has_log(str(tmp_path / "t"))
    (log / "00000000000000000010.checkpoint.parquet").unlink()
    (log / "00000000000000000000.json").write_text("")
    assert has_log(str(tmp_path / "t"))


def test_register_tables_in_session_catalog(spark, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    cfg = load_config(
        None,
        [
            f"storage.root={tmp_path / 'lakehouse'}",
            "storage.register_tables=true",
            f"storage.database_prefix={prefix}",
        ],
    )
    lake = Lakehouse.from_config(spark, cfg)
    try:
        first = frame(spark, [(1, "a", 1.0)])
        lake.overwrite(first, Table("gold", "x"))
        assert lake.table_name(Table("gold", "x")) == f"{prefix}gold.x"
        assert_content(spark.table(f"{prefix}gold.x"), first)

        # The registration points at the Delta directory: later writes are visible.
        lake.merge_upsert(
            frame(spark, [(1, "a", 5.0), (2, "b", 2.0)]), Table("gold", "x"), keys=["id"]
        )
        assert_content(spark.table(f"{prefix}gold.x"), frame(spark, [(1, "a", 5.0), (2, "b", 2.0)]))
        location = spark.sql(f"DESCRIBE DETAIL {prefix}gold.x").first().location
        assert location.rstrip("/").endswith(f"{tmp_path}/lakehouse/gold/x")
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS `{prefix}gold` CASCADE")


# ----------------------------------------------------------------- snapshots, as of a date
SNAP = Table("gold", "snap", "snapshot", keys=("id",))
D = dt.date(2026, 3, 31)


def snapshot_rows(lake, table=SNAP):
    return sorted((r["run_date"], r["id"], r["name"]) for r in lake.read(table).collect())


def test_write_snapshot_replaces_only_its_date(spark, lake):
    two = frame(spark, [(1, "a", 1.0), (2, "b", 2.0)])
    assert lake.write_snapshot(two, SNAP, D) == 2
    assert lake.write_snapshot(frame(spark, [(1, "x", 9.0)]), SNAP, D - dt.timedelta(days=1)) == 1
    assert lake.write_snapshot(two.filter("id = 2"), SNAP, D) == 1  # a rerun of D
    assert snapshot_rows(lake) == [(D - dt.timedelta(days=1), 1, "x"), (D, 2, "b")]
    assert lake.snapshot_dates(SNAP) == [D - dt.timedelta(days=1), D]
    assert [r["id"] for r in lake.read_latest(SNAP).collect()] == [2]
    assert [r["id"] for r in lake.read_latest(SNAP, before=D).collect()] == [1]
    assert lake.read_latest(SNAP, before=D - dt.timedelta(days=1)) is None
    assert lake.read_snapshot(SNAP, D + dt.timedelta(days=1)) is None
    with pytest.raises(
        MissingDatasetError, match="no snapshot for run date 2026-04-01.*run the lifecycle job"
    ):
        lake.read_snapshot(SNAP, D + dt.timedelta(days=1), job="lifecycle")
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{lake.path(SNAP)}`").first()
    assert list(detail["partitionColumns"]) == ["run_date"]


def test_retention_drops_old_snapshots_and_refuses_a_backfill_it_would_drop(spark, tmp_path):
    lake = Lakehouse(spark, str(tmp_path / "lake"), snapshot_days=3, vacuum_hours=0)
    rows = frame(spark, [(1, "a", 1.0)])
    for days_before in (5, 2, 1, 0):
        lake.write_snapshot(rows, SNAP, D - dt.timedelta(days=days_before))
    # Kept: the newest and the two days before it; the fifth day before went.
    assert lake.snapshot_dates(SNAP) == [D - dt.timedelta(days=d) for d in (2, 1, 0)]
    with pytest.raises(
        ValueError, match="retention would delete it at once: raise retention.snapshots"
    ):
        lake.write_snapshot(rows, SNAP, D - dt.timedelta(days=3))
    # Vacuumed: no data file of the dropped date is left.
    assert not list((tmp_path / "lake" / "gold" / "snap").glob("run_date=2026-03-26/*.parquet"))


def test_expire_deletes_only_older_rows_and_commits_nothing_when_none_is(spark, tmp_path):
    lake = Lakehouse(spark, str(tmp_path / "lake"), vacuum_hours=0)
    log = Table("bronze", "log", keys=("id",))
    stamps = [(1, "2025-03-30 23:59:59"), (2, "2025-03-31 00:00:00"), (3, "2026-03-31 08:00:00")]
    rows = spark.createDataFrame(stamps, "id int, at string").select(
        "id", F.to_timestamp("at").alias("ingested_at")
    )
    lake.overwrite(rows, log)
    assert lake.expire(log, "ingested_at", dt.date(2025, 3, 31)) == 1
    assert sorted(r["id"] for r in lake.read(log).collect()) == [2, 3]
    version = lake.version(log)
    # Nothing older left: the DELETE matches no file, so Delta commits nothing.
    assert lake.expire(log, "ingested_at", dt.date(2025, 3, 31)) == 0
    assert lake.version(log) == version
    # A table without the column is left alone.
    assert lake.expire(log, "missing", dt.date(2027, 1, 1)) == 0


def test_a_snapshot_gains_a_column_and_a_retyped_one_rebuilds(spark, lake):
    lake.write_snapshot(frame(spark, [(1, "a", 1.0)]), SNAP, D - dt.timedelta(days=1))
    wider = frame(spark, [(1, "a", 1.0, True)], SCHEMA + ", flag boolean")
    lake.write_snapshot(wider, SNAP, D, evolve=True)
    rows = {r["run_date"]: r["flag"] for r in lake.read(SNAP).collect()}
    assert rows == {D - dt.timedelta(days=1): None, D: True}
    retyped = frame(spark, [(1, "a", 1.0, "yes")], SCHEMA + ", flag string")
    lake.write_snapshot(retyped, SNAP, D, evolve=True)
    assert [(r["run_date"], r["flag"]) for r in lake.read(SNAP).collect()] == [(D, "yes")]


def test_a_table_of_one_current_state_is_refused_for_snapshots(spark, lake):
    lake.overwrite(frame(spark, [(1, "a", 1.0)]), SNAP)  # no run_date, not partitioned
    with pytest.raises(SchemaDriftError, match="not partitioned by run_date.*Delete the folder"):
        lake.write_snapshot(frame(spark, [(1, "a", 1.0)]), SNAP, D)


def test_read_as_of_hides_facts_after_the_run_date(spark, lake):
    facts = Table("silver", "facts", "merge", keys=("id",), as_of="at")
    rows = spark.createDataFrame(
        [
            (1, dt.datetime(2026, 3, 30, 12)),
            (2, dt.datetime(2026, 3, 31, 23, 59, 59)),
            (3, dt.datetime(2026, 4, 1, 0, 0, 0)),
        ],
        "id bigint, at timestamp",
    )
    lake.overwrite(rows, facts)
    assert sorted(r["id"] for r in lake.read_as_of(facts, D).collect()) == [1, 2]
    assert sorted(
        r["id"] for r in lake.read_if_exists(facts, as_of=D - dt.timedelta(days=1)).collect()
    ) == [1]
    days = Table("silver", "days", "merge", keys=("id",), as_of="day")
    lake.overwrite(
        spark.createDataFrame([(1, D), (2, D + dt.timedelta(days=1))], "id bigint, day date"), days
    )
    assert [r["id"] for r in lake.read_as_of(days, D).collect()] == [1]
    assert T.ORDERS.as_of == "order_time" and T.CUSTOMERS.as_of is None
