"""Tag values from definitions: one pure transform per template, then the profile.

``base_values`` computes the templates that read data (window, attribute, model) as
``one_id`` + one typed column; ``profile`` joins them onto the population and adds the
derived tags (expression, bucket) in dependency order; ``tall`` turns the profile into
``gold/profile_tags`` rows. Doubles are rounded to 6 decimals so the order in which
Spark happens to sum a person's rows never shows up as a changed value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.tags.definitions import (
    AttributeDef,
    BucketDef,
    ExpressionDef,
    KMeansDef,
    ModelDef,
    Tag,
    WindowDef,
)

DOUBLE_DIGITS = 6
TALL_COLUMNS = ("one_id", "tag", "value", "type", "rule_version", "computed_at", "run_date")


def spark_type(tag_type: str) -> str:
    return "bigint" if tag_type == "long" else tag_type


def _typed(value: Column, tag_type: str) -> Column:
    cast = value.cast(spark_type(tag_type))
    return F.round(cast, DOUBLE_DIGITS) if tag_type == "double" else cast


def window_bounds(as_of: dt.date, window_days: int | None) -> tuple[dt.date | None, dt.date]:
    """First and last day (both inclusive) of a window ending on the run date."""
    if window_days is None:
        return None, as_of
    return as_of - dt.timedelta(days=window_days - 1), as_of


def in_window(df: DataFrame, spec: WindowDef, as_of: dt.date) -> DataFrame:
    """The rows a window tag reads: inside the window, matching ``where``, never after the run date."""
    start, end = window_bounds(as_of, spec.window_days)
    cond = F.col("_date") <= F.lit(end)
    if start is not None:
        cond = cond & (F.col("_date") >= F.lit(start))
    for field, wanted in sorted(spec.where.items()):
        values = wanted if isinstance(wanted, list) else [wanted]
        cond = cond & F.col(field).isin(*values)
    return df.filter(cond)


def _most_frequent(df: DataFrame, field: str, name: str) -> DataFrame:
    # Ties go to the smallest value, so the same rows always give the same answer.
    counts = (
        df.filter(F.col(field).isNotNull())
        .groupBy("one_id", F.col(field).cast("string").alias("_v"))
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    ranked = Window.partitionBy("one_id").orderBy(F.col("_n").desc(), F.col("_v").asc())
    return (
        counts.withColumn("_r", F.row_number().over(ranked))
        .filter(F.col("_r") == 1)
        .select("one_id", F.col("_v").alias(name))
    )


def window_tag(df: DataFrame, tag: Tag, as_of: dt.date) -> DataFrame:
    """``one_id`` + the tag's value for people with at least one row in the window."""
    spec: WindowDef = tag.spec
    rows = in_window(df, spec, as_of)
    field, t = spec.field, spec.template
    if t == "most_frequent":
        return _most_frequent(rows, field, tag.name)
    if t in ("first", "last", "sum", "avg", "min", "max", "unique_count"):
        rows = rows.filter(F.col(field).isNotNull())
    if t == "count":
        value = F.count(F.lit(1))
    elif t == "days_since":
        value = F.datediff(F.lit(as_of), F.max("_date"))
    elif t == "sum":
        value = F.sum(field)
    elif t == "avg":
        value = F.avg(field)
    elif t == "min":
        value = F.min(field)
    elif t == "max":
        value = F.max(field)
    elif t == "unique_count":
        value = F.countDistinct(field)
    elif t == "first":
        # Earliest row; rows at the same instant: the smallest value.
        value = F.min(F.struct("_ts", field))[field]
    elif t == "last":
        value = F.max(F.struct("_ts", field))[field]
    else:  # pragma: no cover - the definitions allow no other template
        raise AssertionError(t)
    return rows.groupBy("one_id").agg(_typed(value, tag.type).alias(tag.name))


def attribute_tag(df: DataFrame, tag: Tag) -> DataFrame:
    """One value per person from several customer rows, combined as the tag says."""
    spec: AttributeDef = tag.spec
    field = spec.field
    if spec.combine == "most_frequent":
        return _most_frequent(df, field, tag.name)
    if spec.combine == "all":
        # A row that does not say yes counts as no: any false or missing => false.
        value = F.bool_and(F.coalesce(F.col(field), F.lit(False)))
    elif spec.combine == "any":
        value = F.bool_or(F.coalesce(F.col(field), F.lit(False)))
    elif spec.combine == "min":
        value = F.min(field)
    else:
        value = F.max(field)
    return df.groupBy("one_id").agg(_typed(value, tag.type).alias(tag.name))


def model_tag(source: DataFrame, tag: Tag) -> DataFrame:
    spec: ModelDef = tag.spec
    return source.filter(F.col(spec.field).isNotNull()).select(
        "one_id", _typed(F.col(spec.field), tag.type).alias(tag.name)
    )


@dataclass(frozen=True)
class KMeansResult:
    frame: DataFrame  # one_id, <tag>
    k: int
    silhouettes: dict[int, float]
    centers: list[
        dict[str, float]
    ]  # in label order, in the original feature units (log1p where logged)


def kmeans_tag(
    source: DataFrame, tag: Tag, k_min: int, k_max: int, seed: int, max_iter: int
) -> KMeansResult | None:
    """Cluster people with every feature present; None when there are too few of them."""
    from pyspark.ml import Pipeline
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    spec: KMeansDef = tag.spec
    feats = list(spec.features)
    cols = [
        (
            F.log1p(F.col(f).cast("double")) if f in spec.log_features else F.col(f).cast("double")
        ).alias(f)
        for f in feats
    ]
    data = source.select("one_id", *cols).dropna(subset=feats)
    n = data.count()
    if n < max(k_min * 5, 10):
        return None
    prep = Pipeline(
        stages=[
            VectorAssembler(inputCols=feats, outputCol="_raw"),
            StandardScaler(inputCol="_raw", outputCol="_features", withMean=True, withStd=True),
        ]
    ).fit(data)
    scaled = prep.transform(data).select("one_id", *feats, "_features").cache()
    evaluator = ClusteringEvaluator(featuresCol="_features", predictionCol="_cluster")
    best, silhouettes = None, {}
    for k in range(k_min, min(k_max, n - 1) + 1):
        model = KMeans(
            k=k, seed=seed, maxIter=max_iter, featuresCol="_features", predictionCol="_cluster"
        ).fit(scaled)
        score = evaluator.evaluate(model.transform(scaled))
        silhouettes[k] = round(float(score), 6)
        if best is None or score > best[1]:
            best = (k, score, model)
    k, _, model = best
    assigned = model.transform(scaled)
    centers = assigned.groupBy("_cluster").agg(*[F.avg(f).alias(f) for f in feats]).collect()
    ordered = sorted(centers, key=lambda r: (r[spec.order_by], r["_cluster"]))
    label = {r["_cluster"]: f"c{i}" for i, r in enumerate(ordered, start=1)}
    mapping = F.create_map(*[F.lit(x) for kv in label.items() for x in kv])
    frame = assigned.select("one_id", F.element_at(mapping, F.col("_cluster")).alias(tag.name))
    frame = frame.localCheckpoint()
    scaled.unpersist()
    return KMeansResult(frame, k, silhouettes, [{f: float(r[f]) for f in feats} for r in ordered])


def bucket_column(tag: Tag, source: Column) -> Column:
    spec: BucketDef = tag.spec
    expr = None
    for b in spec.buckets:
        cond = F.lit(True)
        if b.min is not None:
            cond = cond & (source >= F.lit(b.min))
        if b.max is not None:
            cond = cond & (source < F.lit(b.max))
        expr = F.when(cond, F.lit(b.label)) if expr is None else expr.when(cond, F.lit(b.label))
    return F.when(source.isNull(), F.lit(None).cast("string")).otherwise(expr)


def derived_column(tag: Tag) -> Column:
    if isinstance(tag.spec, ExpressionDef):
        return _typed(F.expr(tag.spec.expr), tag.type)
    if isinstance(tag.spec, BucketDef):
        return bucket_column(tag, F.col(tag.spec.source))
    raise AssertionError(tag.template)


def check_expressions(
    spark, tags: Sequence[Tag], conditions: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Analyse every expression and segment condition on an empty frame of the tag columns.

    Returns (name, reason) for each that Spark cannot parse or resolve, so a typo fails
    before any data is read, not after an hour of aggregation.
    """
    empty = spark.createDataFrame([], ", ".join(f"`{t.name}` {spark_type(t.type)}" for t in tags))
    problems = []
    checks = [(t.name, t.spec.expr) for t in tags if isinstance(t.spec, ExpressionDef)] + list(
        conditions.items()
    )
    for name, expr in checks:
        try:
            _ = empty.select(F.expr(expr)).schema  # analysis only
        except Exception as exc:
            problems.append((name, str(exc).strip().splitlines()[0]))
    return problems


def profile(population: DataFrame, base: Mapping[str, DataFrame], tags: Sequence[Tag]) -> DataFrame:
    """One row per person of ``population``: every tag as a typed column, derived tags last.

    ``base`` holds one ``one_id`` + value frame per data-reading tag; people without a
    value get null. ``tags`` are in evaluation order (a tag after the tags it reads).
    """
    wide = population.select("one_id").distinct()
    read = [base[t.name] for t in tags if t.name in base]
    if read:
        wide = wide.join(_outer_join_all(read), "one_id", "left")
    for tag in tags:
        if tag.name in base:
            continue
        if isinstance(tag.spec, (ExpressionDef, BucketDef)):
            wide = wide.withColumn(tag.name, derived_column(tag))
        else:
            wide = wide.withColumn(tag.name, F.lit(None).cast(spark_type(tag.type)))
    return wide.select(
        "one_id", *[F.col(t.name).cast(spark_type(t.type)).alias(t.name) for t in tags]
    )


def _outer_join_all(frames: Sequence[DataFrame]) -> DataFrame:
    """Full outer join of ``one_id`` + value frames, pairwise: the plan is log2(n) joins
    deep, not n (a Spark Connect client sends the whole plan, and protobuf caps nesting)."""
    level = list(frames)
    while len(level) > 1:
        level = [
            level[i].join(level[i + 1], "one_id", "full") if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


def tall(
    wide: DataFrame, tags: Sequence[Tag], computed_at: dt.datetime, run_date: dt.date
) -> DataFrame:
    """``gold/profile_tags`` rows: one per person and tag with a value (nulls are no row)."""
    names = [t.name for t in tags]
    as_text = wide.select("one_id", *[F.col(n).cast("string").alias(n) for n in names])
    long = as_text.unpivot("one_id", names, "tag", "value").filter(F.col("value").isNotNull())
    meta = long.sparkSession.createDataFrame(
        [(t.name, t.type, t.version) for t in tags], "tag string, type string, rule_version string"
    )
    return long.join(F.broadcast(meta), "tag", "inner").select(
        "one_id",
        "tag",
        "value",
        "type",
        "rule_version",
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
        F.lit(run_date).cast("date").alias("run_date"),
    )
