"""The identity graph in one call: silver identifiers and the last run's tables in, this
run's tables and statistics out.

``build`` reads and writes nothing: the ``identity`` job reads the inputs, writes the
outputs and reports. Its Spark actions are the algorithm's own: frames reused by
several steps are computed once and kept, iterative steps checkpoint, and the
statistics are observed while the outputs are computed.

Only the components that new or changed records touch are reclustered when the last
run's state allows it (:mod:`precis.identity.incremental`); the result is the same as
reclustering everything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ONE_ID, RUN_DATE, RUN_ID
from precis.errors import PrecisError
from precis.frames import KEEP, cut, materialize, row_count
from precis.identity import graph, guards, incremental, links, quality, records, rules, stable
from precis.identity.incremental import Plan, PreviousRun
from precis.identity.report import Stats
from precis.identity.settings import IdentityConfig
from precis.ingest.conform import IdentifierSettings
from precis.progress import Step, silent_step

Steps = Callable[[str], AbstractContextManager[Step]]


class IdentityError(PrecisError):
    """The identity graph cannot be built from this input."""


@dataclass(frozen=True)
class IdentityInputs:
    # Identified silver datasets by name (records.SOURCES), at least one; links come
    # from id_observations only, so without it each identifier is a person of its own.
    silver: Mapping[str, DataFrame]
    previous: PreviousRun = field(default_factory=PreviousRun)
    rules: DataFrame | None = None  # the operators' rules table as read, if any
    rules_source: str = "identity rules"  # where they were read from, for messages


@dataclass(frozen=True)
class IdentityOutputs:
    identity_map: DataFrame  # id_type, id_key, one_id, first_seen, last_seen
    record_identity: DataFrame  # dataset, source, record_id, one_id
    changes: DataFrame  # run_id, run_date, changed_at, change, one_id, related_one_id, identifiers
    guards: DataFrame  # run_date, run_id, guard, id_type, id_key, other_*, detail, records
    # node, component, blocked, isolated, fingerprint: incremental.with_map_version adds
    # the version of identity_map once it is written.
    state: DataFrame
    record_state: DataFrame  # dataset, source, record_id, nodes
    stats: Stats  # everything but the write counts


def build(
    inputs: IdentityInputs,
    settings: IdentityConfig,
    *,
    run_date: dt.date,
    run_id: str,
    changed_at: dt.datetime,
    hashing: IdentifierSettings | None = None,
    checkpoint_dir: str | None = None,
    steps: Steps | None = None,
    on_iteration: Callable[[int, int], None] | None = None,
) -> IdentityOutputs:
    """This run's identity tables.

    hashing: ingest's identifier normalization and key, to hash the operators' rules
    (needed only with rules). checkpoint_dir: the session's reliable checkpoint
    directory, if any. steps: ``Progress.step`` to report each step (six of them);
    on_iteration: called after each connected-components round (round, links left).
    """
    step = steps or silent_step
    if not inputs.silver:
        raise ValueError(f"identity needs one of the silver datasets {', '.join(records.SOURCES)}")
    spark = next(iter(inputs.silver.values())).sparkSession
    operator_rules = rules.load(spark, inputs.rules, inputs.rules_source, hashing)

    with step("identifiers and links") as info:
        recs, ids, linked, oversized, counts = _identifiers(inputs.silver, settings)
        info.rows, info.detail = counts["identifiers"], f"{counts['links']:,} links"

    with step("guards") as info:
        over, _ = materialize(links.over_linked(linked, settings), [], storage_level=KEEP)
        over_blocked, observed = materialize(
            links.over_linked_blocks(over), [row_count()], storage_level=KEEP
        )
        blocked = over_blocked.unionByName(operator_rules.blocked)
        info.rows = int(observed["rows"])
        info.detail = (
            f"{info.rows:,} over-linked identifiers, {operator_rules.count} operator rule(s)"
        )

    with step("affected components") as info:
        fingerprint = incremental.fingerprint(settings, rules.rule_nodes(operator_rules))
        plan = incremental.plan(
            inputs.previous,
            enabled=settings.incremental,
            fingerprint=fingerprint,
            records=recs,
            links=linked,
            blocked=blocked.select("node"),
        )
        part = _Part(ids, linked, blocked, operator_rules.force, counts["identifiers"])
        if plan.nodes is not None:
            part = part.within(plan.nodes)
        info.rows = part.size
        info.detail = (
            f"{plan.reason}: {part.size:,} of {counts['identifiers']:,} identifiers to recluster"
        )

    with step("clusters") as info:
        if part.size:
            clusters, components, audit, info.rows = _cluster(
                part, operator_rules.never, settings, checkpoint_dir, on_iteration
            )
        else:
            # Nothing to recluster (a rerun where no change reached the graph): no
            # clusters, rather than a round of Spark jobs over an empty graph.
            clusters, components, audit = (spark.createDataFrame([], s) for s in _CLUSTERED)
            info.rows = 0

    with step("stable one_ids") as info:
        mapping, changes, state = _name(inputs.previous, plan, clusters, components, run_date)
        changes, observed = materialize(
            changes, [F.count_if(F.col("change") == c).alias(c) for c in stable.CHANGES]
        )
        changed = {c: int(observed[c]) for c in stable.CHANGES if observed[c]}
        info.detail = ", ".join(f"{k} {v:,}" for k, v in sorted(changed.items())) or "no changes"

    with step("outputs") as info:
        identity_map = mapping.join(ids, "node", how="inner").select(
            ID_TYPE, ID_KEY, ONE_ID, "first_seen", "last_seen"
        )
        sizes = quality.one_id_sizes(identity_map)
        record_identity, resolved = materialize(
            records.record_one_ids(recs, mapping, settings, nobody=blocked.select("node")),
            [row_count()],
        )
        guard_rows = guards.guard_rows(
            audit, oversized, ids, inputs.silver, run_date=run_date, run_id=run_id
        )
        if plan.nodes is not None:
            carried = guards.carried_guards(
                inputs.previous.guards, plan.nodes, run_date=run_date, run_id=run_id
            )
            guard_rows = guard_rows.unionByName(carried)
        guard_rows, guarded = materialize(guard_rows, guards.guard_metrics())
        info.rows = int(sizes["one_ids"])

    stats = Stats(
        identifiers=counts["identifiers"],
        records=int(resolved["rows"]),
        links=counts["links"],
        one_ids=int(sizes["one_ids"]),
        largest_one_id=int(sizes["largest_one_id"] or 0),
        reclustered=part.size,
        mode="full" if plan.nodes is None else "incremental",
        changes=changed,
        guards=guards.guard_counts(guarded),
        sizes=quality.size_histogram(sizes),
    )
    return IdentityOutputs(
        identity_map=identity_map,
        record_identity=record_identity,
        changes=changes.select(
            F.lit(run_id).alias(RUN_ID),
            F.lit(run_date).alias(RUN_DATE),
            F.lit(changed_at).alias("changed_at"),
            "*",
        ),
        guards=guard_rows,
        state=state.select(
            "node", "component", "blocked", "isolated", F.lit(fingerprint).alias("fingerprint")
        ),
        record_state=incremental.record_nodes(recs),
        stats=stats,
    )


def _identifiers(
    silver: Mapping[str, DataFrame], settings: IdentityConfig
) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame, dict[str, int]]:
    """(records, identifiers, links, oversized records, counts), the first three kept."""
    # Computed once each and cut from the silver reads: every later step starts
    # from them, and a Spark Connect client sends each query's whole plan.
    recs, _ = materialize(records.identified_records(silver), [], storage_level=KEEP)
    ids, observed = materialize(records.nodes(recs), [row_count()], storage_level=KEEP)
    clashes = records.check_node_ids(ids)
    if clashes:
        raise IdentityError(
            f"64-bit node id collision for {clashes}; rename an identifier type to re-seed"
        )
    found, oversized = links.record_links(recs, settings.max_ids_per_record)
    linked, counted = materialize(found, [row_count()], storage_level=KEEP)
    counts = {"identifiers": int(observed["rows"]), "links": int(counted["rows"])}
    return recs, ids, linked, oversized, counts


@dataclass(frozen=True)
class _Part:
    """The part of the graph a run reclusters: identifiers, links, blocked identifiers,
    forced links, and how many identifiers."""

    ids: DataFrame
    links: DataFrame
    blocked: DataFrame
    force: DataFrame
    size: int

    def within(self, nodes: DataFrame) -> _Part:
        ids, observed = materialize(
            self.ids.join(nodes, "node", how="left_semi"), [row_count()], storage_level=KEEP
        )
        return _Part(
            ids,
            incremental.within(self.links, nodes, "src", "dst"),
            self.blocked.join(nodes, "node", how="left_semi"),
            incremental.within(self.force, nodes, "src", "dst"),
            int(observed["rows"]),
        )


#: Schemas of what ``_cluster`` returns: clusters, raw components, audit.
_CLUSTERED = (
    "node bigint, cluster bigint, isolated boolean, first_seen timestamp",
    "node bigint, component bigint, blocked boolean, isolated boolean",
    "guard string, node bigint, other bigint, detail string, records bigint",
)


def _cluster(
    part: _Part,
    never: DataFrame,
    settings: IdentityConfig,
    checkpoint_dir: str | None,
    on_iteration: Callable[[int, int], None] | None,
) -> tuple[DataFrame, DataFrame, DataFrame, int]:
    """(clusters: node, cluster, isolated, first_seen; raw components: node, component,
    blocked, isolated; audit; number of clusters), the frames computed and kept."""
    resolved, audit = graph.resolve(
        part.ids,
        part.links,
        settings,
        blocked=part.blocked,
        never=never,
        force=part.force,
        on_iteration=on_iteration,
        checkpoint_dir=checkpoint_dir,
    )
    # Every cluster is named after its smallest identifier, which it holds.
    clusters, observed = materialize(
        resolved.join(part.ids.select("node", "first_seen"), "node", how="inner"),
        [F.count_if(F.col("node") == F.col("cluster")).alias("clusters")],
    )
    components = incremental.raw_components(
        part.ids, part.links, part.blocked, part.force, settings, checkpoint_dir=checkpoint_dir
    )
    components, _ = materialize(
        components.join(clusters.select("node", "isolated"), "node", how="inner"), []
    )
    return clusters, components, audit, int(observed["clusters"])


def _name(
    previous: PreviousRun,
    plan: Plan,
    clusters: DataFrame,
    components: DataFrame,
    run_date: dt.date,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(mapping: node, one_id, isolated; changes; state). The mapping and the state are
    computed and kept here: the tables they come from are rewritten at the end of the run."""
    old, created, issued = stable.history(previous.identity_map, previous.changes, run_date)
    isolated = clusters.select("node", "isolated")
    if plan.nodes is None:
        mapping, changes = stable.assign(clusters, old, created, issued, run_date)
        mapping = mapping.join(isolated, "node", how="inner")
        state = components
    else:
        # An incremental plan exists only when the previous run's map and state do.
        assert old is not None and plan.state is not None
        # A previous one_id lies wholly inside or wholly outside the reclustered part.
        inside = old.join(plan.nodes, "node", how="left_semi")
        mapping, changes = stable.assign(clusters, inside, created, issued, run_date)
        untouched = plan.state.join(plan.nodes, "node", how="left_anti")
        mapping = (
            mapping.join(isolated, "node", how="inner")
            .select("node", ONE_ID, "isolated")
            .unionByName(
                old.join(untouched.select("node", "isolated"), "node", how="inner").select(
                    "node", ONE_ID, "isolated"
                )
            )
        )
        state = components.unionByName(untouched.select(*components.columns))
    return (
        cut(mapping),
        changes,
        cut(state),
    )
