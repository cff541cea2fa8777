"""Forgetting on a generated world, end to end.

On a copy of the suite's generated world (conftest.py's ``ingested``), the daily pipeline
runs (its ``forget`` step handles the requests the generator landed);
then ``forget`` runs for two more people, one named by a plain email in a request file
and one by ``one_id``. Afterwards nothing of theirs is in any table of any layer or in
the exports, their deleted versions are unreadable, a full replay of every landing file
(ingest, forget and identity run again) brings nothing back, nobody else's
``one_id`` moved, and forgetting again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from conftest import read_landed
from precis import privacy
from precis import tables as T
from precis.config import load_config
from precis.ingest import protect
from precis.ingest.conform import IdentifierSettings
from precis.jobs import forget, pipeline
from precis.storage import Lakehouse

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 3, 31)


def settings(root: Path, *extra: str) -> list[str]:
    return [
        f"storage.root={root}",
        "mlflow.enabled=false",
        # A small model: the test is about forgetting, not recommending.
        "recommend.grid.rank=[4]",
        "recommend.grid.reg_param=[0.5]",
        "recommend.grid.alpha=[2.0]",
        "recommend.max_iter=3",
        # Small worlds: ALS need not beat popularity for the tests to see its lists.
        "recommend.require_lift=false",
        "recommend.measure_decay=false",
        *extra,
    ]


def config(root: Path, *extra: str):
    return load_config(PROJECT / "conf" / "base.yaml", settings(root, *extra), run_date=DAY)


def tables(root: Path) -> list[Path]:
    """Every Delta table under the lakehouse, whatever declared it."""
    return sorted(p.parent for p in root.glob("*/*/_delta_log"))


def commits(root: Path) -> dict[str, set[str]]:
    """Each table's commit files: a table that got a commit has one more (no Spark job)."""
    return {str(p): {f.name for f in (p / "_delta_log").glob("*.json")} for p in tables(root)}


@pytest.fixture(scope="module")
def forgotten(spark, ingested, tmp_path_factory):
    root = tmp_path_factory.mktemp("forget") / "lakehouse"
    shutil.copytree(ingested, root)  # the suite's generated world, ingested
    # The daily pipeline after its ingest (which the world's ingest was).
    cfg = config(root, "pipeline.jobs=[forget, identity, lifecycle, tags, recommend, attribution]")
    pipeline.run(spark, cfg)
    lake = Lakehouse.from_config(spark, cfg)
    ids = lake.read(T.IDENTITY_MAP)
    # Two people with an email and orders: one asked by email, one by one_id.
    buyers = ids.filter("id_type = 'email'").join(
        lake.read(T.ORDERS).select("id_type", "id_key").distinct(),
        ["id_type", "id_key"],
        "left_semi",
    )
    chosen = [
        r["one_id"] for r in buyers.select("one_id").distinct().orderBy("one_id").limit(2).collect()
    ]
    by_email, by_id = chosen
    email_key = buyers.filter(F.col("one_id") == by_email).first()["id_key"]
    # The plain email, as landed: find the landed value whose key is that id_key.
    landed = read_landed(spark, cfg, "orders")
    id_settings = IdentifierSettings.from_config(cfg)
    candidates = landed.filter("lower(trim(id_type)) = 'email'").select("id_type", "id_value")
    keyed = privacy.with_key(candidates, id_settings.key)
    keyed = privacy.drop_key(protect.with_bronze_key(keyed, id_settings, "k"))
    email = keyed.filter(F.col("k") == email_key).first()["id_value"]
    request = root.parent / "requests.csv"
    request.write_text(f'id_type,id_value\nemail,"{email}"\n')
    people = [by_email, by_id]
    theirs = ids.filter(F.col("one_id").isin(people))
    keys = {r["id_key"] for r in theirs.select("id_key").collect()}
    orders = {
        r["order_id"]
        for r in lake.read(T.ORDERS).join(theirs, ["id_type", "id_key"], "left_semi").collect()
    }
    others = {
        (r["id_type"], r["id_key"], r["one_id"])
        for r in ids.filter(~F.col("one_id").isin(people)).collect()
    }
    silver_orders_version = lake.version(T.ORDERS)
    run = config(root, f"forget.file={request}", f"forget.one_ids=[{by_id}]")
    result = forget.run(spark, run)
    return {
        "root": root,
        "cfg": run,
        "lake": lake,
        "people": people,
        "keys": keys,
        "orders": orders,
        "email": email.strip(),
        "others": others,
        "result": result,
        "orders_version": silver_orders_version,
    }


def assert_absent(spark, state) -> None:
    root, people, keys = state["root"], state["people"], state["keys"]
    values = set(people) | keys | {state["email"], state["email"].lower()}
    asked = F.array(*[F.lit(v) for v in sorted(values)])
    for path in tables(root):
        if path.name in ("suppressions", "forget_log", "forget_requests"):
            continue  # what forgetting keeps: keyed hashes of what was asked
        df = spark.read.format("delta").load(str(path))
        texts = [F.col(f.name) for f in df.schema.fields if isinstance(f.dataType, StringType)]
        # One pass over the table: values of theirs in any string column, their order
        # items, their plain email in landed raw JSON.
        checks = (
            [F.count_if(F.arrays_overlap(F.array(*texts), asked)).alias("hits")] if texts else []
        )
        if "order_id" in df.columns and "id_key" not in df.columns:
            their_orders = F.col("order_id").cast("string").isin(*state["orders"])
            checks.append(F.count_if(their_orders).alias("order_items"))
        if "raw" in df.columns:
            checks.append(F.count_if(F.col("raw").contains(state["email"])).alias("raw"))
        found = df.agg(*checks).first().asDict() if checks else {}
        where = path.relative_to(root)
        assert not found.get("hits"), (
            f"{where} still holds {found['hits']} value(s) of the forgotten"
        )
        assert not found.get("order_items"), f"{where} still holds their order items"
        assert not found.get("raw"), f"{where} still holds their email in landed JSON"
    exports = root / "exports"
    for folder in {p.parent for p in exports.rglob("*.parquet")}:
        rows = spark.read.parquet(str(folder))
        if "one_id" in rows.columns:
            assert rows.filter(F.col("one_id").isin(people)).count() == 0, folder


def test_forget_removes_them_from_every_layer(spark, forgotten):
    assert forgotten["result"]["requests"] == 2
    assert_absent(spark, forgotten)
    sup = forgotten["lake"].read(T.SUPPRESSIONS)
    assert {r["id_key"] for r in sup.collect()} >= forgotten["keys"]
    assert sup.filter(F.col("id_key") == forgotten["email"]).count() == 0
    # The landed requests stay (a rerun after a crash finds them), each done in the log.
    lake = forgotten["lake"]
    asked = lake.read(T.SILVER["forget_requests"]).filter(F.col("id_key").isNotNull())
    keys = asked.select(F.concat_ws(":", "id_type", "id_key").alias("request_key"))
    done = lake.read(T.FORGET_LOG).select(F.explode("requests").alias("request_key"))
    assert keys.count() > 0
    assert keys.join(done, "request_key", "left_anti").isEmpty()


def test_deleted_versions_are_unreadable(spark, forgotten):
    lake = forgotten["lake"]
    with pytest.raises(Exception, match="(?i)(not exist|FileNotFound|FILE_NOT|vacuum)"):
        # Read the rows themselves: Delta answers a bare count() from its log's statistics.
        lake.read(T.ORDERS, version=forgotten["orders_version"]).select("order_id").collect()


def test_replay_brings_nobody_back_and_others_keep_their_ids(spark, forgotten):
    root, cfg = forgotten["root"], forgotten["cfg"]
    shutil.rmtree(root / "meta" / "ingest_files")
    # The jobs that read landing data and resolve people; the others only derive from
    # silver and gold, which the replay leaves without them (checked below).
    again = config(root, "pipeline.force=true", "pipeline.jobs=[ingest, forget, identity]")
    pipeline.run(spark, again)
    assert_absent(spark, forgotten)
    lake = forgotten["lake"]
    now = {(r["id_type"], r["id_key"], r["one_id"]) for r in lake.read(T.IDENTITY_MAP).collect()}
    assert forgotten["others"] <= now
    # Forgetting again changes nothing: no request is pending, no table gets a commit.
    # (meta/leases aside: taking and giving back the job's lease are commits of their own.)
    leases = str(root / "meta" / "leases")
    before = {table: files for table, files in commits(root).items() if table != leases}
    result = forget.run(spark, cfg)
    assert result["requests"] == 0
    after = {table: files for table, files in commits(root).items() if table != leases}
    assert after == before
