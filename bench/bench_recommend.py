"""Benchmark: implicit-feedback ALS top-10 (Spark ML) against popularity and the ``implicit`` library.

    .venv/bin/python bench/bench_recommend.py --dataset movielens100k --repeats 3
    .venv/bin/python bench/bench_recommend.py --interactions 1000000 --repeats 3
    .venv/bin/python bench/bench_recommend.py --interactions 10000000 --repeats 1

Two modes; both score top-10 lists that leave out the user's training items with
``precis.recommend.evaluation`` (precision, recall, NDCG and MAP at k from Spark ML's
``RankingEvaluator``, catalogue coverage), for three methods:

- ``popularity``: ``evaluation.popularity_lists`` on the training pairs;
- ``spark_als``: ``precis.recommend.model.train`` (Spark ML ALS, ``implicitPrefs``,
  confidence 1 + alpha * r), lists from ``model.recommend_all`` for the evaluated users
  at depth k + (training items of the user, rounded up to a power of two), training
  items dropped, then ``evaluation.top_lists``;
- ``implicit``: ``implicit.als.AlternatingLeastSquares`` (pip ``implicit==0.7.3``, a
  benchmark-only tool, not a project dependency) on CPU, fed the same confidence
  1 + alpha * r as its matrix (its own ``alpha`` left at 1), ``recommend`` with
  ``filter_already_liked_items``; the lists are written to parquet and read back as a
  Spark frame for the same evaluation. Note its ``regularization`` is a plain lambda,
  while Spark's ``regParam`` is scaled by the user's (item's) number of ratings.

``--dataset movielens100k``: MovieLens-100k ratings (943 users, 1,682 items, 100,000
ratings) read out of the ``recbole==1.2.1`` wheel (``recbole/dataset_example/ml-100k/
ml-100k.inter``), fetched with ``pip download --no-deps`` into ``--cache``; nothing of
recbole is imported. Every rating is a positive (r = 1, or with ``--confidence rating``
r = its 1-5 stars, so the confidence is 1 + alpha * stars); each user's ratings are split
75/25 at random (seeded) into train and test, and the train part again 75/25 into
fit and validation. Both ALS grids (``--ranks`` x ``--regs`` x ``--alphas`` x
``--iters``; ``--implicit-regs`` for the library) are fitted on the fit part and scored
on the validation part; the best NDCG@10 of each is refitted on the whole train part
(timed ``--repeats`` times) and scored on the test part, once.

``--interactions N``: synthetic implicit data with planted tastes over ``--users``
(default N / 20) users and ``--items`` (default N / 200) items, generated once with
numpy (not timed) and cached as parquet under ``--work``: ``--categories`` categories
of equal size whose popularity falls as rank**-0.8; every user has 2 or 3 favourite
categories (drawn by that popularity, Dirichlet(1) shares) and a lognormal (sigma 0.9)
number of events, 85 % in the favourites and 15 % in any category by its popularity,
the item within a category Zipf(1.1) by a hidden random rank. Repeated draws of a pair
add to its count r; the events are scaled so that the distinct (user, item) pairs come
to about N. Each user's pairs are split 80/20 at random (seeded). After an untimed
warm-up on a slice, each repeat times Spark's training (one fixed setting: ``--rank``
32, ``--reg`` 1, ``--alpha`` 5, ``--max-iter`` 10; block size 4096; user and item
blocks as the job picks them, one per core of a local session, or ``--blocks``) and
``model.recommend_all(model, None, 10)`` (``recommendForAllUsers``, written to the
noop sink), then ``implicit``'s fit (same rank, iterations and confidence,
``--implicit-reg`` 50) and ``recommend`` for every user with ``--threads`` threads
(BLAS limited to one thread, as the library asks: its own threads each call BLAS).
The regularizations were picked on a quick check at N = 1,000,000. Quality: NDCG@10
etc. of the three methods on a seeded sample of ``--eval-users`` holdout users (0:
all), from the last repeat's models; ``implicit`` is also scored on every holdout user.

Prints one JSON line; record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from precis.config import load_config
from precis.recommend import evaluation, model
from precis.session import get_spark
from public_data import DEFAULT_CACHE, movielens_100k_ratings, per_user_split

try:  # a benchmark-only tool, not a project dependency; imported before any BLAS limit (it loads scipy's BLAS)
    import implicit
    from implicit.cpu.als import AlternatingLeastSquares
except ImportError as error:  # pragma: no cover
    raise SystemExit(
        "bench_recommend needs the implicit library: .venv/bin/pip install implicit==0.7.3"
    ) from error

PROJECT = Path(__file__).resolve().parents[1]
K = 10
DEFAULT_WORK = Path("/tmp/bench_recommend")

# Synthetic data.
FAVOURITE_SHARE = 0.85  # events from the user's favourite categories
ITEM_ZIPF = 1.1  # item popularity within a category ~ rank**-ITEM_ZIPF
CATEGORY_ZIPF = 0.8  # category popularity ~ rank**-CATEGORY_ZIPF
ACTIVITY_SIGMA = 0.9  # events per user ~ lognormal
MIN_EVENTS = 3


def log(message: str) -> None:
    print(f"[bench_recommend {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _floats(value: str) -> list[float]:
    return [float(v) for v in value.split(",") if v.strip()]


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


# ----------------------------------------------------------------- data
def _write(path: Path, **columns: np.ndarray) -> None:
    pq.write_table(pa.table(columns), path)


def movielens_100k(
    cache: Path, work: Path, seed: int, confidence: str = "one"
) -> tuple[Path, dict[str, Any]]:
    """Splits of MovieLens-100k under work: fit/valid (of train) and train/test parquet.

    ``confidence``: ``one`` (r = 1 for every rating) or ``rating`` (r = the 1-5 stars).
    """
    out = work / (f"movielens100k-seed{seed}" + ("" if confidence == "one" else f"-{confidence}"))
    meta_path = out / "meta.json"
    if meta_path.is_file():
        return out, json.loads(meta_path.read_text())
    raw = movielens_100k_ratings(cache)
    _, user = np.unique(raw[:, 0], return_inverse=True)
    _, item = np.unique(raw[:, 1], return_inverse=True)
    user, item = user.astype(np.int32), item.astype(np.int32)
    rng = np.random.default_rng(seed)
    train = per_user_split(user, 0.75, rng)
    fit = np.zeros(len(user), dtype=bool)
    fit[train] = per_user_split(user[train], 0.75, rng)
    valid = train & ~fit
    out.mkdir(parents=True, exist_ok=True)
    r = np.ones(len(user)) if confidence == "one" else raw[:, 2].astype(np.float64)
    for name, mask in (("train", train), ("test", ~train), ("fit", fit), ("valid", valid)):
        _write(out / f"{name}.parquet", user=user[mask], item=item[mask], confidence=r[mask])
    meta = {
        "ratings": len(user),
        "users": int(user.max() + 1),
        "items": int(item.max() + 1),
        "train_pairs": int(train.sum()),
        "test_pairs": int((~train).sum()),
        "fit_pairs": int(fit.sum()),
        "valid_pairs": int(valid.sum()),
    }
    meta_path.write_text(json.dumps(meta))
    return out, meta


def _events(
    rng: np.random.Generator, users: int, items: int, categories: int, mean_events: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique user * items + item keys and their counts, for one scale of activity."""
    per = items // categories
    # Category popularity, hidden behind a random order of the categories.
    cat_weight = np.arange(1, categories + 1, dtype=np.float64) ** -CATEGORY_ZIPF
    cat_weight = rng.permutation(cat_weight / cat_weight.sum())
    cat_cdf = np.cumsum(cat_weight)
    item_cdf = np.cumsum(np.arange(1, per + 1, dtype=np.float64) ** -ITEM_ZIPF)
    item_cdf /= item_cdf[-1]
    item_of = rng.permutation(categories * per).astype(np.int64)  # (category, rank) -> item id

    # 2 or 3 favourite categories per user, drawn without replacement by popularity (Gumbel top-3).
    favourites = np.empty((users, 3), dtype=np.int64)
    log_w = np.log(cat_weight).astype(np.float32)
    for lo in range(0, users, 200_000):
        hi = min(users, lo + 200_000)
        # A draw of exactly 0 gives the key -inf: that category is simply not picked.
        with np.errstate(divide="ignore"):
            keys = log_w - np.log(-np.log(rng.random((hi - lo, categories), dtype=np.float32)))
        favourites[lo:hi] = np.argpartition(-keys, 3, axis=1)[:, :3]
    shares = rng.gamma(1.0, size=(users, 3))
    liked = np.where(rng.random(users) < 0.5, 2, 3)
    shares[liked == 2, 2] = 0.0
    shares_cdf = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)

    mu = math.log(max(mean_events - MIN_EVENTS, 0.5)) - ACTIVITY_SIGMA**2 / 2
    n = MIN_EVENTS + np.rint(rng.lognormal(mu, ACTIVITY_SIGMA, users)).astype(np.int64)
    user = np.repeat(np.arange(users, dtype=np.int64), n)
    m = len(user)
    u = rng.random(m)
    pick = np.minimum((u[:, None] > shares_cdf[user, :2]).sum(axis=1), liked[user] - 1)
    category = favourites[user, pick]
    noise = rng.random(m) >= FAVOURITE_SHARE
    category[noise] = np.minimum(
        np.searchsorted(cat_cdf, rng.random(int(noise.sum()))), categories - 1
    )
    rank = np.minimum(np.searchsorted(item_cdf, rng.random(m)), per - 1)
    item = item_of[category * per + rank]
    return np.unique(user * items + item, return_counts=True)


def synthetic(
    work: Path, interactions: int, users: int, items: int, categories: int, seed: int
) -> tuple[Path, dict[str, Any]]:
    out = work / f"synthetic-{interactions}-u{users}-i{items}-c{categories}-seed{seed}"
    meta_path = out / "meta.json"
    if meta_path.is_file():
        return out, json.loads(meta_path.read_text())
    t0 = time.perf_counter()
    items = categories * (items // categories)
    mean_events = interactions / users
    for attempt in range(6):
        keys, counts = _events(np.random.default_rng(seed), users, items, categories, mean_events)
        log(
            f"generate: {len(keys):,} distinct pairs from {int(counts.sum()):,} events (mean events {mean_events:.2f})"
        )
        if abs(len(keys) - interactions) <= 0.01 * interactions:
            break
        mean_events *= interactions / len(keys) * (1.05 if attempt >= 3 else 1.0)
    user = (keys // items).astype(np.int32)
    item = (keys % items).astype(np.int32)
    del keys
    train = per_user_split(user, 0.8, np.random.default_rng(seed + 1))
    out.mkdir(parents=True, exist_ok=True)
    conf = counts.astype(np.float64)
    _write(out / "train.parquet", user=user[train], item=item[train], confidence=conf[train])
    _write(out / "test.parquet", user=user[~train], item=item[~train], confidence=conf[~train])
    per_user = np.bincount(user, minlength=users)
    meta = {
        "pairs": len(user),
        "events": int(counts.sum()),
        "users": int(users),
        "items": int(items),
        "categories": categories,
        "train_pairs": int(train.sum()),
        "test_pairs": int((~train).sum()),
        "users_with_pairs": int((per_user > 0).sum()),
        "pairs_per_user_mean": round(float(per_user.mean()), 2),
        "pairs_per_user_p99": int(np.percentile(per_user, 99)),
        "pairs_per_user_max": int(per_user.max()),
        "items_with_pairs": int((np.bincount(item, minlength=items) > 0).sum()),
        "share_repeated_pairs": round(float((counts > 1).mean()), 4),
        "generate_s": round(time.perf_counter() - t0, 1),
    }
    meta_path.write_text(json.dumps(meta))
    return out, meta


# ----------------------------------------------------------------- lists
def relevant_of(test: DataFrame) -> DataFrame:
    return test.groupBy("user").agg(F.collect_set("item").alias("items"))


def als_lists(fitted: Any, seen: DataFrame, users: DataFrame, k: int) -> DataFrame:
    """user, items: Spark ALS top-k without the user's seen items.

    Users are grouped by their number of seen items n; each group asks recommend_all for
    k + 2**ceil(log2 n) items, so at least k unseen items remain for everyone.
    """
    counts = seen.join(users, "user", "left_semi").groupBy("user").count()
    bucketed = (
        users.select("user")
        .join(counts, "user", "left")
        .select(
            "user",
            F.ceil(F.log2(F.greatest(F.coalesce("count", F.lit(1)), F.lit(1))))
            .cast("int")
            .alias("b"),
        )
        .persist()
    )
    parts = []
    for (b,) in sorted(tuple(r) for r in bucketed.select("b").distinct().collect()):
        subset = bucketed.filter(F.col("b") == b).select("user")
        parts.append(model.recommend_all(fitted, subset, k + 2**b))
    recs = parts[0]
    for part in parts[1:]:
        recs = recs.unionByName(part)
    kept = recs.join(seen.select("user", "item"), ["user", "item"], "left_anti")
    lists = evaluation.top_lists(kept, k).persist()
    lists.count()
    bucketed.unpersist()
    return lists


def frame_of_lists(
    spark: SparkSession, path: Path, users: np.ndarray, ids: np.ndarray
) -> DataFrame:
    """user, items from an implicit (users, N) id matrix, written as parquet and read back."""
    valid = ids >= 0
    offsets = np.r_[0, np.cumsum(valid.sum(axis=1))].astype(np.int32)
    items = pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids[valid].astype(np.int32)))
    pq.write_table(pa.table({"user": pa.array(users.astype(np.int32)), "items": items}), path)
    return spark.read.parquet(str(path))


def csr_of(table: pa.Table, users: int, items: int, alpha: float) -> csr_matrix:
    user = table.column("user").to_numpy()
    item = table.column("item").to_numpy()
    conf = 1.0 + alpha * table.column("confidence").to_numpy()
    return csr_matrix((conf.astype(np.float32), (user, item)), shape=(users, items))


def implicit_model(rank: int, reg: float, iters: int, seed: int, threads: int) -> Any:
    return AlternatingLeastSquares(
        factors=rank,
        regularization=reg,
        alpha=1.0,
        iterations=iters,
        random_state=seed,
        num_threads=threads,
        calculate_training_loss=False,
    )


def fit_implicit(
    matrix: Any, rank: int, reg: float, iters: int, seed: int, threads: int
) -> tuple[Any, float]:
    with threadpool_limits(1, "blas"):
        als = implicit_model(rank, reg, iters, seed, threads)
        t0 = time.perf_counter()
        als.fit(matrix, show_progress=False)
        return als, time.perf_counter() - t0


def recommend_implicit(
    als: Any, matrix: Any, users: np.ndarray, k: int, threads: int
) -> tuple[np.ndarray, float]:
    # implicit runs its own threads; letting each use BLAS threads as well oversubscribes.
    with threadpool_limits(1, "blas"):
        t0 = time.perf_counter()
        ids, _ = als.recommend(users, matrix[users], N=k, filter_already_liked_items=True)
        return ids, time.perf_counter() - t0


def scores(lists: DataFrame, relevant: DataFrame, catalogue: int, k: int = K) -> dict[str, float]:
    out = evaluation.ranking_metrics(lists, relevant, k)
    out[f"coverage_at_{k}"] = evaluation.coverage(lists, catalogue)
    return {m: round(v, 4) for m, v in out.items()}


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{m} {v:.4f}" for m, v in metrics.items())


# ----------------------------------------------------------------- modes
def _grid_result(
    names: tuple[str, ...],
    grid: tuple[list, ...],
    trials: list,
    tune_s: float,
    best: tuple,
    best_valid: dict[str, float],
    fit_times: list[float],
    digits: int,
    test: dict[str, float],
) -> dict[str, Any]:
    """The JSON of one model's grid search, refit timings and test scores."""
    return {
        "grid": dict(zip(names, grid)),
        "trials": [[*p, round(m[f"ndcg_at_{K}"], 4)] for p, m in trials],
        "tune_s": round(tune_s, 1),
        "best": dict(zip(names, best)),
        "valid_ndcg_at_10": round(best_valid[f"ndcg_at_{K}"], 4),
        "train_median_s": round(statistics.median(fit_times), digits),
        "train_runs_s": [round(t, digits) for t in fit_times],
        "test": test,
    }


def run_movielens(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    data, meta = movielens_100k(args.cache, args.work, args.seed, args.confidence)
    read = {
        name: spark.read.parquet(str(data / f"{name}.parquet")).persist()
        for name in ("train", "test", "fit", "valid")
    }
    tables = {name: pq.read_table(data / f"{name}.parquet") for name in ("train", "fit")}
    n_users, n_items = meta["users"], meta["items"]
    catalogue = n_items
    relevant = {
        "valid": relevant_of(read["valid"]).persist(),
        "test": relevant_of(read["test"]).persist(),
    }
    line: dict[str, Any] = {"data": meta}

    pop = evaluation.popularity_lists(read["train"], relevant["test"].select("user"), K)
    line["popularity"] = {"test": scores(pop, relevant["test"], catalogue)}
    log(f"popularity test: {_fmt(line['popularity']['test'])}")

    # Spark ALS grid on fit -> valid.
    valid_users = relevant["valid"].select("user")
    trials, t0 = [], time.perf_counter()
    for rank, reg, alpha, iters in product(args.ranks, args.regs, args.alphas, args.iters):
        params = model.AlsParams(rank, reg, alpha, iters, args.seed)
        fitted = model.train(read["fit"], params)
        lists = als_lists(fitted, read["fit"], valid_users, K)
        m = evaluation.ranking_metrics(lists, relevant["valid"], K)
        lists.unpersist()
        trials.append(((rank, reg, alpha, iters), m))
        log(f"spark als rank={rank} reg={reg} alpha={alpha} iter={iters}: valid {_fmt(m)}")
    tune_s = time.perf_counter() - t0
    best, best_valid = max(trials, key=lambda t: t[1][f"ndcg_at_{K}"])
    rank, reg, alpha, iters = best
    params = model.AlsParams(rank, reg, alpha, iters, args.seed)
    fit_times, fitted = [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fitted = model.train(read["train"], params)
        fit_times.append(time.perf_counter() - t0)
    lists = als_lists(fitted, read["train"], relevant["test"].select("user"), K)
    names = ("rank", "reg_param", "alpha", "max_iter")
    line["spark_als"] = _grid_result(
        names,
        (args.ranks, args.regs, args.alphas, args.iters),
        trials,
        tune_s,
        best,
        best_valid,
        fit_times,
        2,
        scores(lists, relevant["test"], catalogue),
    )
    log(f"spark als best {best}: test {_fmt(line['spark_als']['test'])}")

    # implicit grid on fit -> valid.
    valid_ids = np.array(sorted(r["user"] for r in valid_users.collect()), dtype=np.int32)
    test_ids = np.array(
        sorted(r["user"] for r in relevant["test"].select("user").collect()), dtype=np.int32
    )
    trials, t0 = [], time.perf_counter()
    scratch = args.work / "lists"
    scratch.mkdir(parents=True, exist_ok=True)
    for rank, reg, alpha, iters in product(args.ranks, args.implicit_regs, args.alphas, args.iters):
        matrix = csr_of(tables["fit"], n_users, n_items, alpha)
        als, _ = fit_implicit(matrix, rank, reg, iters, args.seed, args.threads)
        ids, _ = recommend_implicit(als, matrix, valid_ids, K, args.threads)
        lists = frame_of_lists(
            spark, scratch / f"implicit-valid-{len(trials)}.parquet", valid_ids, ids
        )
        m = evaluation.ranking_metrics(lists, relevant["valid"], K)
        trials.append(((rank, reg, alpha, iters), m))
        log(f"implicit rank={rank} reg={reg} alpha={alpha} iter={iters}: valid {_fmt(m)}")
    tune_s = time.perf_counter() - t0
    best, best_valid = max(trials, key=lambda t: t[1][f"ndcg_at_{K}"])
    rank, reg, alpha, iters = best
    matrix = csr_of(tables["train"], n_users, n_items, alpha)
    fit_times = []
    for _ in range(args.repeats):
        als, seconds = fit_implicit(matrix, rank, reg, iters, args.seed, args.threads)
        fit_times.append(seconds)
    ids, _ = recommend_implicit(als, matrix, test_ids, K, args.threads)
    lists = frame_of_lists(spark, scratch / "implicit-test.parquet", test_ids, ids)
    names = ("factors", "regularization", "alpha", "iterations")
    line["implicit"] = _grid_result(
        names,
        (args.ranks, args.implicit_regs, args.alphas, args.iters),
        trials,
        tune_s,
        best,
        best_valid,
        fit_times,
        3,
        scores(lists, relevant["test"], catalogue),
    )
    log(f"implicit best {best}: test {_fmt(line['implicit']['test'])}")
    return line


def run_synthetic(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    users = args.users or max(100, args.interactions // 20)
    items = args.items or max(args.categories * 20, args.interactions // 200)
    data, meta = synthetic(args.work, args.interactions, users, items, args.categories, args.seed)
    n_users, n_items = meta["users"], meta["items"]
    log(f"data: {meta}")
    train = spark.read.parquet(str(data / "train.parquet")).persist()
    test = spark.read.parquet(str(data / "test.parquet"))
    train.count()
    relevant_all = relevant_of(test).persist()
    holdout_users = relevant_all.count()
    if args.eval_users and args.eval_users < holdout_users:
        fraction = min(1.0, 1.2 * args.eval_users / holdout_users)
        sample = (
            relevant_all.select("user")
            .sample(fraction=fraction, seed=args.seed)
            .orderBy(F.xxhash64(F.lit(args.seed), "user"))
            .limit(args.eval_users)
        )
    else:
        sample = relevant_all.select("user")
    sample = sample.persist()
    relevant = relevant_all.join(sample, "user", "left_semi").persist()
    n_eval = relevant.count()
    catalogue = n_items
    # As the job: one block per core of the session unless --blocks says otherwise.
    blocks = args.blocks or model.session_blocks(spark)
    params = model.AlsParams(
        args.rank, args.reg, args.alpha, args.max_iter, args.seed, 4096, blocks
    )
    line: dict[str, Any] = {
        "data": meta,
        "holdout_users": holdout_users,
        "eval_users": n_eval,
        "spark_params": params.as_dict()
        | {"block_size": params.block_size, "blocks": params.blocks},
    }

    # Warm-up (not timed): JIT, code generation, BLAS loading on a slice.
    log("warm-up")
    small = train.limit(50_000)
    warm = model.train(small, model.AlsParams(8, args.reg, args.alpha, 2, args.seed, 4096, blocks))
    model.recommend_all(warm, None, K).write.format("noop").mode("overwrite").save()
    als_lists(warm, small, small.select("user").distinct().limit(1000), K).unpersist()

    table = pq.read_table(data / "train.parquet")
    matrix = csr_of(table, n_users, n_items, args.alpha)
    del table
    all_users = np.arange(n_users, dtype=np.int32)

    fit_s, rec_s, imp_fit_s, imp_rec_s, fitted, als, ids = [], [], [], [], None, None, None
    loads = [round(os.getloadavg()[0], 2)]
    for i in range(args.repeats):
        if fitted is not None:
            fitted.userFactors.unpersist()
            fitted.itemFactors.unpersist()
        t0 = time.perf_counter()
        fitted = model.train(train, params)
        fit_s.append(time.perf_counter() - t0)
        log(f"repeat {i + 1}: spark train {fit_s[-1]:.1f} s")
        t0 = time.perf_counter()
        model.recommend_all(fitted, None, K).write.format("noop").mode("overwrite").save()
        rec_s.append(time.perf_counter() - t0)
        log(f"repeat {i + 1}: spark top-{K} for {n_users:,} users {rec_s[-1]:.1f} s")
        als = ids = None
        als, seconds = fit_implicit(
            matrix, args.rank, args.implicit_reg, args.max_iter, args.seed, args.threads
        )
        imp_fit_s.append(seconds)
        ids, seconds = recommend_implicit(als, matrix, all_users, K, args.threads)
        imp_rec_s.append(seconds)
        log(f"repeat {i + 1}: implicit fit {imp_fit_s[-1]:.1f} s, recommend {imp_rec_s[-1]:.1f} s")
        loads.append(round(os.getloadavg()[0], 2))

    log(f"scoring on {n_eval:,} holdout users")
    t0 = time.perf_counter()
    pop = evaluation.popularity_lists(train, sample, K)
    line["popularity"] = scores(pop, relevant, catalogue)
    line["popularity"]["lists_s"] = round(time.perf_counter() - t0, 1)
    log(f"popularity: {line['popularity']}")

    t0 = time.perf_counter()
    lists = als_lists(fitted, train, sample, K)
    lists_s = time.perf_counter() - t0
    line["spark_als"] = {
        "train_median_s": round(statistics.median(fit_s), 1),
        "train_runs_s": [round(t, 1) for t in fit_s],
        "top10_all_median_s": round(statistics.median(rec_s), 1),
        "top10_all_runs_s": [round(t, 1) for t in rec_s],
        **scores(lists, relevant, catalogue),
        "eval_lists_s": round(lists_s, 1),
    }
    log(f"spark als: {line['spark_als']}")

    scratch = args.work / "lists"
    scratch.mkdir(parents=True, exist_ok=True)
    imp_all = frame_of_lists(
        spark, scratch / f"implicit-synthetic-{args.interactions}.parquet", all_users, ids
    )
    imp_sample = imp_all.join(sample, "user", "left_semi")
    line["implicit"] = {
        "params": {
            "factors": args.rank,
            "regularization": args.implicit_reg,
            "iterations": args.max_iter,
            "confidence": f"1 + {args.alpha} * r",
            "threads": args.threads,
        },
        "fit_median_s": round(statistics.median(imp_fit_s), 1),
        "fit_runs_s": [round(t, 1) for t in imp_fit_s],
        "recommend_all_median_s": round(statistics.median(imp_rec_s), 1),
        "recommend_all_runs_s": [round(t, 1) for t in imp_rec_s],
        **scores(imp_sample, relevant, catalogue),
        "all_holdout_users": scores(imp_all, relevant_all, catalogue),
    }
    log(f"implicit: {line['implicit']}")
    line["load_average_during_timing"] = loads
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dataset", choices=["movielens100k"])
    mode.add_argument(
        "--interactions", type=int, help="synthetic: about this many distinct (user, item) pairs"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2, help="implicit's threads")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="where the recbole wheel is kept"
    )
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="generated data and splits")
    parser.add_argument(
        "--root", help="Spark scratch (lakehouse root, checkpoints); default a temporary directory"
    )
    parser.add_argument("--driver-memory", help="spark.driver.memory (default: the project's)")
    grid = parser.add_argument_group("movielens100k grid")
    grid.add_argument(
        "--confidence",
        choices=["one", "rating"],
        default="one",
        help="r of each rating: 1 (every rating a positive) or its stars",
    )
    grid.add_argument("--ranks", type=_ints, default=[10, 50, 100])
    grid.add_argument(
        "--regs", type=_floats, default=[0.01, 0.1, 1.0], help="Spark regParam values"
    )
    grid.add_argument("--implicit-regs", type=_floats, default=[0.01, 0.1, 1.0, 10.0, 100.0])
    grid.add_argument("--alphas", type=_floats, default=[1.0, 10.0, 40.0])
    grid.add_argument("--iters", type=_ints, default=[15])
    syn = parser.add_argument_group("synthetic")
    syn.add_argument("--users", type=int, help="default interactions / 20")
    syn.add_argument("--items", type=int, help="default interactions / 200")
    syn.add_argument("--categories", type=int, default=50)
    syn.add_argument("--rank", type=int, default=32)
    syn.add_argument("--reg", type=float, default=1.0, help="Spark regParam")
    syn.add_argument("--implicit-reg", type=float, default=50.0, help="implicit's regularization")
    syn.add_argument("--alpha", type=float, default=5.0)
    syn.add_argument("--max-iter", type=int, default=10)
    syn.add_argument(
        "--blocks", type=int, help="ALS user and item blocks (default: as the job picks)"
    )
    syn.add_argument(
        "--eval-users", type=int, default=100_000, help="holdout users scored (0: all)"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    scratch = Path(args.root or tempfile.mkdtemp(prefix="precis-bench-recommend-"))
    overrides = [f"storage.root={scratch / 'lakehouse'}", "mlflow.enabled=false"]
    if args.driver_memory:
        overrides.append(f"spark.conf.spark.driver.memory={args.driver_memory}")
    cfg = load_config(PROJECT / "conf" / "base.yaml", overrides, run_date="2026-03-31")
    load_before = round(os.getloadavg()[0], 2)
    spark = get_spark(cfg)
    try:
        t0 = time.perf_counter()
        if args.dataset:
            line = {"bench": "recommend", "dataset": args.dataset}
            line.update(run_movielens(spark, args))
        else:
            line = {
                "bench": "recommend",
                "dataset": "synthetic",
                "interactions": args.interactions,
                "repeats": args.repeats,
            }
            line.update(run_synthetic(spark, args))
        line.update(
            {
                "command": " ".join(
                    [".venv/bin/python", "bench/bench_recommend.py", *sys.argv[1:]]
                ),
                "k": K,
                "repeats": args.repeats,
                "wall_s": round(time.perf_counter() - t0, 1),
                "load_average": [load_before, round(os.getloadavg()[0], 2)],
                "implicit_threads": args.threads,
                "spark": pyspark.__version__,
                "implicit_version": implicit.__version__,
                "driver_memory": spark.conf.get("spark.driver.memory"),
                "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
                "cores": os.cpu_count(),
                "machine": platform.machine(),
            }
        )
        print(json.dumps(line))
    finally:
        spark.stop()
        if not args.root:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
