"""One landed batch of a dataset, from its bronze rows to silver and quarantine rows.

``build_batch`` is ingest's pure entry: bronze rows in, lazy frames and the aggregate
columns that count them out. The job keeps ``typed`` (both other frames read it),
aggregates ``batch_metrics`` over it once, and observes ``silver_metrics`` while it
computes ``silver`` for the MERGE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis import tables as T
from precis.errors import PrecisError
from precis.frames import row_count
from precis.ingest import conform
from precis.ingest import identifiers as ids
from precis.schemas import DatasetSpec

#: Metric names: rows of the batch, and those quarantined (``batch_metrics``); rows
#: bound for silver and their blocked and invalid identifiers (``silver_metrics``).
ROWS, QUARANTINED, BLOCKED, INVALID = "rows", "quarantined", "ids_blocked", "ids_invalid"
_REASON = "reason "


class DatasetFailed(PrecisError):
    """One dataset could not be ingested; the others still are."""


@dataclass(frozen=True)
class IngestBatch:
    typed: DataFrame  # every row of the batch, typed, with its reasons
    quarantine: DataFrame  # the rows with a reason, as bronze/quarantine holds them
    silver: DataFrame  # one row per silver key, in silver's columns
    batch_metrics: tuple[Column, ...]  # aggregates over ``typed``: read with ``batch_counts``
    silver_metrics: tuple[Column, ...]  # aggregates over ``silver``


@dataclass(frozen=True)
class Quarantined:
    """A written batch's part of the run's one quarantine write: the condition that
    selects the batch's stored rows (a rewritten file's old ones too), and its new rows
    (None when it has none)."""

    condition: str
    rows: DataFrame | None


def quarantine_write(batches: Sequence[Quarantined]) -> tuple[DataFrame | None, str]:
    """(rows, condition) of one write of ``bronze/quarantine`` for ``batches``: every
    batch's new rows, and the condition that selects every batch's stored ones. Datasets
    keep the columns they have (``_id_key`` only where identifiers are hashed)."""
    frames = [b.rows for b in batches if b.rows is not None]
    rows = None
    for frame in frames:
        rows = frame if rows is None else rows.unionByName(frame, allowMissingColumns=True)
    return rows, " OR ".join(f"({b.condition})" for b in batches)


@dataclass(frozen=True)
class BatchCounts:
    rows: int
    quarantined: int
    reasons: dict[str, int]  # rows per quarantine reason that occurs


def build_batch(
    batch: DataFrame,
    spec: DatasetSpec,
    settings: conform.IdentifierSettings,
    checks: conform.ValueChecks = conform.DEFAULT_CHECKS,
) -> IngestBatch:
    """Type the bronze ``batch``, split off the rows with reasons, resolve identifiers,
    keep the newest row per silver key and select silver's columns."""
    typed = conform.typed(batch, spec, settings.rules, checks)
    valid, rejected = conform.split(typed)
    if spec.identified:
        valid = conform.resolve_identifiers(valid, settings)
    silver = T.SILVER[spec.name]
    newest, _ = conform.deduplicate(valid, silver.keys, silver.newer)
    return IngestBatch(
        typed=typed,
        quarantine=conform.quarantine_rows(rejected, spec.name),
        silver=newest.select(*conform.silver_columns(spec)),
        batch_metrics=tuple(batch_metrics(spec)),
        silver_metrics=tuple(silver_metrics(spec)),
    )


def batch_metrics(spec: DatasetSpec) -> list[Column]:
    """Rows, quarantined rows and rows per possible reason, over ``typed``'s output."""
    bad = F.size(F.col(conform.REASONS)) > 0
    return [
        row_count(),
        F.count_if(bad).alias(QUARANTINED),
        *[
            F.count_if(F.array_contains(F.col(conform.REASONS), reason)).alias(_REASON + reason)
            for reason in conform.reasons(spec)
        ],
    ]


def batch_counts(values: Mapping[str, Any]) -> BatchCounts:
    """``batch_metrics``' values as counts; reasons no row holds are left out."""
    reasons = {
        name.removeprefix(_REASON): int(n)
        for name, n in values.items()
        if name.startswith(_REASON) and n
    }
    return BatchCounts(int(values[ROWS]), int(values[QUARANTINED]), reasons)


def silver_metrics(spec: DatasetSpec) -> list[Column]:
    """Rows bound for silver and, for identified datasets, blocked and invalid identifiers."""
    metrics = [row_count()]
    if spec.identified:
        status = F.col("id_status")
        metrics += [
            F.count_if(status == ids.STATUS_BLOCKED).alias(BLOCKED),
            F.count_if(status == ids.STATUS_INVALID).alias(INVALID),
        ]
    return metrics


def require_columns(
    columns: Sequence[str], spec: DatasetSpec, where: str, orders_paid: bool = False
) -> None:
    """Fail the dataset, naming it and the columns, unless every required column landed;
    orders also need ``status`` unless ``orders_paid`` (``ingest.orders_without_status_are_paid``)
    says what its absence means."""
    missing = conform.missing_required_columns(columns, spec)
    if missing:
        raise DatasetFailed(
            f"dataset '{spec.name}' ({where}) lacks required column(s): {', '.join(missing)}"
        )
    if spec.name == "orders" and "status" not in columns and not orders_paid:
        raise DatasetFailed(
            f"dataset 'orders' ({where}) has no column 'status', so refunds cannot be told "
            "from sales; land it, or set ingest.orders_without_status_are_paid: true if "
            "every order of this source is paid"
        )


def sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def batch_condition(files: Sequence[str] | None, landing_path: str) -> str:
    """The SQL condition on ``_source_file`` of a batch's bronze (and quarantine) rows:
    the given files, or (``files`` None) every version of a Delta landing table."""
    if files is None:
        return f"{conform.SOURCE_FILE} LIKE {sql_list([landing_path + '@v%'])}"
    return f"{conform.SOURCE_FILE} IN ({sql_list(list(files) or [''])})"
