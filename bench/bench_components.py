"""Benchmark: connected components of an identity-like graph, against GraphX, GraphFrames and label propagation.

    .venv/bin/python bench/bench_components.py --edges 1000000 --repeats 3
    .venv/bin/python bench/bench_components.py --edges 10000000 --repeats 1 --baselines graphx
    .venv/bin/python bench/bench_components.py --edges 1000000 --repeats 3 --baselines graphframes
    .venv/bin/python bench/bench_components.py --links-from /tmp/demo/lakehouse --baselines graphx

Builds a synthetic identity graph once (not timed) with a fixed seed: mostly components
of 2-30 identifiers, a few of thousands, each a random tree plus extra and duplicate
edges, ids hashed to BIGINT with xxhash64 like real identifiers; or, with
``--links-from``, takes the identity job's links over a lakehouse's silver tables. After an untimed warm-up
on a slice, each repeat times ``precis.identity.components.connected_components`` and
each baseline chosen with ``--baselines`` (default: ``graphx,label_propagation``), all
with the same checkpoint interval:

- ``graphx``: Spark's own GraphX ``org.apache.spark.graphx.lib.ConnectedComponents``
  (Pregel min-label propagation; what GraphFrames runs with ``algorithm="graphx"``),
  through the small Java class in ``bench/jvm/``, which builds the graph on the JVM
  (``Graph.fromEdgeTuples``, duplicate edges kept, edges and vertices MEMORY_AND_DISK)
  and returns ``(id, component)``. The script compiles it with ``javac`` against
  pyspark's own jars into ``bench/.cache/`` (git-ignored; rebuilt when the source or the
  Spark version changes) and puts the jar on ``spark.jars`` when it starts the session,
  with ``spark.graphx.pregel.checkpointInterval`` set to ``--checkpoint-interval``, so
  Pregel checkpoints its graph and messages every that many supersteps into the
  session's checkpoint directory (``<storage.root>/_checkpoints``), like the others.
  GraphX names a component by its minimum vertex id, as ours does; the supersteps are
  counted from Pregel's own log lines.
- ``graphframes`` (not in the default): GraphFrames' own ``connectedComponents`` with
  its default algorithm, called through py4j on the JVM class (no Python package); the
  jar (``--graphframes-package``, default ``io.graphframes:graphframes-spark4_2.13:0.10.0``)
  is added to ``spark.jars.packages`` and resolved from Maven Central, where it must
  be available for this baseline to run. Its component ids
  are not the minimum id of the component, so each of its components is relabelled with
  its minimum id before the comparison, which makes it a comparison of partitions.
- ``contraction``: ours by randomized contraction
  (``precis.identity.contraction.contracted_components``, Bögeholz et al., ICDE 2020;
  DataFrames only), which finishes on the driver once at most ``LOCAL_EDGES`` directed
  edges are left; its rounds are counted, the local finish as one.
- ``label_propagation``: plain min-label propagation (every round each vertex takes the
  smallest label among itself and its neighbours, until no label changes; what GraphX's
  connectedComponents does).

Each baseline's labels must equal ours exactly, every vertex; the script exits non-zero
if one does not. Prints one JSON line with the medians; record results in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyspark
from pyspark.errors import PySparkRuntimeError
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.identity import records
from precis.identity.components import connected_components
from precis.identity.contraction import contracted_components
from precis.identity.links import record_links
from precis.session import get_spark
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]

SMALL_MAX = 30  # small components have 2..SMALL_MAX nodes, skewed towards 2
EXTRA_EDGE_RATE = 0.3  # a node's second link, to an earlier node (closes cycles)
REPEAT_EDGE_RATE = 0.1  # the same pair observed again, written the other way round
LARGE_BASE = 2_000  # large component i has LARGE_BASE * 2**i nodes

#: GraphFrames for Spark 4 / Scala 2.13, resolved from Maven Central.
GRAPHFRAMES_PACKAGE = "io.graphframes:graphframes-spark4_2.13:0.10.0"
BASELINES = ("graphx", "contraction", "graphframes", "label_propagation")
DEFAULT_BASELINES = ("graphx", "contraction", "label_propagation")
#: Java sources of the GraphX baseline, and where their compiled jar is kept.
JVM_SOURCES = PROJECT / "bench" / "jvm"
JVM_CACHE = PROJECT / "bench" / ".cache"
GRAPHX_CLASS = "precis.bench.GraphXComponents"


# ----------------------------------------------------------------- synthetic graph
def _uniform(seed: int, *parts: object) -> Column:
    """A deterministic uniform [0, 1) from a hash of the seed and the given columns."""
    cols = [F.lit(seed), *(p if isinstance(p, Column) else F.lit(p) for p in parts)]
    return F.pmod(F.xxhash64(*cols), F.lit(1 << 30)) / float(1 << 30)


def _small_size(seed: int, component: Column) -> Column:
    # u**2 skews the sizes towards pairs and triples, as in real identity graphs.
    return (2 + F.floor((SMALL_MAX - 1) * _uniform(seed, component, "size") ** 2)).cast("int")


def _edges_per_component() -> float:
    """Expected edges of a small component: a tree (size - 1) plus extra and repeated edges."""
    # E[floor((SMALL_MAX - 1) * u**2)] = sum over k >= 1 of P(u**2 >= k / (SMALL_MAX - 1)).
    mean_size = 2 + sum(1 - math.sqrt(k / (SMALL_MAX - 1)) for k in range(1, SMALL_MAX - 1))
    return (mean_size - 1) * (1 + EXTRA_EDGE_RATE + REPEAT_EDGE_RATE)


def identity_graph(spark: SparkSession, edges: int, large: int, seed: int) -> DataFrame:
    """Edges ``(src, dst)`` of about ``edges`` rows: small components plus ``large`` big ones."""
    large_sizes = [LARGE_BASE * 2**i for i in range(large)]
    large_edges = sum(large_sizes) * (1 + EXTRA_EDGE_RATE + REPEAT_EDGE_RATE)
    small_count = max(1, round((edges - large_edges) / _edges_per_component()))

    small = spark.range(small_count).select(F.col("id").alias("component"))
    small = small.withColumn("size", _small_size(seed, F.col("component")))
    big = spark.createDataFrame(
        [(-(i + 1), s) for i, s in enumerate(large_sizes)], "component long, size int"
    )
    components = small.unionByName(big) if large else small

    # Node j > 0 links to a random earlier node: a random recursive tree, depth O(log size).
    nodes = components.select(
        "component", F.explode(F.sequence(F.lit(1), F.col("size") - 1)).alias("j")
    )
    c, j = F.col("component"), F.col("j")

    def node(index: Column) -> Column:
        return F.xxhash64(F.lit(seed), c, index.cast("long"), F.lit("node"))

    parent = F.floor(j * _uniform(seed, c, j, "parent"))
    other = F.floor(j * _uniform(seed, c, j, "other"))

    def edge(a: Column, b: Column) -> Column:
        return F.struct(node(a).alias("src"), node(b).alias("dst"))

    links = F.array(
        edge(j, parent),
        F.when(_uniform(seed, c, j, "extra") < EXTRA_EDGE_RATE, edge(j, other)),
        F.when(_uniform(seed, c, j, "repeat") < REPEAT_EDGE_RATE, edge(parent, j)),
    )
    return nodes.select(F.explode(F.filter(links, lambda e: e.isNotNull())).alias("e")).select(
        F.col("e.src").alias("src"), F.col("e.dst").alias("dst")
    )


# ----------------------------------------------------------------- baselines
def contraction(edges: DataFrame) -> tuple[DataFrame, int]:
    """Ours by randomized contraction (``precis.identity.contraction``): (labels, rounds)."""
    rounds: list[int] = []
    result = contracted_components(edges, on_iteration=lambda i, _: rounds.append(i))
    return result, len(rounds)


def graphframes_components(edges: DataFrame, checkpoint_interval: int = 1) -> tuple[DataFrame, str]:
    """GraphFrames' ``connectedComponents`` (default algorithm); returns ``(id, component)`` and the algorithm.

    Called on the JVM class through py4j, so only the jar is needed. Its component ids
    are arbitrary: relabel with ``min_id_labels`` before comparing.
    """
    spark = edges.sparkSession
    src, dst = F.col("src").cast("bigint"), F.col("dst").cast("bigint")
    pairs = edges.select(src.alias("src"), dst.alias("dst"))
    ids = pairs.select(F.col("src").alias("id")).unionByName(pairs.select(F.col("dst").alias("id")))
    vertices = ids.where(F.col("id").isNotNull()).distinct()
    links = pairs.where(F.col("src").isNotNull() & F.col("dst").isNotNull())
    graph = spark._jvm.org.graphframes.GraphFrame.apply(vertices._jdf, links._jdf)
    algorithm = graph.connectedComponents().setCheckpointInterval(checkpoint_interval)
    result = DataFrame(algorithm.run(), spark)
    return result.select("id", "component"), algorithm.getAlgorithm()


def identity_links(spark: SparkSession, root: str, max_ids: int) -> DataFrame:
    """src, dst: the links the identity job builds from a lakehouse's silver datasets."""
    lake = Lakehouse(spark, root)
    silver = {
        name: lake.read(T.SILVER[name]) for name in records.SOURCES if lake.exists(T.SILVER[name])
    }
    links, _ = record_links(records.identified_records(silver), max_ids)
    return links.select("src", "dst")


def graphx_components(edges: DataFrame, max_iterations: int = 10_000) -> tuple[DataFrame, int]:
    """GraphX's ``ConnectedComponents``; returns ``(id, component)`` and the Pregel supersteps.

    Needs the session started with ``graphx_helper_jar()`` on ``spark.jars``. The labels
    come back persisted: unpersist them when done.
    """
    spark = edges.sparkSession
    src, dst = F.col("src").cast("bigint"), F.col("dst").cast("bigint")
    links = edges.select(src.alias("src"), dst.alias("dst")).where(
        F.col("src").isNotNull() & F.col("dst").isNotNull()
    )
    helper = spark._jvm
    for part in GRAPHX_CLASS.split("."):
        helper = getattr(helper, part)
    result = helper.run(links._jdf, max_iterations)
    if result.iterations() >= max_iterations:
        raise RuntimeError(
            f"GraphX connected components did not converge within {max_iterations} supersteps"
        )
    return DataFrame(result.labels(), spark), result.iterations()


def graphx_helper_jar(cache: Path = JVM_CACHE) -> Path:
    """The jar of ``bench/jvm``, compiled with ``javac`` against pyspark's jars on first use.

    Named by a hash of the sources and the Spark version, so an edit or an upgrade
    rebuilds it; written to a temporary name first, so a half-written jar is never used.
    """
    sources = sorted(JVM_SOURCES.rglob("*.java"))
    digest = hashlib.sha256(pyspark.__version__.encode())
    for source in sources:
        digest.update(
            source.relative_to(JVM_SOURCES).as_posix().encode() + b"\0" + source.read_bytes()
        )
    jar = cache / f"precis-bench-jvm-{digest.hexdigest()[:16]}.jar"
    if jar.is_file():
        return jar
    java_home = os.environ.get("JAVA_HOME")
    javac = shutil.which("javac") or (
        java_home and shutil.which("javac", path=str(Path(java_home) / "bin"))
    )
    if not javac:
        raise SystemExit(
            "the graphx baseline compiles bench/jvm with javac, which is not on PATH (install a JDK "
            "17, or leave graphx out of --baselines)"
        )
    jars = Path(pyspark.__file__).parent / "jars"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="precis-bench-jvm-") as tmp:
        classes = Path(tmp) / "classes"
        subprocess.run(
            [
                javac,
                "--release",
                "17",
                "-nowarn",
                "-cp",
                str(jars / "*"),
                "-d",
                str(classes),
                *map(str, sources),
            ],
            check=True,
        )
        partial_jar = cache / f".{jar.name}.{os.getpid()}.tmp"
        with zipfile.ZipFile(partial_jar, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            for path in sorted(classes.rglob("*.class")):
                out.write(path, path.relative_to(classes).as_posix())
        os.replace(partial_jar, jar)
    return jar


def min_id_labels(labels: DataFrame) -> DataFrame:
    """Relabel ``(id, component)`` so that each component is named by its minimum id."""
    return labels.select("id", F.min("id").over(Window.partitionBy("component")).alias("component"))


def _materialize(frame: DataFrame, checkpoint: bool, *metrics: Column) -> tuple[DataFrame, dict]:
    observation = Observation()
    observed = frame.observe(observation, *metrics)
    if checkpoint:
        reliable = frame.sparkSession.sparkContext.getCheckpointDir() is not None
        result = (
            observed.checkpoint(eager=True) if reliable else observed.localCheckpoint(eager=True)
        )
    else:
        result = observed.persist()
        result.count()
    return result, observation.get


def label_propagation(
    edges: DataFrame, checkpoint_interval: int = 1, max_rounds: int = 10_000
) -> tuple[DataFrame, int]:
    """Plain min-label propagation; returns ``(id, component)`` and the number of rounds."""
    src, dst = F.col("src").cast("bigint"), F.col("dst").cast("bigint")
    pairs = edges.select(src.alias("src"), dst.alias("dst")).where(F.col("src") != F.col("dst"))
    both = pairs.unionByName(pairs.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    neighbours, _ = _materialize(both.distinct(), True, F.count(F.lit(1)))
    ids = edges.select(src.alias("id")).unionByName(edges.select(dst.alias("id"))).distinct()
    state, _ = _materialize(
        ids.select("id", F.col("id").alias("component")), True, F.count(F.lit(1))
    )

    rounds = 0
    while True:
        rounds += 1
        if rounds > max_rounds:
            raise RuntimeError(f"label propagation did not converge within {max_rounds} rounds")
        # Every vertex's own label joins its neighbours' offers, so one aggregation both
        # takes the minimum and keeps the previous label to detect a change.
        labels = state.select("id", "component")
        offers = neighbours.join(labels, neighbours["src"] == labels["id"]).select(
            neighbours["dst"].alias("id"),
            labels["component"].alias("offer"),
            F.lit(False).alias("own"),
        )
        own = labels.select("id", F.col("component").alias("offer"), F.lit(True).alias("own"))
        updated = (
            offers.unionByName(own)
            .groupBy("id")
            .agg(
                F.min("offer").alias("component"),
                F.min(F.when(F.col("own"), F.col("offer"))).alias("previous"),
            )
            .select("id", "component", (F.col("component") < F.col("previous")).alias("changed"))
        )
        updated, observed = _materialize(
            updated,
            rounds % checkpoint_interval == 0,
            F.count_if(F.col("changed")).alias("changed"),
        )
        state.unpersist()
        state = updated
        if not observed["changed"]:
            return state.select("id", "component"), rounds


# ----------------------------------------------------------------- timing
def _time(run: Callable[[], tuple[DataFrame, object]]) -> tuple[float, object, DataFrame]:
    t0 = time.perf_counter()
    result, iterations = run()
    # The result is a projection of checkpointed data; writing it to nowhere finishes the work.
    result.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t0, iterations, result


def _same(a: DataFrame, b: DataFrame) -> bool:
    return a.exceptAll(b).isEmpty() and b.exceptAll(a).isEmpty()


def _baselines(value: str) -> tuple[str, ...]:
    names = tuple(
        dict.fromkeys(n.strip() for n in value.split(",") if n.strip() and n.strip() != "none")
    )
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown baseline(s) {', '.join(unknown)}; choose among {', '.join(BASELINES)}"
        )
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--edges", type=int, default=1_000_000, help="approximate number of edge rows"
    )
    parser.add_argument(
        "--large", type=int, default=4, help="components of 2,000 * 2**i nodes, i < large"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--checkpoint-interval",
        type=int,
        default=1,
        help="checkpoint every n rounds, for ours and every baseline (GraphX: "
        "spark.graphx.pregel.checkpointInterval; default: 1)",
    )
    parser.add_argument(
        "--baselines",
        type=_baselines,
        default=DEFAULT_BASELINES,
        help=f"comma list among {', '.join(BASELINES)}; 'none' times connected_components only "
        f"(default: {','.join(DEFAULT_BASELINES)}; graphframes needs its jar from Maven Central)",
    )
    parser.add_argument(
        "--graphframes-package", default=GRAPHFRAMES_PACKAGE, help="Maven coordinate of GraphFrames"
    )
    parser.add_argument(
        "--root", help="scratch directory (default: a temporary directory, removed afterwards)"
    )
    parser.add_argument(
        "--links-from",
        metavar="LAKEHOUSE",
        help="instead of a synthetic graph, the identity job's links over this lakehouse's silver",
    )
    args = parser.parse_args()
    baselines: tuple[str, ...] = args.baselines

    overrides = []
    if "graphx" in baselines:
        # Pregel reads its checkpoint interval from the SparkConf: set before the session starts.
        overrides += [
            f"spark.conf.spark.jars={graphx_helper_jar()}",
            f"spark.conf.spark.graphx.pregel.checkpointInterval={args.checkpoint_interval}",
        ]
    scratch = Path(args.root or tempfile.mkdtemp(prefix="precis-bench-components-"))
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={scratch / 'lakehouse'}", "mlflow.enabled=false", *overrides],
        run_date="2026-03-31",
    )
    packages = (args.graphframes_package,) if "graphframes" in baselines else ()
    try:
        spark = get_spark(cfg, extra_packages=packages)
    except PySparkRuntimeError as error:
        if not args.root:
            shutil.rmtree(scratch, ignore_errors=True)
        if packages:
            raise SystemExit(
                f"Spark did not start with {args.graphframes_package} on spark.jars.packages "
                "(see the resolution error above); try another --graphframes-package, or leave "
                "graphframes out of --baselines"
            ) from error
        raise
    runners: dict[str, Callable[[DataFrame], tuple[DataFrame, object]]] = {
        "graphx": graphx_components,
        "contraction": contraction,
        "graphframes": partial(
            graphframes_components, checkpoint_interval=args.checkpoint_interval
        ),
        "label_propagation": partial(
            label_propagation, checkpoint_interval=args.checkpoint_interval
        ),
    }
    try:
        graph_path = str(scratch / "graph")
        if args.links_from:
            source = identity_links(spark, args.links_from, cfg.identity.max_ids_per_record)
        else:
            source = identity_graph(spark, args.edges, args.large, args.seed)
        source.write.mode("overwrite").parquet(graph_path)
        graph = spark.read.parquet(graph_path)
        edge_rows = graph.count()

        # Warm the JVM (class loading, JIT, code generation) on a slice, so the first timed
        # run is not charged for it.
        sample = graph.limit(20_000)
        _time(partial(_run_components, sample, args.checkpoint_interval, []))
        for name in baselines:
            _time(partial(runners[name], sample))[2].unpersist()

        progress: list[tuple[int, int]] = []
        cc_times, cc_iterations, cc_result = [], 0, None
        times: dict[str, list[float]] = {name: [] for name in baselines}
        extra: dict[str, object] = {}
        results: dict[str, DataFrame] = {}
        for _ in range(args.repeats):
            progress.clear()
            seconds, cc_iterations, cc_result = _time(
                partial(_run_components, graph, args.checkpoint_interval, progress)
            )
            cc_times.append(seconds)
            for name in baselines:
                if name in results:
                    results[name].unpersist()  # GraphX and GraphFrames persist their results
                seconds, extra[name], results[name] = _time(partial(runners[name], graph))
                times[name].append(seconds)

        sizes = cc_result.groupBy("component").count()
        summary = sizes.agg(
            F.count(F.lit(1)).alias("components"),
            F.sum("count").alias("vertices"),
            F.max("count").alias("largest"),
        ).first()
        # Ours, GraphX and label propagation name a component by its minimum id; GraphFrames
        # does not, so its partition is compared after relabelling.
        agrees = {
            name: _same(cc_result, min_id_labels(result) if name == "graphframes" else result)
            for name, result in results.items()
        }
        line = {
            "bench": "components",
            "command": " ".join([".venv/bin/python", "bench/bench_components.py", *sys.argv[1:]]),
            "edges": edge_rows,
            "vertices": summary["vertices"],
            "components": summary["components"],
            "largest_component": summary["largest"],
            "repeats": args.repeats,
            "checkpoint_interval": args.checkpoint_interval,
            "components_median_s": round(statistics.median(cc_times), 1),
            "components_runs_s": [round(t, 1) for t in cc_times],
            "components_iterations": cc_iterations,
            "components_edges_in_play": [n for _, n in progress],
            "baselines": list(baselines),
        }
        for name in baselines:
            line[f"{name}_median_s"] = (
                round(statistics.median(times[name]), 1) if times[name] else None
            )
            line[f"{name}_runs_s"] = [round(t, 1) for t in times[name]]
            if name == "graphframes":
                line["graphframes_package"] = args.graphframes_package
                line["graphframes_algorithm"] = extra.get(name)
            elif name == "graphx":
                line["graphx_iterations"] = extra.get(name)
                line["graphx_checkpoint_interval"] = int(
                    spark.sparkContext.getConf().get("spark.graphx.pregel.checkpointInterval", "-1")
                )
            else:
                line[f"{name}_rounds"] = extra.get(name)
            line[f"{name}_identical"] = agrees.get(name)
        line.update(
            {
                "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
                "spark": pyspark.__version__,
                "cores": os.cpu_count(),
                "machine": platform.machine(),
            }
        )
        print(json.dumps(line))
        disagree = [name for name, same in agrees.items() if not same]
        if disagree:
            raise SystemExit(f"connected_components disagrees with {', '.join(disagree)}")
    finally:
        spark.stop()
        if not args.root:
            shutil.rmtree(scratch, ignore_errors=True)


def _run_components(
    graph: DataFrame, interval: int, progress: list[tuple[int, int]]
) -> tuple[DataFrame, int]:
    def record(iteration: int, edges: int) -> None:
        progress.append((iteration, edges))

    result = connected_components(graph, checkpoint_interval=interval, on_iteration=record)
    return result, len(progress)


if __name__ == "__main__":
    main()
