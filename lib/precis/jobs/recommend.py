"""recommend: implicit-feedback ALS top-N per person, tuned and evaluated honestly.

Reads ``silver/events``, ``silver/orders`` + ``silver/order_items``, ``silver/customers``
(marketing consent) and ``gold/identity_map``. Builds weighted, time-decayed
interactions per (``one_id``, ``item_id``), tunes ALS on a time-based split (pairs first
seen in the last ``validation_days`` are held out) against a popularity baseline, trains
the chosen parameters on everything, and writes the top ``top_n`` per person to
``gold/recommendations`` (MERGE by ``one_id``, ``rank``; an unchanged rerun rewrites
nothing). People the model has not seen get the most popular items, marked
``source = popularity``. Items the person bought are left out by default. People
without marketing consent stay in the table, flagged, and never reach the export.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from itertools import product
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import Config
from precis.consent import marketing_consent
from precis.errors import MissingDatasetError
from precis.frames import row_count
from precis.identity.resolve import resolve
from precis.progress import Progress, log
from precis.recommend import evaluation, interactions, model
from precis.runner import job_main
from precis.storage import Lakehouse
from precis.tracking import JobRun, job_run

JOB = "recommend"
STEPS = 5
_KEEP = StorageLevel.MEMORY_AND_DISK
#: Extra candidates asked of the model per person so that dropping bought items still
#: leaves top_n (capped: a person who bought more than this falls back to popularity).
MAX_EXCLUDED = 200
#: Rows of the ratings stored with the model as its input example.
MODEL_EXAMPLE_ROWS = 5


def _inputs(lake: Lakehouse, cfg: Config) -> tuple[DataFrame, DataFrame, DataFrame | None]:
    """(evidence, identity_map, bought pairs or None)."""
    rc = cfg.recommend
    lake.require(T.IDENTITY_MAP, job="identity")
    identity_map = lake.read(T.IDENTITY_MAP)
    parts, bought = [], None
    if lake.exists(T.EVENTS):
        parts.append(
            interactions.event_evidence(
                lake.read(T.EVENTS), identity_map, rc.event_weights, cfg.run_date
            )
        )
    if lake.exists(T.ORDERS) and lake.exists(T.ORDER_ITEMS):
        orders, items = lake.read(T.ORDERS), lake.read(T.ORDER_ITEMS)
        if rc.order_weight > 0:
            parts.append(
                interactions.purchase_evidence(
                    orders, items, identity_map, rc.order_weight, cfg.run_date
                )
            )
        bought = interactions.bought(orders, items, identity_map, cfg.run_date)
    if not parts:
        raise MissingDatasetError(
            f"no interactions under {lake.root}: recommend needs silver/events or silver/orders with silver/order_items"
        )
    evidence = parts[0]
    for part in parts[1:]:
        evidence = evidence.unionByName(part)
    if rc.lookback_days:
        since = dt.datetime.combine(
            cfg.run_date - dt.timedelta(days=rc.lookback_days - 1), dt.time()
        )
        evidence = evidence.filter(F.col("at") >= F.lit(since))
    return evidence, identity_map, bought


def _indexed(pairs: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    return pairs.join(users, "one_id").join(items, "item_id").select("user", "item", "confidence")


def _lists_without_seen(recs: DataFrame, seen: DataFrame, k: int) -> DataFrame:
    kept = recs.join(seen, ["user", "item"], "left_anti")
    return evaluation.top_lists(kept, k)


def _tune(
    cfg: Config, evidence: DataFrame, users: DataFrame, items: DataFrame, tracker: JobRun
) -> tuple[model.AlsParams, dict[str, Any]]:
    """Every grid point on the time split; the best NDCG@k wins (ties: the earlier point)."""
    rc = cfg.recommend
    k = rc.eval_k
    cutoff_date = cfg.run_date - dt.timedelta(days=rc.validation_days - 1)
    cutoff = dt.datetime.combine(cutoff_date, dt.time())
    train_ev, held = model.time_split(evidence, cutoff)
    train = _indexed(
        interactions.confidence(train_ev, cutoff_date - dt.timedelta(days=1), rc.half_life_days),
        users,
        items,
    ).persist(_KEEP)
    seen = train.select("user", "item").distinct().persist(_KEEP)
    train_users = seen.select("user").distinct()
    relevant = (
        held.select("one_id", "item_id")
        .distinct()
        .join(users, "one_id")
        .join(items, "item_id")
        .join(train_users, "user", "left_semi")
        .groupBy("user")
        .agg(F.collect_set("item").alias("items"))
        .persist(_KEEP)
    )
    eval_users = relevant.select("user")
    n_eval = relevant.count()
    if n_eval == 0 or train.limit(1).count() == 0:
        raise model.RecommendError(
            f"nothing to tune on: no pair first seen after {cutoff_date} by a person seen before it "
            f"(recommend.validation_days = {rc.validation_days})"
        )
    most_seen = (
        seen.join(eval_users, "user", "left_semi")
        .groupBy("user")
        .count()
        .agg(F.max("count"))
        .collect()[0][0]
    )
    depth = k + min(int(most_seen or 0), MAX_EXCLUDED)
    catalogue = items.count()

    popular = evaluation.popularity_lists(seen, eval_users, k)
    baseline = evaluation.ranking_metrics(popular, relevant, k)
    baseline[f"coverage_at_{k}"] = evaluation.coverage(popular, catalogue)
    tracker.log_metrics({f"popularity_{m}": v for m, v in baseline.items()})
    tracker.log_child("popularity", {"model": "popularity"}, baseline)
    log.info("[%s]   popularity: %s", JOB, _fmt(baseline))

    trials = []
    for rank, reg, alpha in product(rc.grid.rank, rc.grid.reg_param, rc.grid.alpha):
        params = model.AlsParams(rank, reg, alpha, rc.max_iter, rc.seed, rc.block_size)
        fitted = model.train(train, params)
        lists = _lists_without_seen(model.recommend_all(fitted, eval_users, depth), seen, k)
        metrics = evaluation.ranking_metrics(lists, relevant, k)
        metrics[f"coverage_at_{k}"] = evaluation.coverage(lists, catalogue)
        trials.append((params, metrics))
        tracker.log_child(f"als rank={rank} reg={reg} alpha={alpha}", params.as_dict(), metrics)
        log.info("[%s]   als rank=%d reg=%g alpha=%g: %s", JOB, rank, reg, alpha, _fmt(metrics))
    for frame in (train, seen, relevant):
        frame.unpersist()
    key = f"ndcg_at_{k}"
    best, best_metrics = max(trials, key=lambda t: t[1][key])  # max keeps the first of equals
    summary = {
        "validation_from": cutoff_date.isoformat(),
        "validation_people": n_eval,
        "baseline": baseline,
        "best": {"params": best.as_dict(), "metrics": best_metrics},
        "trials": [{"params": p.as_dict(), "metrics": m} for p, m in trials],
    }
    tracker.log_metrics({f"als_{m}": v for m, v in best_metrics.items()})
    tracker.log_params({f"best_{p}": v for p, v in best.as_dict().items()})
    return best, summary


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def _consent(lake: Lakehouse, identity_map: DataFrame) -> DataFrame:
    """one_id, consent_marketing: true only if the person's customer rows say so and none says no."""
    customers = (
        resolve(lake.read(T.CUSTOMERS), identity_map)
        if lake.exists(T.CUSTOMERS)
        else None
    )
    return marketing_consent(customers, identity_map)


def _top_n(
    cfg: Config,
    final: Any,
    users: DataFrame,
    items: DataFrame,
    people: DataFrame,
    bought: DataFrame | None,
    ratings: DataFrame,
) -> DataFrame:
    """one_id, rank, item_id, score, source for every person."""
    rc = cfg.recommend
    n = rc.top_n
    exclude = bought if (rc.exclude_purchased and bought is not None) else None
    extra = 0
    if exclude is not None:
        most = exclude.groupBy("one_id").count().agg(F.max("count")).collect()[0][0] or 0
        extra = min(int(most), MAX_EXCLUDED)
    recs = (
        model.recommend_all(final, None, n + extra)
        .join(users, "user")
        .join(items, "item")
        .select("one_id", "item_id", "score")
    )
    if exclude is not None:
        recs = recs.join(exclude, ["one_id", "item_id"], "left_anti")
    als = (
        evaluation.top_lists(recs, n, user="one_id", item="item_id")
        .select("one_id", F.posexplode("items").alias("pos", "item_id"))
        .join(recs, ["one_id", "item_id"])
        .select(
            "one_id",
            (F.col("pos") + 1).alias("rank"),
            "item_id",
            "score",
            F.lit("als").alias("source"),
        )
    )
    # Popularity: people with interactions on the item over all people with any.
    total = ratings.select("user").distinct().count()
    popular = (
        evaluation.popularity_scores(ratings)
        .join(items, "item")
        .select("item_id", (F.col("score") / F.lit(float(total))).alias("score"))
    )
    have = als.groupBy("one_id").agg(F.count(F.lit(1)).alias("_have"))
    short = people.join(have, "one_id", "left").fillna(0, ["_have"]).filter(F.col("_have") < n)
    # An ALS list and the bought items can each hide n + extra of the most popular.
    top = popular.orderBy(F.desc("score"), "item_id").limit(2 * n + extra)
    candidates = short.crossJoin(F.broadcast(top)).join(
        als.select("one_id", "item_id"), ["one_id", "item_id"], "left_anti"
    )
    if exclude is not None:
        candidates = candidates.join(exclude, ["one_id", "item_id"], "left_anti")
    fill = (
        evaluation.top_lists(
            candidates.select("one_id", "item_id", "score", "_have"),
            n,
            user="one_id",
            item="item_id",
        )
        .join(short.select("one_id", "_have"), "one_id")
        .select("one_id", "_have", F.posexplode("items").alias("pos", "item_id"))
        .filter(F.col("_have") + F.col("pos") < n)
        .join(popular, "item_id")
        .select(
            "one_id",
            (F.col("_have") + F.col("pos") + 1).alias("rank"),
            "item_id",
            "score",
            F.lit("popularity").alias("source"),
        )
    )
    return als.unionByName(fill)


def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    rc = cfg.recommend
    progress = Progress(JOB, STEPS)
    with job_run(cfg, JOB) as tracker:
        run_id = tracker.key
        with progress.step("interactions") as step:
            evidence, identity_map, bought = _inputs(lake, cfg)
            evidence = evidence.persist(_KEEP)
            pairs = interactions.confidence(evidence, cfg.run_date, rc.half_life_days)
            users = model.dense_index(pairs, "one_id", "user")
            items = model.dense_index(pairs, "item_id", "item")
            ratings = _indexed(pairs, users, items).persist(_KEEP)
            step.rows = ratings.count()
            n_users, n_items = users.count(), items.count()
            step.detail = f"{n_users:,} people x {n_items:,} items"
        with progress.step("tune on the time split") as step:
            best, tuning = _tune(cfg, evidence, users, items, tracker)
            step.detail = (
                f"best {best.as_dict()}: NDCG@{rc.eval_k} {tuning['best']['metrics'][f'ndcg_at_{rc.eval_k}']:.4f} "
                f"vs popularity {tuning['baseline'][f'ndcg_at_{rc.eval_k}']:.4f} "
                f"over {tuning['validation_people']:,} people"
            )
        with progress.step("train on everything") as step:
            final = model.train(ratings, best)
            version = _log_model(cfg, final, ratings, tracker)
            step.detail = f"model version {version}"
        with progress.step("top-N for everyone") as step:
            people = identity_map.select("one_id").distinct()
            lists = _top_n(cfg, final, users, items, people, bought, ratings)
            consent = _consent(lake, identity_map)
            table = (
                lists.join(consent, "one_id", "left")
                .fillna(False, ["consent_marketing"])
                .select(
                    "one_id",
                    F.col("rank").cast("int").alias("rank"),
                    "item_id",
                    F.round("score", 6).alias("score"),
                    "source",
                    "consent_marketing",
                    F.lit(version).alias("model_version"),
                    F.lit(run_id).alias("run_id"),
                    F.lit(cfg.run_date).alias("run_date"),
                    F.current_timestamp().alias("generated_at"),
                )
                .filter(~F.isnan("score"))
                .persist(_KEEP)
            )
            sources = {
                r["source"]: r["n"]
                for r in table.groupBy("source").agg(F.count(F.lit(1)).alias("n")).collect()
            }
            step.rows = sum(sources.values())
            step.detail = ", ".join(f"{k} {v:,}" for k, v in sorted(sources.items()))
        with progress.step("write gold and export") as step:
            # Lineage columns do not count as a change: an unchanged rerun rewrites nothing.
            counts = lake.merge_upsert(
                table,
                T.RECOMMENDATIONS,
                unique=True,
                delete_missing=True,
            )
            exported = _export(lake, cfg, table) if rc.export else 0
            step.detail = (
                f"{counts['inserted']:,} inserted, {counts['updated']:,} updated, {counts['deleted']:,} deleted; "
                f"{exported:,} rows exported"
            )
        table.unpersist()
        ratings.unpersist()
        evidence.unpersist()
        result = {
            "people": n_users,
            "items": n_items,
            "interactions": step.rows,
            "tuning": tuning,
            "sources": sources,
            "written": counts,
            "exported": exported,
            "model_version": version,
        }
        tracker.log_metrics(
            {"exported_rows": exported, **{f"rows_{k}": v for k, v in sources.items()}}
        )
        tracker.log_dict(result, "recommend.json")
    k = rc.eval_k
    print(
        f"recommend: NDCG@{k} als={tuning['best']['metrics'][f'ndcg_at_{k}']:.4f} "
        f"popularity={tuning['baseline'][f'ndcg_at_{k}']:.4f}  params={best.as_dict()}"
    )
    progress.finish(f"{sum(sources.values()):,} rows")
    return result


def _log_model(cfg: Config, final: Any, ratings: DataFrame, tracker: JobRun) -> str:
    """Log (and register) the model; the version string written with every row.

    The input example is (user, item) index pairs from the ratings: dense indices, never
    the people's or items' ids.
    """
    rc = cfg.recommend
    version = None
    if rc.log_model:
        example = ratings.select("user", "item").limit(MODEL_EXAMPLE_ROWS)
        version = tracker.log_spark_model(final, "als_model", example, rc.registered_model_name)
    return version or f"{cfg.run_date.isoformat()}-{cfg.config_hash()[:8]}"


def _export(lake: Lakehouse, cfg: Config, table: DataFrame) -> int:
    """Consented people's lists to <root>/exports/recommendations/run_date=<date> (replaced)."""
    consented = table.filter(F.col("consent_marketing")).select(
        "one_id", "rank", "item_id", "score", "source", "model_version"
    )
    # Counted while written, not by a second pass over the export.
    observation = Observation()
    lake.export(
        consented.observe(observation, row_count()).orderBy("one_id", "rank"),
        T.RECOMMENDATIONS.name,
        cfg.run_date,
        cfg.recommend.export_format,
    )
    return int(observation.get["rows"])


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
