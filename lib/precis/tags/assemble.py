"""Tag profiles and segments of one run: the tags job's pure entry, ``build``.

Silver datasets resolve to ``one_id``; every tag reading a dataset is computed in one
aggregation of it, model tags are copied from this run date's customer value, cluster
tags fitted; the wide profile of everyone in the identity map is computed once and kept,
turned into tall ``profile_tags`` rows, compared with the previous rows (the changes),
summarised per tag, and consented people meeting a segment's condition become its
members. No table is read or written here and nothing is logged to MLflow: the job does
that with what ``build`` returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.columns import ONE_ID, RUN_DATE
from precis.consent import marketing_consent
from precis.errors import ConfigError
from precis.frames import KEEP, cut, kept, materialize, row_count
from precis.identity.resolve import isolated_identifiers
from precis.progress import log
from precis.schemas import silver_schema
from precis.tags import compute, history, segments, sources
from precis.tags.settings import TagsConfig, TagsKMeansConfig
from precis.tags.templates import WINDOWED, Segment, Tag, TagSet

JOB = "tags"
#: Templates whose values come from a silver dataset.
READS_DATA = (*WINDOWED, "attribute")


@dataclass(frozen=True)
class Inputs:
    identity_map: DataFrame  # gold/identity_map
    # Silver tables by name: those the tags read, plus customers (consent) and items
    # (categories and brands) where they exist.
    silver: Mapping[str, DataFrame] = field(default_factory=dict)
    guards: DataFrame | None = None  # gold/identity_guards: isolated ids tag nobody
    customer_value: DataFrame | None = None  # gold/customer_value, for model and cluster tags
    previous: DataFrame | None = None  # gold/profile_tags before this run
    # Tags whose datasets are absent (their silver stand-ins are empty): tag -> why.
    skipped: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentOutputs:
    members: DataFrame  # gold/segments, computed and kept
    export: DataFrame  # the members as exported, partitioned by segment
    tally: DataFrame  # the export's counts file: segment, people
    counts: dict[str, int]  # members per segment, every segment


@dataclass(frozen=True)
class TagsOutputs:
    profiles: DataFrame  # gold/profiles: one typed column per tag, computed and kept
    profile_tags: DataFrame  # gold/profile_tags: a row per person and tag with a value
    changes: DataFrame  # this run's gold/tag_changes rows, computed before any write
    tag_stats: DataFrame  # this run date's gold/tag_stats rows, computed and kept
    stats_rows: list[dict[str, Any]]  # the same rows, for MLflow and the job's result
    segments: SegmentOutputs | None  # None without segment definitions
    people: int
    change_counts: dict[str, int]  # changes per tag that changed
    models: dict[str, dict[str, Any]]  # per cluster tag: k, silhouettes, centers
    skipped: Mapping[str, str] = field(default_factory=dict)  # tag -> why, no values

    @property
    def segment_counts(self) -> dict[str, int]:
        return self.segments.counts if self.segments is not None else {}

    @property
    def changed(self) -> int:
        return sum(self.change_counts.values())

    def metrics(self) -> dict[str, float]:
        """People, changes, coverage and changes per tag, members per segment, clusters."""
        found: dict[str, float] = {"people": self.people, "changes": self.changed}
        for r in self.stats_rows:
            found[f"coverage_{r['tag']}"] = r["coverage"]
            found[f"changes_{r['tag']}"] = r["changes"]
        found.update({f"segment_{k}": v for k, v in self.segment_counts.items()})
        found.update({f"skipped_{tag}": 1.0 for tag in self.skipped})
        for name, m in self.models.items():
            found[f"{name}_k"] = m["k"]
            found[f"{name}_silhouette"] = m["silhouettes"][m["k"]]
            found.update({f"{name}_silhouette_k{k}": s for k, s in m["silhouettes"].items()})
        return found

    def summary(self, written: int) -> dict[str, Any]:
        """What the job returns; ``written``: the rows of the ``profile_tags`` snapshot."""
        return {
            "people": self.people,
            "coverage": {r["tag"]: r["coverage"] for r in self.stats_rows},
            "changes": self.change_counts,
            "written": written,
            "segments": self.segment_counts,
            "models": self.models,
            "skipped": dict(self.skipped),
        }


def check_sql(spark: SparkSession, tags: TagSet, segs: Sequence[Segment]) -> None:
    """Raise ConfigError naming the first expression or condition Spark cannot analyse."""
    problems = compute.check_expressions(
        spark, tags.tags, {f"segment '{s.name}'": s.spec.where for s in segs}
    )
    if problems:
        name, reason = problems[0]
        what = name if name.startswith("segment") else f"tag '{name}'"
        raise ConfigError(f"{what}: invalid Spark SQL: {reason}")


def datasets(
    inputs: Inputs, tags: Sequence[Tag], identity_map: DataFrame, consent: bool
) -> dict[str, DataFrame]:
    """The tag datasets the tags read (and customers, for consent), resolved to ``one_id``."""
    if "items" not in inputs.silver and any(
        t.spec.field in ("category", "brand") for t in tags if t.template in WINDOWED
    ):
        log.warning("[%s] %s not found: category and brand tags have no values", JOB, T.ITEMS.ref)
    needed = {t.spec.dataset for t in tags if t.template in READS_DATA}
    if consent and "customers" in inputs.silver:
        needed.add("customers")
    isolated = isolated_identifiers(inputs.guards) if inputs.guards is not None else None
    silver = dict(inputs.silver)
    for name in sources.silver_tables(tags):
        if name not in silver:  # absent: its tags are skipped, no one has a value
            silver[name] = identity_map.sparkSession.createDataFrame([], silver_schema(name))
    return sources.build(silver, identity_map, needed, isolated)


#: Templates whose values come from gold/customer_value.
READS_CUSTOMER_VALUE = ("model", "kmeans")


def reads_customer_value(tags: Sequence[Tag]) -> bool:
    """Whether any of ``tags`` needs the run date's customer value."""
    return any(t.template in READS_CUSTOMER_VALUE for t in tags)


def usable_customer_value(
    cv: DataFrame | None, tags: Sequence[Tag], run_date: dt.date
) -> DataFrame | None:
    """Customer value for the model and cluster tags, if of this run date; None otherwise."""
    users = [t.name for t in tags if t.template in READS_CUSTOMER_VALUE]
    if not users:
        return None
    if cv is None:
        log.warning(
            "[%s] %s not found (run lifecycle first): %s have no values",
            JOB,
            T.CUSTOMER_VALUE.ref,
            ", ".join(users),
        )
        return None
    dates = [r[0] for r in cv.select(RUN_DATE).distinct().collect()]
    if dates != [run_date]:
        # Point in time: another date's scores would describe another moment (or the future).
        log.warning(
            "[%s] %s is for run date(s) %s, not %s: %s have no values",
            JOB,
            T.CUSTOMER_VALUE.ref,
            sorted(map(str, dates)),
            run_date,
            ", ".join(users),
        )
        return None
    return cv


def tag_values(
    tags: Sequence[Tag],
    data: Mapping[str, DataFrame],
    cv: DataFrame | None,
    run_date: dt.date,
    kmeans: TagsKMeansConfig | None,
) -> tuple[dict[str, DataFrame], dict[str, dict[str, Any]]]:
    """The ``one_id`` frame holding each data-reading tag's column; cluster model info.

    Tags reading the same dataset share one frame (one aggregation), and so do the model
    tags; ``compute.profile`` joins each frame once. Without ``kmeans`` settings no
    cluster is fitted.
    """
    values: dict[str, DataFrame] = {}
    info: dict[str, dict[str, Any]] = {}
    by_dataset: dict[str, list[Tag]] = {}
    for tag in tags:
        if tag.template in READS_DATA:
            by_dataset.setdefault(tag.spec.dataset, []).append(tag)
    for dataset, group in by_dataset.items():
        frame = compute.dataset_values(data[dataset], group, run_date)
        values.update(dict.fromkeys([t.name for t in group], frame))
    models = [t for t in tags if t.template == "model"]
    if models and cv is not None:
        values.update(dict.fromkeys([t.name for t in models], compute.model_values(cv, models)))
    for tag in tags:
        if tag.template != "kmeans" or cv is None or kmeans is None:
            continue
        km = kmeans
        found = compute.kmeans_tag(cv, tag, km.k_min, km.k_max, km.seed, km.max_iter)
        if found is None:
            log.warning(
                "[%s] tag '%s': too few people with every feature to cluster", JOB, tag.name
            )
            continue
        values[tag.name] = found.frame
        info[tag.name] = {"k": found.k, "silhouettes": found.silhouettes, "centers": found.centers}
    return values, info


def build(
    inputs: Inputs,
    settings: TagsConfig,
    tags: TagSet,
    segs: Sequence[Segment],
    *,
    run_date: dt.date,
    run_id: str,
    computed_at: dt.datetime | None = None,
) -> TagsOutputs:
    """Every tag of everyone in the identity map as of ``run_date``, and the segments.

    ``run_id`` marks the changes and statistics rows; ``computed_at`` (default: now, UTC,
    whole seconds) stamps the values.
    """
    computed_at = computed_at or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    people = inputs.identity_map.select(ONE_ID).distinct()
    data = datasets(inputs, tags.tags, inputs.identity_map, consent=bool(segs))
    cv = usable_customer_value(inputs.customer_value, tags.tags, run_date)
    # Each dataset feeds its tags' aggregation, paid orders their lines too, and customers
    # the consent of the segments as well.
    with kept(*data.values()) as frames:
        data = dict(zip(data, frames))
        values, models = tag_values(tags.tags, data, cv, run_date, settings.kmeans)
        wide, counted = materialize(
            compute.profile(people, values, tags.tags), [row_count()], storage_level=KEEP
        )
        members = _segments(wide, segs, data.get("customers"), people, run_date, computed_at)
    population = int(counted["rows"])
    tall, _ = materialize(
        compute.tall(wide, tags.tags, computed_at, run_date), [], storage_level=KEEP
    )
    # Computed now: the job rewrites the previous rows it is compared with.
    diff = cut(history.changes(inputs.previous, tall, run_date, run_id, computed_at))
    # Per tag: a column of the statistics, and the job's result (dropped tags included).
    change_counts = {
        r["tag"]: r["n"] for r in diff.groupBy("tag").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    stats, _ = materialize(
        history.stats(tall, population, tags.tags, change_counts, run_date, run_id, inputs.skipped),
        [],
    )
    return TagsOutputs(
        profiles=wide.withColumn("computed_at", F.lit(computed_at).cast("timestamp")).withColumn(
            RUN_DATE, F.lit(run_date).cast("date")
        ),
        profile_tags=tall,
        changes=diff,
        tag_stats=stats,
        stats_rows=[r.asDict() for r in stats.collect()],
        segments=members,
        people=population,
        change_counts=change_counts,
        models=models,
        skipped=dict(inputs.skipped),
    )


def _segments(
    wide: DataFrame,
    segs: Sequence[Segment],
    customers: DataFrame | None,
    people: DataFrame,
    run_date: dt.date,
    computed_at: dt.datetime,
) -> SegmentOutputs | None:
    """Members of every segment, computed and kept, and their number per segment."""
    if not segs:
        return None
    if customers is None:
        log.warning(
            "[%s] %s not found: nobody has marketing consent, segments are empty",
            JOB,
            T.CUSTOMERS.ref,
        )
    consent = marketing_consent(customers, people)
    table = segments.members(wide, segs, consent, run_date, computed_at)
    # Counted while the members are computed: the export's counts file needs them.
    table, counted = materialize(table, segments.member_counts(segs), storage_level=KEEP)
    counts = {s.name: int(counted.get(s.name) or 0) for s in segs}
    return SegmentOutputs(
        table, segments.export_rows(table), segments.counts_table(wide.sparkSession, counts), counts
    )
