"""Benchmark: the lifecycle CLV fit (Spark summary, BG/NBD and Gamma-Gamma on distinct summaries) against lifetimes.

    .venv/bin/python bench/bench_clv.py --customers 1000000 --repeats 3
    .venv/bin/python bench/bench_clv.py --customers 10000000 --repeats 3

Simulates the orders of ``--customers`` buyers once (not timed; cached under ``--work``
by size, seed and as-of date) from the models the lifecycle job fits, in days:

- purchase rate lambda ~ Gamma(r = 0.75, rate alpha = 70), dropout probability
  p ~ Beta(a = 1, b = 4) after each repeat purchase (BG/NBD);
- first purchase uniform in the 365 days ending at the as-of date, then a Poisson(lambda)
  process of repeat purchases until the dropout or the as-of date;
- order value ~ Gamma(shape p = 6, rate nu), nu ~ Gamma(q = 4, rate gamma = 150)
  (Gamma-Gamma), rounded to cents.

Orders (``one_id``, ``order_date``, ``amount``, ``refunded`` = false) are written as
parquet in vectorized, seeded numpy chunks. After an untimed warm-up on a slice, each
repeat times

- ``summary``: ``summary.transactions`` then ``summary.person_summary(..., 'week')``,
  persisted and counted, as the lifecycle job does;
- ``fit``: ``value.fit(person_summary, 'week')``: the distinct (x, t_x, T) triples and
  spend bins collected to the driver, BG/NBD and Gamma-Gamma fitted there.

The last repeat's fit is broken down once more (collections, then each optimisation).
Memory: the Python driver's peak RSS and the driver JVM's heap (the local-mode driver
runs every task) up to the end of the fits. Then the same per-person summary is
collected to pandas (Arrow on) and ``lifetimes`` (``BetaGeoFitter``, ``GammaGammaFitter``)
fits it per person, and ``BetaGeoFitter(weights=...)`` / ``GammaGammaFitter(weights=...)``
fit the aggregated triples and spend bins, each in its own process stopped after
``--lifetimes-timeout`` seconds or ``--lifetimes-max-rss-gb`` of memory. True parameters
in weeks: r = 0.75, alpha = 10, a = 1, b = 4, p = 6, q = 4, gamma = 150.

Prints one JSON line per size (several sizes run one after another, each in its own
process so that peak memory is its own); record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from provenance import checkout

PROJECT = Path(__file__).resolve().parents[1]

WINDOW_DAYS = 365
TIME_UNIT = "week"
UNIT_DAYS = 7
# The simulation, in days.
R, ALPHA_DAYS, A, B = 0.75, 70.0, 1.0, 4.0
P, Q, GAMMA = 6.0, 4.0, 150.0
#: What a fit in weeks should recover.
TRUE = {"r": R, "alpha": ALPHA_DAYS / UNIT_DAYS, "a": A, "b": B, "p": P, "q": Q, "gamma": GAMMA}
CHUNK = 1_000_000
LIFETIMES_FITS = ("bgf", "ggf", "bgf_weighted", "ggf_weighted")
MB = 1024 * 1024


# ----------------------------------------------------------------- simulated orders
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64, so distinct inputs give distinct ids."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hex_digits(values: np.ndarray, digits: int) -> np.ndarray:
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return _HEX[((values[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)]


def one_ids(first: int, n: int, seed: int):
    """``p`` + 20 hex digits, like the identity job's one_ids, as an Arrow string array."""
    import pyarrow as pa

    index = np.arange(first, first + n, dtype=np.uint64) ^ _mix(np.array([seed], dtype=np.uint64))
    mixed = _mix(index)
    chars = np.concatenate(
        [
            np.full((n, 1), ord("p"), dtype=np.uint8),
            _hex_digits(mixed, 16),
            _hex_digits(_mix(mixed), 4),
        ],
        axis=1,
    )
    width = chars.shape[1]
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))
    )


def simulate_chunk(rng: np.random.Generator, first: int, n: int, seed: int, as_of: dt.date):
    """Orders of customers ``first .. first + n - 1`` as an Arrow table, sorted by date."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lam = rng.gamma(R, 1.0 / ALPHA_DAYS, n)  # purchases per day
    p_drop = rng.beta(A, B, n)
    nu = rng.gamma(Q, 1.0 / GAMMA, n)
    start = rng.uniform(0.0, WINDOW_DAYS, n)  # days after the window opens
    age = WINDOW_DAYS - start
    # Drop out right after the k-th repeat purchase; the Poisson process's arrivals in
    # (start, end) are, given their number, sorted uniforms: keep the first min(n, k).
    dropout_after = rng.geometric(p_drop)
    in_window = rng.poisson(lam * age)
    kept = np.minimum(in_window, dropout_after)

    owner = np.repeat(np.arange(n), in_window)
    u = rng.random(owner.size)
    u = u[np.lexsort((u, owner))]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(in_window) - in_window, in_window)
    keep = rank < kept[owner]
    owner, u = owner[keep], u[keep]

    buyer = np.concatenate([np.arange(n), owner])
    when = np.concatenate([start, start[owner] + u * age[owner]])
    amount = np.round(rng.gamma(P, 1.0 / nu[buyer]), 2)
    opened = (as_of - dt.timedelta(days=WINDOW_DAYS - 1) - dt.date(1970, 1, 1)).days
    day = (opened + np.minimum(np.floor(when), WINDOW_DAYS - 1)).astype(np.int32)
    order = np.argsort(day, kind="stable")
    buyer, day, amount = buyer[order], day[order], amount[order]
    return pa.table(
        {
            "one_id": pc.take(one_ids(first, n, seed), pa.array(buyer)),
            "order_date": pa.array(day, type=pa.date32()),
            "amount": pa.array(amount, type=pa.float64()),
            "refunded": pa.array(np.zeros(day.size, dtype=bool)),
        }
    )


def orders_path(work: Path, customers: int, seed: int, as_of: dt.date) -> Path:
    """Simulated orders, cached: generated once per (customers, seed, as-of date)."""
    import pyarrow.parquet as pq

    path = work / f"orders-c{customers}-s{seed}-{as_of.isoformat()}"
    if (path / "_SUCCESS").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    t0 = time.perf_counter()
    for chunk, first in enumerate(range(0, customers, CHUNK)):
        n = min(CHUNK, customers - first)
        table = simulate_chunk(np.random.default_rng([seed, chunk]), first, n, seed, as_of)
        pq.write_table(table, path / f"part-{chunk:05d}.parquet", row_group_size=1 << 20)
    (path / "_SUCCESS").touch()
    print(
        f"simulated {customers:,} customers into {path} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return path


# ----------------------------------------------------------------- memory
def _rss_mb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _python_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def jvm_memory(spark) -> dict[str, float | None]:
    """The driver JVM: max heap, peak heap per pool (old gen; sum of pool peaks, an upper
    bound), the heap peak sampled by the executor metrics (REST), and the process peak RSS."""
    jvm = spark.sparkContext._jvm
    management = jvm.java.lang.management.ManagementFactory
    pools = {}
    for pool in management.getMemoryPoolMXBeans():
        if pool.getType().toString() == "Heap memory":
            pools[pool.getName()] = pool.getPeakUsage().getUsed() / MB
    old = [v for name, v in pools.items() if "Old" in name or "Tenured" in name]
    sampled = None
    url = spark.sparkContext.uiWebUrl
    if url:
        try:
            address = f"{url}/api/v1/applications/{spark.sparkContext.applicationId}/executors"
            with urllib.request.urlopen(address, timeout=10) as response:
                executors = json.load(response)
            peaks = [e.get("peakMemoryMetrics", {}).get("JVMHeapMemory") for e in executors]
            peaks = [p for p in peaks if p]
            sampled = max(peaks) / MB if peaks else None
        except (OSError, ValueError):
            sampled = None
    return {
        "jvm_max_heap_mb": round(jvm.java.lang.Runtime.getRuntime().maxMemory() / MB),
        "jvm_old_gen_peak_mb": round(old[0]) if old else None,
        "jvm_heap_pools_peak_sum_mb": round(sum(pools.values())),
        "jvm_heap_peak_sampled_mb": round(sampled) if sampled else None,
        "jvm_peak_rss_mb": _round(_rss_mb(int(management.getRuntimeMXBean().getPid()), "VmHWM")),
    }


def _round(value: float | None, digits: int = 0):
    if value is None:
        return None
    return round(value) if digits == 0 else round(value, digits)


# ----------------------------------------------------------------- results
def recovery(params: dict[str, float]) -> dict[str, float]:
    """Relative error of each fitted parameter against the truth, in percent."""
    return {k: round(100 * (v / TRUE[k] - 1), 2) for k, v in params.items() if k in TRUE}


def _params(fit) -> dict[str, float]:
    return {k: round(v, 4) for k, v in fit.params.items()}


# ----------------------------------------------------------------- lifetimes
def lifetimes_worker(kind: str, data: Path) -> None:
    """One lifetimes fit on the saved frame; prints a JSON line with its time and params."""
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    frame = pd.read_parquet(data)
    t0 = time.perf_counter()
    if kind == "bgf":  # per person, as users call it
        model = BetaGeoFitter().fit(frame["x"], frame["t_x"], frame["T"])
    elif kind == "ggf":
        frame = frame[(frame["x"] > 0) & (frame["monetary_value"] > 0)]
        model = GammaGammaFitter().fit(frame["x"], frame["monetary_value"])
    elif kind == "bgf_weighted":  # the distinct triples with their counts
        model = BetaGeoFitter().fit(
            frame["x"],
            frame["t_x_days"] / UNIT_DAYS,
            frame["T_days"] / UNIT_DAYS,
            weights=frame["people"],
        )
    elif kind == "ggf_weighted":  # the spend bins with their counts
        model = GammaGammaFitter().fit(frame["x"], frame["m"], weights=frame["people"])
    else:
        raise SystemExit(f"unknown lifetimes fit {kind}")
    seconds = time.perf_counter() - t0
    params = {("gamma" if k == "v" else k): round(float(v), 4) for k, v in model.params_.items()}
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "rows": len(frame),
                "params": params,
                "peak_rss_mb": round(_python_peak_mb()),
            }
        )
    )


def run_lifetimes(kind: str, data: Path, timeout: float, max_rss_mb: float) -> dict[str, object]:
    """Run one lifetimes fit in a child process; stop it at the time or memory limit."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--lifetimes-worker",
        kind,
        "--input",
        str(data),
    ]
    log = data.with_name(f"{kind}.stderr")
    t0 = time.perf_counter()
    with log.open("w") as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    peak, stopped = 0.0, None
    while child.poll() is None:
        peak = max(peak, _rss_mb(child.pid, "VmRSS") or 0.0)
        elapsed = time.perf_counter() - t0
        if elapsed > timeout:
            stopped = f"stopped after {elapsed:.0f} s (time limit), RSS {peak / 1024:.1f} GB"
        elif peak > max_rss_mb:
            stopped = f"stopped after {elapsed:.0f} s at RSS {peak / 1024:.1f} GB (memory limit)"
        if stopped:
            child.kill()
            child.wait()
            break
        time.sleep(0.5)
    out, _ = child.communicate()
    err = log.read_text()
    wall = time.perf_counter() - t0
    if stopped:
        return {"outcome": stopped}
    if child.returncode != 0:
        tail = err.strip().splitlines()[-1:] or [""]
        return {
            "outcome": f"failed (exit {child.returncode}) after {wall:.0f} s, RSS {peak / 1024:.1f} GB: {tail[0]}"
        }
    result = json.loads(out.strip().splitlines()[-1])
    result["recovery_pct"] = recovery(result["params"])
    return result


def _stop_jvm() -> None:
    """End the driver JVM this process launched, so that its heap is free for lifetimes."""
    from pyspark import SparkContext

    proc = getattr(SparkContext._gateway, "proc", None)
    if proc is not None and proc.poll() is None:
        proc.stdin.close()  # PySpark's gateway server exits at the end of its stdin
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------- benchmark
def bench(args: argparse.Namespace, customers: int) -> dict[str, object]:
    import pandas as pd
    from pyspark import StorageLevel

    from precis.config import load_config
    from precis.lifecycle import btyd, summary, value
    from precis.session import get_spark

    as_of = dt.date.fromisoformat(args.as_of)
    work = Path(args.work)
    data = orders_path(work, customers, args.seed, as_of)
    commit = checkout("lib/precis/lifecycle")
    load_start = os.getloadavg()[0]
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={work / 'lakehouse'}", "mlflow.enabled=false", *args.set],
        run_date=args.as_of,
    )
    spark = get_spark(cfg)
    keep = StorageLevel.MEMORY_AND_DISK  # as the lifecycle job persists its summaries

    def person_summary(orders):
        people = summary.person_summary(
            summary.transactions(orders, as_of), as_of, TIME_UNIT
        ).persist(keep)
        return people, people.count()

    try:
        orders = spark.read.parquet(str(data))
        order_rows = orders.count()
        line: dict[str, object] = {
            "bench": "clv",
            "command": " ".join(
                [
                    ".venv/bin/python",
                    "bench/bench_clv.py",
                    "--customers",
                    str(customers),
                    *args.passthrough,
                ]
            ),
            "commit": commit,
            "customers": customers,
            "orders": order_rows,
        }

        # Warm the JVM and the fit code on a slice, so the first timed run is not charged for it.
        sample, _ = person_summary(orders.limit(50_000))
        value.fit(sample, TIME_UNIT)
        sample.unpersist(blocking=True)

        summary_times, fit_times, people, models, triples = [], [], None, None, None
        for _ in range(args.repeats):
            if people is not None:
                people.unpersist(blocking=True)
            t0 = time.perf_counter()
            people, buyers = person_summary(orders)
            summary_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            models, triples = value.fit(people, TIME_UNIT)
            fit_times.append(time.perf_counter() - t0)

        # Where the fit's time goes: the same steps value.fit takes, once more.
        t0 = time.perf_counter()
        counts = summary.bg_nbd_counts(people).toPandas()
        collect_triples = time.perf_counter() - t0
        t0 = time.perf_counter()
        spend = summary.gamma_gamma_counts(people).toPandas()
        collect_spend = time.perf_counter() - t0
        t0 = time.perf_counter()
        btyd.fit_bg_nbd(
            counts.x, counts.t_x_days / UNIT_DAYS, counts.T_days / UNIT_DAYS, counts.people
        )
        optimise_bg = time.perf_counter() - t0
        t0 = time.perf_counter()
        btyd.fit_gamma_gamma(spend.x, spend.m, spend.people)
        optimise_gg = time.perf_counter() - t0

        python_peak = _python_peak_mb()
        memory = jvm_memory(spark)
        bg, gg = models.bg_nbd, models.gamma_gamma
        line.update(
            {
                "buyers": buyers,
                "repeat_buyers": int(spend.people.sum()),
                "distinct_triples": len(triples),
                "spend_bins": len(spend),
                "repeats": args.repeats,
                "summary_median_s": round(statistics.median(summary_times), 1),
                "summary_runs_s": [round(t, 1) for t in summary_times],
                "fit_median_s": round(statistics.median(fit_times), 1),
                "fit_runs_s": [round(t, 1) for t in fit_times],
                "fit_breakdown_s": {
                    "collect_triples": round(collect_triples, 1),
                    "collect_spend_bins": round(collect_spend, 1),
                    "optimise_bg_nbd": round(optimise_bg, 1),
                    "optimise_gamma_gamma": round(optimise_gg, 1),
                },
                "bg_nbd": _params(bg),
                "bg_nbd_iterations": bg.iterations,
                "bg_nbd_converged": bg.converged,
                "gamma_gamma": _params(gg) if gg else None,
                "gamma_gamma_iterations": gg.iterations if gg else None,
                "gamma_gamma_converged": gg.converged if gg else None,
                "recovery_pct": recovery({**bg.params, **(gg.params if gg else {})}),
                "python_peak_rss_mb": round(python_peak),
                "spark_driver_memory": spark.conf.get("spark.driver.memory", None),
                **memory,
            }
        )

        lifetimes_dir = work / f"lifetimes-c{customers}-s{args.seed}-{as_of.isoformat()}"
        if args.lifetimes:
            # The same per-person summary, collected as users do (Arrow on for the collection).
            arrow_key = "spark.sql.execution.arrow.pyspark.enabled"
            arrow_before = spark.conf.get(arrow_key)
            spark.conf.set(arrow_key, "true")
            t0 = time.perf_counter()
            per_person = people.select("x", "t_x", "T", "monetary_value").toPandas()
            line["lifetimes_collect_s"] = round(time.perf_counter() - t0, 1)
            spark.conf.set(arrow_key, arrow_before)
            line["python_peak_rss_after_collect_mb"] = round(_python_peak_mb())
            lifetimes_dir.mkdir(parents=True, exist_ok=True)
            per_person.to_parquet(lifetimes_dir / "per_person.parquet")
            del per_person
            pd.DataFrame(triples).to_parquet(lifetimes_dir / "triples.parquet")
            spend.to_parquet(lifetimes_dir / "spend_bins.parquet")
        line.update(
            {
                "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
                "spark": spark.version,
            }
        )
        people.unpersist()
    finally:
        spark.stop()
        _stop_jvm()

    if args.lifetimes:
        inputs = {
            "bgf": "per_person",
            "ggf": "per_person",
            "bgf_weighted": "triples",
            "ggf_weighted": "spend_bins",
        }
        for kind in LIFETIMES_FITS:
            line[f"lifetimes_{kind}"] = run_lifetimes(
                kind,
                lifetimes_dir / f"{inputs[kind]}.parquet",
                args.lifetimes_timeout,
                args.lifetimes_max_rss_gb * 1024,
            )
        shutil.rmtree(lifetimes_dir, ignore_errors=True)
    line.update(
        {
            "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "cores": os.cpu_count(),
            "memory_gb": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1
            ),
            "machine": platform.machine(),
        }
    )
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--as-of", default="2026-03-31", help="as-of date: the last day of the simulated year"
    )
    parser.add_argument(
        "--work", default="/tmp/bench_clv", help="cache of the simulated orders (kept)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. spark.conf.spark.driver.memory=8g (repeatable)",
    )
    parser.add_argument(
        "--no-lifetimes", dest="lifetimes", action="store_false", help="skip the lifetimes fits"
    )
    parser.add_argument(
        "--lifetimes-timeout", type=float, default=1200.0, help="seconds per lifetimes fit"
    )
    parser.add_argument(
        "--lifetimes-max-rss-gb", type=float, default=12.0, help="memory limit per lifetimes fit"
    )
    parser.add_argument("--lifetimes-worker", choices=LIFETIMES_FITS, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lifetimes_worker:
        lifetimes_worker(args.lifetimes_worker, Path(args.input))
        return

    args.passthrough = [
        "--repeats",
        str(args.repeats),
        "--seed",
        str(args.seed),
        "--as-of",
        args.as_of,
        "--work",
        args.work,
        *(x for s in args.set for x in ("--set", s)),
    ]
    if not args.lifetimes:
        args.passthrough.append("--no-lifetimes")
    if args.lifetimes_timeout != 1200.0:
        args.passthrough += ["--lifetimes-timeout", f"{args.lifetimes_timeout:g}"]
    if args.lifetimes_max_rss_gb != 12.0:
        args.passthrough += ["--lifetimes-max-rss-gb", f"{args.lifetimes_max_rss_gb:g}"]
    if len(args.customers) > 1:
        # One process per size: peak RSS and JVM peaks are per process.
        failed = 0
        for customers in args.customers:
            failed |= subprocess.call(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--customers",
                    str(customers),
                    *args.passthrough,
                ]
            )
        raise SystemExit(failed)
    print(json.dumps(bench(args, args.customers[0])))


if __name__ == "__main__":
    main()
