"""Plot ``bench_pipeline.py`` results: each job's seconds against people, log-log.

    .venv/bin/python bench/plot_pipeline.py bench/results/pipeline.jsonl \\
        --out docs/images/pipeline_scaling.png

Reads the JSON lines ``bench_pipeline.py`` prints (one per world size; for a size run
more than once, the last line counts, except that the parts of one world timed with
``--root``/``--jobs`` join; the jobs' own printed summaries are skipped) and draws one line per job, their total and the
scan bound, with a dotted line of slope one (cost proportional to people) through the
smallest total, so a job that grows faster than linearly stands out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt


def load(paths: list[Path]) -> list[dict]:
    """The last result per world size, smallest first."""
    by_size: dict[int, dict] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            # The jobs print their summaries on the same stdout: only the result lines.
            if line.startswith('{"bench"'):
                result = json.loads(line)
                if result.get("bench") != "pipeline":
                    continue
                size = int(result["people"])
                if (
                    size in by_size
                    and result.get("root")
                    and (result["root"] == by_size[size].get("root"))
                ):
                    # A later part of the same world (--root, --jobs): its jobs join.
                    merged = dict(
                        by_size[size], jobs_s={**by_size[size]["jobs_s"], **result["jobs_s"]}
                    )
                    merged["total_s"] = round(sum(merged["jobs_s"].values()), 1)
                    merged["scan_bound_s"] = merged.get("scan_bound_s") or result["scan_bound_s"]
                    merged["checkout"] = ", ".join(
                        dict.fromkeys(str(r.get("checkout")) for r in (by_size[size], result))
                    )
                    result = merged
                by_size[size] = result
    return [by_size[n] for n in sorted(by_size)]


def plot(results: list[dict], out: Path) -> None:
    if len(results) < 2:
        raise SystemExit("need results for at least two world sizes")
    people = [r["people"] for r in results]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    jobs = list(dict.fromkeys(j for r in results for j in r["jobs_s"]))
    for job in jobs:
        ax.plot(people, [r["jobs_s"].get(job) for r in results], marker="o", label=job)
    ax.plot(people, [r["total_s"] for r in results], "k-", marker="s", lw=2, label="total")
    ax.plot(people, [r["scan_bound_s"] for r in results], "k--", marker="^", label="scan bound")
    first = results[0]
    ax.plot(
        people,
        [first["total_s"] * n / people[0] for n in people],
        "k:",
        lw=1,
        label="linear from the smallest total",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("people in the generated world")
    ax.set_ylabel("seconds (one run)")
    commits = sorted({str(r.get("checkout") or "?") for r in results})
    ax.set_title(f"Pipeline jobs against world size, 2 vCPU, local[*] ({', '.join(commits)})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="files of bench_pipeline JSON lines")
    parser.add_argument("--out", type=Path, default=Path("docs/images/pipeline_scaling.png"))
    args = parser.parse_args()
    plot(load(args.results), args.out)


if __name__ == "__main__":
    main()
