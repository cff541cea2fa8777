"""What an ingest run did, per dataset: the accounting, its table rows, metrics and printout.

Every row read is accounted for: rows in = silver inserts + silver updates + rows
already in silver + duplicates in the batch + quarantined rows + suppressed rows. Files
rejected whole (``precis.ingest.files``) are not read: they and the rows their footers
count are shown beside, as are the files still arriving.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from precis.ingest.batch import BatchCounts

if TYPE_CHECKING:
    from precis.ingest.files import Rejected
    from precis.storage import LandingFile

RUNS_SCHEMA = (
    "run_id string, run_date date, dataset string, files int, rows_in long, "
    "silver_inserted long, silver_updated long, duplicates long, quarantined long, "
    "ids_blocked long, ids_invalid long, error string, ingested_at timestamp, "
    # Added later: tables written before get them (null) by schema evolution.
    "rejected_files int, rejected_rows long, waiting_files int, suppressed long"
)
FILES_SCHEMA = (
    "dataset string, path string, size long, modified long, run_id string, "
    "ingested_at timestamp, status string, reason string, rows long"
)
#: ``meta/ingest_files.status``; a row written before the column existed (null) was ingested.
INGESTED, REJECTED = "ingested", "rejected"


@dataclass
class Summary:
    dataset: str
    files: int = 0
    rows_in: int = 0
    silver_inserted: int = 0
    silver_updated: int = 0
    already_in_silver: int = 0
    duplicates_in_batch: int = 0
    quarantined: int = 0
    ids_blocked: int = 0
    ids_invalid: int = 0
    # Rows of forgotten people (meta/suppressions), dropped before bronze.
    suppressed: int = 0
    # Files rejected whole, and the rows of those whose count is known (parquet footers);
    # files still arriving, left for the next run. Neither is in rows_in.
    rejected_files: int = 0
    rejected_rows: int = 0
    waiting_files: int = 0
    error: str = ""
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return self.already_in_silver + self.duplicates_in_batch

    def balanced(self) -> bool:
        return self.rows_in == (
            self.silver_inserted
            + self.silver_updated
            + self.duplicates
            + self.quarantined
            + self.suppressed
        )

    def skipped(self, rejected: Sequence[Rejected], waiting: int) -> None:
        """Count the files left out of the batch: ``rejected`` ones, ``waiting`` ones."""
        self.rejected_files = len(rejected)
        self.rejected_rows = sum(r.rows or 0 for r in rejected)
        self.waiting_files = waiting

    def describe(self) -> str:
        skipped = (
            f", {self.rejected_files} file(s) rejected ({self.rejected_rows} rows known)"
            if self.rejected_files
            else ""
        ) + (f", {self.waiting_files} file(s) waiting" if self.waiting_files else "")
        if self.error:
            return "failed"  # the error is logged, and printed with the counts
        if not self.files:
            return ("no new file read" + skipped) if skipped else "up to date, no new files"
        return (
            f"{self.files} new file(s), silver +{self.silver_inserted} ~{self.silver_updated}, "
            f"{self.duplicates} duplicate(s), {self.quarantined} quarantined"
            + (f", {self.suppressed} suppressed" if self.suppressed else "")
            + skipped
        )


def accounted(
    dataset: str,
    files: int,
    batch: BatchCounts,
    silver: Mapping[str, int],
    merged: Mapping[str, int],
    suppressed: int = 0,
) -> Summary:
    """The summary of an ingested batch: its counts, the counts of the rows bound for
    silver (``silver_metrics``), what the MERGE inserted and updated, and the rows of
    forgotten people left out before bronze."""
    candidates = int(silver["rows"])
    return Summary(
        dataset,
        files=files,
        rows_in=batch.rows + suppressed,
        silver_inserted=merged["inserted"],
        silver_updated=merged["updated"],
        already_in_silver=candidates - merged["inserted"] - merged["updated"],
        duplicates_in_batch=batch.rows - batch.quarantined - candidates,
        quarantined=batch.quarantined,
        ids_blocked=int(silver.get("ids_blocked", 0)),
        ids_invalid=int(silver.get("ids_invalid", 0)),
        suppressed=suppressed,
        reasons=batch.reasons,
    )


def run_rows(
    summaries: Mapping[str, Summary], run_id: str, run_date: dt.date, ingested_at: dt.datetime
) -> list[tuple]:
    """Rows of ``meta/ingest_runs`` (``RUNS_SCHEMA``), one per dataset."""
    return [
        (
            run_id,
            run_date,
            s.dataset,
            s.files,
            s.rows_in,
            s.silver_inserted,
            s.silver_updated,
            s.duplicates,
            s.quarantined,
            s.ids_blocked,
            s.ids_invalid,
            s.error,
            ingested_at,
            s.rejected_files,
            s.rejected_rows,
            s.waiting_files,
            s.suppressed,
        )
        for s in summaries.values()
    ]


def file_rows(
    done: Mapping[str, Sequence[LandingFile]],
    rejected: Mapping[str, Sequence[Rejected]],
    run_id: str,
    ingested_at: dt.datetime,
) -> list[tuple]:
    """Rows of ``meta/ingest_files`` (``FILES_SCHEMA``): the files ingested and the files
    rejected, per dataset. Either way the same file is not read again."""
    stamp = (run_id, ingested_at)
    return [
        (dataset, f.path, f.size, f.modified, *stamp, INGESTED, None, None)
        for dataset, files in done.items()
        for f in files
    ] + [
        (dataset, r.file.path, r.file.size, r.file.modified, *stamp, REJECTED, r.reason, r.rows)
        for dataset, files in rejected.items()
        for r in files
    ]


def metrics(summaries: Mapping[str, Summary]) -> dict[str, float]:
    """``<dataset>.<count>`` and ``<dataset>.quarantine.<reason>`` for MLflow."""
    found: dict[str, float] = {}
    for s in summaries.values():
        for name, value in asdict(s).items():
            if isinstance(value, int):
                found[f"{s.dataset}.{name}"] = value
        found[f"{s.dataset}.duplicates"] = s.duplicates
        for reason, count in s.reasons.items():
            found[f"{s.dataset}.quarantine.{reason.replace(':', '.')}"] = count
    return found


def render(summaries: Mapping[str, Summary]) -> str:
    header = (
        "dataset",
        "files",
        "rows_in",
        "silver_new",
        "silver_upd",
        "duplicates",
        "quarantined",
        "ids_blocked",
        "ids_invalid",
        "suppressed",
        "rejected",
        "waiting",
    )
    lines = ["  ".join(f"{h:>12}" for h in header)]
    for s in summaries.values():
        values = (
            s.dataset,
            s.files,
            s.rows_in,
            s.silver_inserted,
            s.silver_updated,
            s.duplicates,
            s.quarantined,
            s.ids_blocked,
            s.ids_invalid,
            s.suppressed,
            s.rejected_files,
            s.waiting_files,
        )
        lines.append(
            "  ".join(f"{v:>12}" for v in values) + ("  FAILED: " + s.error if s.error else "")
        )
    return "\n".join(lines)
