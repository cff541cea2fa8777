"""identity: silver identifiers -> one stable ``one_id`` per person.

Reads the identified silver datasets, links identifiers seen together, applies the
guards (placeholders, operators' rules, over-linked identifiers, per-person limits,
weak identifiers that never bridge people), clusters with connected components and
names the clusters after the previous run's ids (see ``precis.identity``). Writes
``gold/identity_map``, ``gold/record_identity`` (MERGE: only changed rows are
rewritten), appends ``gold/identity_changes``, and replaces this run date's rows of
``gold/identity_guards``; ``meta/identity_runs`` keeps per-run statistics.

A run reclusters only the components that new or changed records touch and copies
every other identifier's ``one_id`` (``precis.identity.incremental``); the clusters are
the same as reclustering all of silver, so a run's result does not depend on the runs
before it, only the names do. ``meta/identity_state`` and ``meta/identity_records`` keep
what the next run needs to tell which components changed.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from precis import session
from precis import tables as T
from precis.config import Config
from precis.errors import MissingDatasetError, PrecisError
from precis.frames import materialize, row_count
from precis.identity import graph, incremental, quality, records, rules, stable
from precis.ingest.conform import IdentifierSettings
from precis.progress import Progress, log
from precis.runner import job_main
from precis.storage import Lakehouse
from precis.tracking import job_run

JOB = "identity"
STEPS = 7
_KEEP = StorageLevel.MEMORY_AND_DISK


class IdentityError(PrecisError):
    """The identity graph cannot be built from this input."""


@dataclass
class Stats:
    identifiers: int = 0
    records: int = 0
    links: int = 0
    one_ids: int = 0
    largest_one_id: int = 0
    map_inserted: int = 0
    map_updated: int = 0
    map_deleted: int = 0
    records_changed: int = 0
    reclustered: int = 0
    mode: str = "full"
    changes: dict[str, int] = field(default_factory=dict)
    guards: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def _silver(lake: Lakehouse) -> dict[str, DataFrame]:
    tables = {
        name: lake.read(T.SILVER[name]) for name in records.SOURCES if lake.exists(T.SILVER[name])
    }
    if "id_observations" not in tables:
        raise MissingDatasetError(
            f"silver/id_observations not found under {lake.root}: land id_observations and run ingest first"
        )
    return tables


def _rules(spark: SparkSession, cfg: Config, lake: Lakehouse) -> rules.Rules:
    path, fmt = cfg.identity.rules.path, cfg.identity.rules.format
    if path is None:
        if not lake.exists(T.IDENTITY_RULES):
            return rules.empty(spark)
        path, fmt = lake.path(T.IDENTITY_RULES), "delta"
    rows = rules.read_rules(spark, path, fmt)
    rules.validate(rows, set(cfg.ingest.id_rules), path)
    if not rows:
        return rules.empty(spark)
    return rules.hashed(spark, rows, IdentifierSettings.from_config(cfg), path)


@dataclass
class Plan:
    """Which identifiers this run reclusters: ``nodes`` (None: all of them), and why."""

    nodes: DataFrame | None
    reason: str
    state: DataFrame | None = None


def _plan(
    lake: Lakehouse,
    cfg: Config,
    recs: DataFrame,
    links: DataFrame,
    blocked: DataFrame,
    fingerprint: str,
) -> Plan:
    if not cfg.identity.incremental:
        return Plan(None, "identity.incremental is false")
    if not all(lake.exists(t) for t in (T.IDENTITY_STATE, T.IDENTITY_RECORDS, T.IDENTITY_MAP)):
        return Plan(None, "first run: no state from a previous run")
    # Pinned: the state tables are rewritten at the end of this run.
    state = lake.read(T.IDENTITY_STATE).localCheckpoint(eager=True)
    head = state.select("fingerprint", "map_version").first()
    if head is None:
        return Plan(None, "the previous run left no state")
    if head["fingerprint"] != fingerprint:
        return Plan(None, "identity settings or operators' rules changed")
    if head["map_version"] != lake.version(T.IDENTITY_MAP):
        return Plan(None, "gold/identity_map was written since the state was saved")
    changed = incremental.changed_nodes(
        incremental.record_nodes(recs), lake.read(T.IDENTITY_RECORDS)
    )
    nodes = incremental.affected_nodes(state, changed, blocked, links).localCheckpoint(eager=True)
    return Plan(nodes, "incremental", state)


def _rule_nodes(operator_rules: rules.Rules) -> list[tuple]:
    """The operators' rules as node ids, for the state fingerprint (a handful of rows)."""
    return (
        [("block", r["node"]) for r in operator_rules.blocked.select("node").collect()]
        + [("never", r["src"], r["dst"]) for r in operator_rules.never.collect()]
        + [("force", r["src"], r["dst"]) for r in operator_rules.force.collect()]
    )


def record_one_ids(recs: DataFrame, mapping: DataFrame, cfg: Config) -> DataFrame:
    """dataset, source, record_id, one_id: a record with several identifiers takes the
    one_id of its highest-priority identifier that is not isolated by a guard."""
    order = Window.partitionBy(*records.RECORD_KEYS).orderBy(
        F.col("isolated").asc(), F.col("priority").asc(), F.col("node").asc()
    )
    return (
        recs.select(*records.RECORD_KEYS, "node", "id_type")
        .join(mapping.select("node", "one_id", "isolated"), "node")
        .withColumn("priority", graph.priority(cfg.identity))
        .withColumn("rank", F.row_number().over(order))
        .filter(F.col("rank") == 1)
        .select(*records.RECORD_KEYS, "one_id")
    )


def run(spark: SparkSession, cfg: Config) -> Stats:
    lake = Lakehouse.from_config(spark, cfg)
    checkpoints = session.checkpoint_dir(spark)
    silver = _silver(lake)
    operator_rules = _rules(spark, cfg, lake)
    progress = Progress(JOB, STEPS)
    stats = Stats()
    changed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    with job_run(cfg, JOB) as tracker:
        run_id = tracker.key
        with progress.step("identifiers and links") as step:
            # Computed once each and cut from the silver reads: every later step starts
            # from them, and a Spark Connect client sends each query's whole plan.
            recs, _ = materialize(records.identified_records(silver), [], storage_level=_KEEP)
            ids, counted = materialize(records.nodes(recs), [row_count()], storage_level=_KEEP)
            stats.identifiers = int(counted["rows"])
            clashes = records.check_node_ids(ids)
            if clashes:
                raise IdentityError(
                    f"64-bit node id collision for {clashes}; rename an identifier type to re-seed"
                )
            links, oversized = graph.record_links(recs, cfg.identity.max_ids_per_record)
            links, counted = materialize(links, [row_count()], storage_level=_KEEP)
            stats.links = int(counted["rows"])
            step.rows = stats.identifiers
            step.detail = f"{stats.links:,} links"

        with progress.step("guards") as step:
            over, _ = materialize(graph.over_linked(links, cfg.identity), [], storage_level=_KEEP)
            blocked = (
                over.groupBy("node")
                .agg(
                    F.concat_ws(
                        "; ",
                        F.collect_list(
                            F.format_string("linked to %d %s values", "linked", "other_type")
                        ),
                    ).alias("detail"),
                    F.sum("records").alias("records"),
                )
                .select("node", F.lit("over_linked").alias("guard"), "detail", "records")
            )
            blocked = blocked.unionByName(operator_rules.blocked)
            step.rows = over.select("node").distinct().count()
            step.detail = (
                f"{step.rows:,} over-linked identifiers, {operator_rules.count} operator rule(s)"
            )

        with progress.step("affected components") as step:
            fingerprint = incremental.fingerprint(cfg.identity, _rule_nodes(operator_rules))
            plan = _plan(lake, cfg, recs, links, blocked.select("node"), fingerprint)
            force = operator_rules.force
            if plan.nodes is None:
                part_ids, part_links, part_blocked = ids, links, blocked
                stats.reclustered = stats.identifiers
            else:
                stats.mode = "incremental"
                part_ids = ids.join(plan.nodes, "node", "left_semi")
                part_links = incremental.within(links, plan.nodes, "src", "dst")
                part_blocked = blocked.join(plan.nodes, "node", "left_semi")
                force = incremental.within(force, plan.nodes, "src", "dst")
                stats.reclustered = part_ids.count()
            step.rows = stats.reclustered
            step.detail = f"{plan.reason}: {stats.reclustered:,} of {stats.identifiers:,} identifiers to recluster"

        with progress.step("clusters") as step:

            def report(iteration: int, remaining: int) -> None:
                log.info(
                    "[%s]   components iteration %d: %s links left",
                    JOB,
                    iteration,
                    f"{remaining:,}",
                )

            clusters, audit = graph.resolve(
                part_ids,
                part_links,
                cfg.identity,
                blocked=part_blocked,
                never=operator_rules.never,
                force=force,
                on_iteration=report,
                checkpoint_dir=checkpoints,
            )
            clusters = clusters.join(part_ids.select("node", "first_seen"), "node").localCheckpoint(
                eager=True
            )
            components = incremental.raw_components(
                part_ids, part_links, part_blocked, force, cfg.identity, checkpoint_dir=checkpoints
            )
            components = components.join(
                clusters.select("node", "isolated"), "node"
            ).localCheckpoint(eager=True)
            step.rows = clusters.select("cluster").distinct().count()

        with progress.step("stable one_ids") as step:
            previous, created, issued = _history(lake)
            if plan.nodes is None:
                mapping, changes = stable.assign(clusters, previous, created, issued, cfg.run_date)
                mapping = mapping.join(clusters.select("node", "isolated"), "node")
                state = components
            else:
                # An incremental plan exists only when the previous run's map and state do.
                assert previous is not None and plan.state is not None
                # A previous one_id lies wholly inside or wholly outside the reclustered part.
                inside = previous.join(plan.nodes, "node", "left_semi")
                mapping, changes = stable.assign(clusters, inside, created, issued, cfg.run_date)
                untouched = plan.state.join(plan.nodes, "node", "left_anti")
                mapping = mapping.join(clusters.select("node", "isolated"), "node").select(
                    "node", "one_id", "isolated"
                )
                mapping = mapping.unionByName(
                    previous.join(untouched.select("node", "isolated"), "node").select(
                        "node", "one_id", "isolated"
                    )
                )
                state = components.unionByName(untouched.select(*components.columns))
            mapping = mapping.localCheckpoint(eager=True)
            state = state.localCheckpoint(eager=True)
            changes = changes.localCheckpoint(eager=True)
            stats.changes = {
                r["change"]: r["count"] for r in changes.groupBy("change").count().collect()
            }
            step.detail = (
                ", ".join(f"{k} {v:,}" for k, v in sorted(stats.changes.items())) or "no changes"
            )

        with progress.step("write gold") as step:
            identity_map = mapping.join(ids, "node").select(
                "id_type", "id_key", "one_id", "first_seen", "last_seen"
            )
            counts = lake.merge_upsert(
                identity_map,
                T.IDENTITY_MAP,
                unique=True,
                delete_missing=True,
            )
            stats.map_inserted, stats.map_updated, stats.map_deleted = (
                counts["inserted"],
                counts["updated"],
                counts["deleted"],
            )
            per_record = record_one_ids(recs, mapping, cfg)
            counts = lake.merge_upsert(
                per_record,
                T.RECORD_IDENTITY,
                unique=True,
                delete_missing=True,
            )
            stats.records_changed = sum(counts.values())
            lake.append_log(
                changes.select(
                    F.lit(run_id).alias("run_id"),
                    F.lit(cfg.run_date).alias("run_date"),
                    F.lit(changed_at).alias("changed_at"),
                    "*",
                ),
                T.IDENTITY_CHANGES,
            )
            guard_rows = _guard_rows(audit, oversized, ids, silver, cfg, run_id)
            if plan.nodes is not None:
                guard_rows = guard_rows.unionByName(_carried_guards(lake, plan.nodes, cfg, run_id))
            lake.replace_where(
                guard_rows, T.IDENTITY_GUARDS, f"run_date = '{cfg.run_date.isoformat()}'"
            )
            map_version = lake.version(T.IDENTITY_MAP)
            lake.merge_upsert(
                state.select(
                    "node",
                    "component",
                    "blocked",
                    "isolated",
                    F.lit(fingerprint).alias("fingerprint"),
                    F.lit(map_version).alias("map_version"),
                ),
                T.IDENTITY_STATE,
                unique=True,
                delete_missing=True,
            )
            lake.merge_upsert(
                incremental.record_nodes(recs),
                T.IDENTITY_RECORDS,
                unique=True,
                delete_missing=True,
            )
            # Placeholders are counted in rows; every other guard in identifiers or links.
            stats.guards = {
                r["guard"]: int(r["rows"] if r["guard"] == "placeholder" else r["n"])
                for r in guard_rows.groupBy("guard")
                .agg(F.count(F.lit(1)).alias("n"), F.sum("records").alias("rows"))
                .collect()
            }
            step.detail = (
                f"map +{stats.map_inserted:,} ~{stats.map_updated:,} -{stats.map_deleted:,}, "
                f"records changed {stats.records_changed:,}"
            )

        with progress.step("statistics") as step:
            final = lake.read(T.IDENTITY_MAP)
            sizes = final.groupBy("one_id").count()
            stats.one_ids, stats.largest_one_id = sizes.agg(
                F.count(F.lit(1)), F.max("count")
            ).collect()[0]
            stats.largest_one_id = int(stats.largest_one_id or 0)
            stats.records = lake.read(T.RECORD_IDENTITY).count()
            stats.sizes = quality.size_histogram(final)
            step.rows = stats.one_ids
        _record(spark, lake, cfg, tracker, run_id, changed_at, stats)
    for frame in (recs, ids, links, over):
        frame.unpersist()
    print(render(stats))
    progress.finish(f"{stats.one_ids:,} one_ids")
    return stats


def _history(lake: Lakehouse) -> tuple[DataFrame | None, DataFrame | None, DataFrame | None]:
    """The previous map (node -> one_id), when each id was issued, and every id issued."""
    if not lake.exists(T.IDENTITY_MAP):
        return None, None, None
    previous = lake.read(T.IDENTITY_MAP).select(records.node_id().alias("node"), "one_id")
    if not lake.exists(T.IDENTITY_CHANGES):
        return previous, None, previous.select("one_id").distinct()
    log_ = lake.read(T.IDENTITY_CHANGES)
    born = log_.filter(F.col("change").isin("created", "split"))
    created = born.groupBy("one_id").agg(F.min("changed_at").alias("created_at"))
    issued = born.select("one_id").union(previous.select("one_id")).distinct()
    return previous, created, issued


def _carried_guards(lake: Lakehouse, reclustered: DataFrame, cfg: Config, run_id: str) -> DataFrame:
    """The last run's guard rows of identifiers this run did not recluster: their guards'
    decisions stand, so this run date's audit stays complete."""
    spark = lake.spark
    columns = ["guard", "id_type", "id_key", "other_type", "other_key", "detail", "records"]
    if not lake.exists(T.IDENTITY_GUARDS):
        return spark.createDataFrame([], f"run_date date, run_id string, {graph.AUDIT_SCHEMA}")
    table = lake.read(T.IDENTITY_GUARDS)
    latest = table.agg(F.max("run_date")).collect()[0][0]
    # Placeholders and oversized records are counted afresh on every run.
    carried = (
        table.filter(
            (F.col("run_date") == F.lit(latest))
            & ~F.col("guard").isin("placeholder", "record_too_large")
        )
        .withColumn("node", records.node_id())
        .join(reclustered, "node", "left_anti")
        .select(F.lit(cfg.run_date).alias("run_date"), F.lit(run_id).alias("run_id"), *columns)
    )
    # Pinned: this run date's rows of the same table are replaced next.
    return carried.localCheckpoint(eager=True)


def _guard_rows(
    audit: DataFrame,
    oversized: DataFrame,
    ids: DataFrame,
    silver: dict[str, DataFrame],
    cfg: Config,
    run_id: str,
) -> DataFrame:
    keyed = ids.select("node", "id_type", "id_key")
    described = (
        audit.join(keyed, "node", "left")
        .join(
            keyed.withColumnsRenamed(
                {"node": "other", "id_type": "other_type", "id_key": "other_key"}
            ),
            "other",
            "left",
        )
        .select("guard", "id_type", "id_key", "other_type", "other_key", "detail", "records")
    )
    big = oversized.select(
        F.lit("record_too_large").alias("guard"),
        F.lit(None).cast("string").alias("id_type"),
        F.lit(None).cast("string").alias("id_key"),
        F.lit(None).cast("string").alias("other_type"),
        F.lit(None).cast("string").alias("other_key"),
        F.format_string("%s record %s carries %d identifiers", "source", "record_id", "ids").alias(
            "detail"
        ),
        F.lit(1).cast("long").alias("records"),
    )
    placeholders = records.blocked_counts(silver).select(
        F.lit("placeholder").alias("guard"),
        "id_type",
        F.lit(None).cast("string").alias("id_key"),
        F.lit(None).cast("string").alias("other_type"),
        F.lit(None).cast("string").alias("other_key"),
        F.format_string("%s rows with a placeholder value (blocked at ingest)", "dataset").alias(
            "detail"
        ),
        F.col("count").alias("records"),
    )
    return (
        described.unionByName(big)
        .unionByName(placeholders)
        .select(F.lit(cfg.run_date).alias("run_date"), F.lit(run_id).alias("run_id"), "*")
    )


def _record(spark, lake, cfg, tracker, run_id, changed_at, stats: Stats) -> None:
    # meta/identity_runs keeps its columns; how much was reclustered goes to MLflow.
    row = {k: v for k, v in asdict(stats).items() if isinstance(v, int) and k != "reclustered"}
    df = spark.createDataFrame(
        [(run_id, cfg.run_date, changed_at, *row.values())],
        "run_id string, run_date date, finished_at timestamp, "
        + ", ".join(f"{k} long" for k in row),
    )
    lake.append_log(df, T.IDENTITY_RUNS)
    metrics = dict(row, reclustered=stats.reclustered)
    metrics.update({f"changes.{k}": v for k, v in stats.changes.items()})
    metrics.update({f"guards.{k}": v for k, v in stats.guards.items()})
    metrics.update({f"one_ids_with_{k}_ids": v for k, v in stats.sizes.items() if k[0].isdigit()})
    tracker.log_metrics(metrics)
    tracker.log_dict(asdict(stats), "identity_stats.json")


def render(stats: Stats) -> str:
    lines = [
        (
            f"identifiers {stats.identifiers:,}  links {stats.links:,}  one_ids {stats.one_ids:,}  "
            f"largest one_id {stats.largest_one_id:,} identifiers  records resolved {stats.records:,}"
        ),
        f"{stats.mode} run: {stats.reclustered:,} identifiers reclustered",
        "changes: " + (", ".join(f"{k} {v:,}" for k, v in sorted(stats.changes.items())) or "none"),
        "guards:  " + (", ".join(f"{k} {v:,}" for k, v in sorted(stats.guards.items())) or "none"),
        "identifiers per one_id: " + ", ".join(f"{k}: {v:,}" for k, v in stats.sizes.items()),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
