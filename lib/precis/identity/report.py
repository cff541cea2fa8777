"""A run's statistics: the ``meta/identity_runs`` row, MLflow metrics and the summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
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


def _counts(stats: Stats) -> dict[str, int]:
    # meta/identity_runs keeps its columns; how much was reclustered goes to MLflow.
    return {k: v for k, v in asdict(stats).items() if isinstance(v, int) and k != "reclustered"}


def runs_row(
    spark: SparkSession, stats: Stats, *, run_id: str, run_date: dt.date, finished_at: dt.datetime
) -> DataFrame:
    """The run's ``meta/identity_runs`` row."""
    counts = _counts(stats)
    return spark.createDataFrame(
        [(run_id, run_date, finished_at, *counts.values())],
        "run_id string, run_date date, finished_at timestamp, "
        + ", ".join(f"{k} long" for k in counts),
    )


def metrics(stats: Stats) -> dict[str, float]:
    """MLflow metrics: the counts, changes and guards by kind, one_ids by size."""
    out: dict[str, float] = {**_counts(stats), "reclustered": stats.reclustered}
    out.update({f"changes.{k}": v for k, v in stats.changes.items()})
    out.update({f"guards.{k}": v for k, v in stats.guards.items()})
    out.update({f"one_ids_with_{k}_ids": v for k, v in stats.sizes.items() if k[0].isdigit()})
    return out


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
