"""Tag values from definitions: one aggregation per dataset, then the profile.

``dataset_values`` computes every window and attribute tag that reads one dataset in a
single ``groupBy("one_id")``: a tag's window, ``where`` and field become the condition
of its own aggregate, so tags on different windows and filters share one pass over the
rows and one shuffle. ``model_values`` copies the model tags of a source in one select.
``profile`` left-joins those frames (one per dataset, model source and cluster tag) onto
the population and adds the derived tags (expression, bucket) with one select per level
of dependency; ``tall`` turns the profile into ``gold/profile_tags`` rows. Doubles are
rounded to 6 decimals so the order in which Spark happens to sum a person's rows never
shows up as a changed value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ONE_ID, RUN_DATE
from precis.frames import cut
from precis.tags.templates import (
    AttributeDef,
    BucketDef,
    ExpressionDef,
    KMeansDef,
    Tag,
    WindowDef,
)

DOUBLE_DIGITS = 6
TALL_COLUMNS = (ONE_ID, "tag", "value", "type", "rule_version", "computed_at", RUN_DATE)
# Window templates that skip rows without a value of the field: such rows neither count
# nor make a person have a value.
_FIELD_TEMPLATES = frozenset(
    {"first", "last", "sum", "avg", "min", "max", "unique_count", "most_frequent"}
)


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


def window_condition(spec: WindowDef, as_of: dt.date) -> Column:
    """True for a row inside the window and matching ``where``; never after the run date."""
    start, end = window_bounds(as_of, spec.window_days)
    cond = F.col("_date") <= F.lit(end)
    if start is not None:
        cond = cond & (F.col("_date") >= F.lit(start))
    for field, wanted in sorted(spec.where.items()):
        values = wanted if isinstance(wanted, list) else [wanted]
        cond = cond & F.col(field).isin(*values)
    return cond


def in_window(df: DataFrame, spec: WindowDef, as_of: dt.date) -> DataFrame:
    """The rows a window tag reads: inside the window, matching ``where``."""
    return df.filter(window_condition(spec, as_of))


def _field(tag: Tag) -> str:
    field = tag.spec.field
    if field is None:  # pragma: no cover - definitions require a field for these templates
        raise AssertionError(f"tag '{tag.name}': {tag.template} without a field")
    return field


def _reads(tag: Tag, as_of: dt.date) -> Column | None:
    """The rows of its dataset a tag aggregates; None: every row."""
    spec = tag.spec
    if isinstance(spec, WindowDef):
        cond = window_condition(spec, as_of)
        if spec.template in _FIELD_TEMPLATES:
            cond = cond & F.col(_field(tag)).isNotNull()
        return cond
    if spec.combine == "most_frequent":
        return F.col(spec.field).isNotNull()
    # all/any read a missing value as false, min/max skip it: every row counts.
    return None


def _only(cond: Column | None, value: Column) -> Column:
    # Null outside the tag's rows: every aggregate below skips nulls, so a row the tag
    # does not read changes nothing, and a person with none of its rows gets null.
    return value if cond is None else F.when(cond, value)


def _aggregate(tag: Tag, as_of: dt.date) -> Column:
    """The tag's value as an aggregate over all rows of its dataset, typed and named."""
    spec, t = tag.spec, tag.template
    cond = _reads(tag, as_of)
    if isinstance(spec, AttributeDef):
        t = spec.combine
    if t == "count":
        # A sum of ones, not a count: with no matching row it is null (no value, like a
        # person without rows), where a count would say 0.
        value = F.sum(_only(cond, F.lit(1)))
    elif t == "days_since":
        value = F.datediff(F.lit(as_of), F.max(_only(cond, F.col("_date"))))
    elif t == "most_frequent":
        # Ties go to the smallest value, so the same rows always give the same answer.
        value = F.mode(_only(cond, F.col(_field(tag)).cast("string")), deterministic=True)
    elif t == "all":
        # A row that does not say yes counts as no: any false or missing => false.
        value = F.bool_and(_only(cond, F.coalesce(F.col(_field(tag)), F.lit(False))))
    elif t == "any":
        value = F.bool_or(_only(cond, F.coalesce(F.col(_field(tag)), F.lit(False))))
    else:
        field = _field(tag)
        column = _only(cond, F.col(field))
        if t == "sum":
            value = F.sum(column)
        elif t == "avg":
            value = F.avg(column)
        elif t == "min":
            value = F.min(column)
        elif t == "max":
            value = F.max(column)
        elif t == "unique_count":
            # count_distinct says 0 where the person has no matching row: no value instead.
            value = F.nullif(F.count_distinct(column), F.lit(0))
        elif t == "first":
            # Earliest row; rows at the same instant: the smallest value.
            value = F.min(_only(cond, F.struct("_ts", field)))[field]
        elif t == "last":
            value = F.max(_only(cond, F.struct("_ts", field)))[field]
        else:  # pragma: no cover - the definitions allow no other template
            raise AssertionError(t)
    return _typed(value, tag.type).alias(tag.name)


def dataset_values(df: DataFrame, tags: Sequence[Tag], as_of: dt.date) -> DataFrame:
    """``one_id`` + a column per tag, for the window and attribute tags reading ``df``.

    One aggregation for all of them. A tag is null for a person none of whose rows it
    reads, exactly as for a person without any row once the frame is joined onto the
    population.
    """
    conds = [_reads(t, as_of) for t in tags]
    if all(c is not None for c in conds):
        # Rows no tag reads (outside every window, other event types) never reach the
        # shuffle, and nobody gets a row of nulls.
        df = df.filter(reduce(lambda a, b: a | b, [c for c in conds if c is not None]))
    return df.groupBy(ONE_ID).agg(*[_aggregate(t, as_of) for t in tags])


def model_values(source: DataFrame, tags: Sequence[Tag]) -> DataFrame:
    """``one_id`` + a column per model tag, copied from the source's one row per person."""
    return source.select(ONE_ID, *[_typed(F.col(t.spec.field), t.type).alias(t.name) for t in tags])


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
    data = source.select(ONE_ID, *cols).dropna(subset=feats)
    n = data.count()
    if n < max(k_min * 5, 10):
        return None
    prep = Pipeline(
        stages=[
            VectorAssembler(inputCols=feats, outputCol="_raw"),
            StandardScaler(inputCol="_raw", outputCol="_features", withMean=True, withStd=True),
        ]
    ).fit(data)
    scaled = prep.transform(data).select(ONE_ID, *feats, "_features").cache()
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
    if best is None:  # pragma: no cover - k_min <= k_max < n: some k was tried
        raise AssertionError(f"tag '{tag.name}': no k in {k_min}..{k_max} to try")
    k, _, model = best
    assigned = model.transform(scaled)
    centers = assigned.groupBy("_cluster").agg(*[F.avg(f).alias(f) for f in feats]).collect()
    ordered = sorted(centers, key=lambda r: (r[spec.order_by], r["_cluster"]))
    label = {r["_cluster"]: f"c{i}" for i, r in enumerate(ordered, start=1)}
    mapping = F.create_map(*[F.lit(x) for kv in label.items() for x in kv])
    frame = assigned.select(ONE_ID, F.element_at(mapping, F.col("_cluster")).alias(tag.name))
    frame = cut(frame)
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

    ``base`` maps each data-reading tag to a ``one_id`` frame holding its column; tags
    computed together share one frame, which is joined once. People without a value get
    null. ``tags`` are in evaluation order (a tag after the tags it reads).
    """
    frames: dict[int, tuple[DataFrame, list[str]]] = {}
    for tag in tags:
        if tag.name in base:
            frame = base[tag.name]
            frames.setdefault(id(frame), (frame, []))[1].append(tag.name)
    wide = population.select(ONE_ID).distinct()
    # A chain of left joins: each frame is grouped by one_id, so a join can reuse that
    # partitioning instead of shuffling the profile again. With one frame per dataset,
    # model source and cluster tag the chain stays short (a Spark Connect client sends
    # the plan as one nested message, and protobuf caps the nesting).
    for frame, names in frames.values():
        wide = wide.join(frame.select(ONE_ID, *names), on=ONE_ID, how="left")

    # A select reads only the columns of the frame below it, so a derived tag is computed
    # one level above the deepest derived tag it reads. Tags without data (no model
    # source, too few people to cluster) are nulls at level 0, where derived tags see them.
    level: dict[str, int] = {}
    stages: list[dict[str, Column]] = [{}]
    for tag in tags:
        if tag.name in base:
            continue
        if isinstance(tag.spec, (ExpressionDef, BucketDef)):
            n = level[tag.name] = 1 + max((level.get(d, 0) for d in tag.depends), default=0)
            if n == len(stages):
                stages.append({})
            stages[n][tag.name] = derived_column(tag)
        else:
            stages[0][tag.name] = F.lit(None).cast(spark_type(tag.type))
    *below, top = stages  # the top level goes into the final select
    for stage in below:
        if stage:
            wide = wide.select("*", *[c.alias(n) for n, c in stage.items()])
    return wide.select(
        ONE_ID,
        *[top.get(t.name, F.col(t.name)).cast(spark_type(t.type)).alias(t.name) for t in tags],
    )


def tall(
    wide: DataFrame, tags: Sequence[Tag], computed_at: dt.datetime, run_date: dt.date
) -> DataFrame:
    """``gold/profile_tags`` rows: one per person and tag with a value (nulls are no row)."""
    names = [t.name for t in tags]
    as_text = wide.select(ONE_ID, *[F.col(n).cast("string").alias(n) for n in names])
    long = as_text.unpivot(ONE_ID, tuple(names), "tag", "value").filter(F.col("value").isNotNull())
    meta = long.sparkSession.createDataFrame(
        [(t.name, t.type, t.version) for t in tags], "tag string, type string, rule_version string"
    )
    return long.join(F.broadcast(meta), on="tag", how="inner").select(
        ONE_ID,
        "tag",
        "value",
        "type",
        "rule_version",
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
        F.lit(run_date).cast("date").alias(RUN_DATE),
    )
