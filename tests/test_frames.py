"""precis.frames: frames computed once, kept for a block, cut where they must survive."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from precis.frames import cut, cut_how, how_to_cut, kept, kept_observed, materialize, row_count


@pytest.mark.parametrize(
    ("master", "directory", "how"),
    [
        ("local[2]", "/lake/_checkpoints", "local"),  # executors die with the driver
        ("local", None, "local"),
        ("spark://master:7077", "hdfs:///precis/_checkpoints", "reliable"),
        ("yarn", "s3a://bucket/_checkpoints", "reliable"),
        ("k8s://https://api:6443", None, "local"),  # nowhere reliable to write
        ("", "/shared/_checkpoints", "reliable"),  # a session that does not say
    ],
)
def test_how_to_cut(master, directory, how):
    assert how_to_cut(master, directory) == how


def test_cut_keeps_the_rows_and_drops_the_lineage(spark):
    source = spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "n long, s string")
    frame = source.filter(F.col("n") > 1).withColumn("twice", F.col("n") * 2)
    assert cut_how(spark) == "local"  # the test session's master is local[...]
    done = cut(frame)
    plan = done._jdf.queryExecution().analyzed().toString()
    assert "Filter" not in plan and "Project" not in plan  # read from the kept rows
    assert_df_equality(
        done,
        spark.createDataFrame([(2, "b", 4), (3, "c", 6)], "n long, s string, twice long"),
        ignore_row_order=True,
    )


def test_materialize_observes_metrics_while_computing(spark):
    frame = spark.range(10).withColumn("even", F.col("id") % 2 == 0)
    for how in ("local", "persist"):
        computed, values = materialize(
            frame, [row_count(), F.sum(F.col("even").cast("int")).alias("evens")], how=how
        )
        assert values == {"rows": 10, "evens": 5}
        assert computed.count() == 10
        computed.unpersist()


def test_kept_releases_its_frames_even_on_error(spark):
    frame = spark.range(5)
    with pytest.raises(RuntimeError, match="inside"), kept(frame) as (cached,):
        assert cached.is_cached
        raise RuntimeError("inside")
    assert not cached.is_cached


def test_kept_observed_counts_and_survives_a_self_join(spark):
    frame = spark.createDataFrame([(1, "x"), (2, "x"), (3, "y")], "n long, g string")
    with kept_observed(frame, [row_count()]) as (rows, counted):
        assert counted == {"rows": 3}
        pairs = rows.alias("a").join(rows.alias("b"), "g", how="inner")
        assert pairs.count() == 5  # x: 2 x 2, y: 1 x 1
        assert rows.is_cached
    assert not rows.is_cached
