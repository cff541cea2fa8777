"""ingest: landing files -> bronze (as landed + lineage) -> silver (typed, clean, hashed).

Incremental and idempotent: a registry of ingested files (``meta/ingest_files``) means
a rerun over the same files does nothing; a new or rewritten file replaces exactly its
own rows in bronze and quarantine; silver is MERGEd on the contract's keys, where a
late-arriving older copy of a record never overwrites a newer one.

Every landed row is accounted for: rows in = silver inserts + silver updates + rows
already in silver + duplicates in the batch + quarantined rows.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import DATASETS, Config
from precis.errors import MissingDatasetError, PrecisError
from precis.ingest import conform
from precis.progress import Progress, log
from precis.runner import job_main
from precis.schemas import SPECS
from precis.storage import Lakehouse, LandingFile, list_landing_files, read_landing
from precis.tracking import job_run

JOB = "ingest"


class DatasetFailed(PrecisError):
    """One dataset could not be ingested; the others still are."""


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
    error: str = ""
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return self.already_in_silver + self.duplicates_in_batch

    def balanced(self) -> bool:
        return self.rows_in == (
            self.silver_inserted + self.silver_updated + self.duplicates + self.quarantined
        )


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def new_files(lake: Lakehouse, dataset: str, files: list[LandingFile]) -> list[LandingFile]:
    if not files or not lake.exists(T.INGEST_FILES):
        return files
    seen = {
        (r["path"], r["size"], r["modified"])
        for r in lake.read(T.INGEST_FILES).filter(F.col("dataset") == dataset).collect()
    }
    return [f for f in files if (f.path, f.size, f.modified) not in seen]


def ingest_dataset(
    spark: SparkSession,
    cfg: Config,
    lake: Lakehouse,
    dataset: str,
    files: list[LandingFile],
    settings: conform.IdentifierSettings,
    run_id: str,
    ingested_at: dt.datetime,
) -> Summary:
    spec = SPECS[dataset]
    summary = Summary(dataset, files=len(files))
    fmt = cfg.landing_format(dataset)
    landed = read_landing(spark, files, fmt, cfg.landing_path(dataset))
    landed_columns = [c for c in landed.columns if c != conform.SOURCE_FILE]
    missing = conform.missing_required_columns(landed_columns, spec)
    if missing:
        raise DatasetFailed(
            f"dataset '{dataset}' ({cfg.landing_path(dataset)}) lacks required column(s): {', '.join(missing)}"
        )

    # Bronze: the batch as landed; replacing this batch's own files keeps reruns exact.
    bronze = conform.with_lineage(landed, landed_columns, run_id, F.lit(ingested_at))
    if fmt == "delta":
        batch_condition = f"_source_file LIKE {_sql_list([cfg.landing_path(dataset) + '@v%'])}"
    else:
        batch_files = [r[0] for r in landed.select(conform.SOURCE_FILE).distinct().collect()]
        batch_condition = f"_source_file IN ({_sql_list(batch_files or [''])})"
    lake.replace_where(bronze, T.BRONZE[dataset], batch_condition, evolve=True)
    batch = lake.read(T.BRONZE[dataset]).filter(batch_condition)

    typed = conform.typed(batch, spec, settings.rules).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        summary.rows_in = typed.count()
        valid, rejected = conform.split(typed)
        summary.reasons = {
            r["reason"]: int(r["count"])
            for r in rejected.select(F.explode(conform.REASONS).alias("reason"))
            .groupBy("reason")
            .count()
            .collect()
        }
        summary.quarantined = rejected.count() if summary.reasons else 0
        # Rewriting a file must also drop its old quarantine rows, so write even when
        # this batch has none, unless there is no quarantine table at all yet.
        if summary.quarantined or lake.exists(T.QUARANTINE):
            lake.replace_where(
                conform.quarantine_rows(rejected, dataset),
                T.QUARANTINE,
                f"dataset = '{dataset}' AND {batch_condition}",
            )

        if spec.identified:
            valid = conform.resolve_identifiers(valid, settings)
        silver = T.SILVER[dataset]
        kept, _ = conform.deduplicate(valid, silver.keys, silver.newer)
        kept = kept.select(*conform.silver_columns(spec)).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            candidates = kept.count()
            summary.duplicates_in_batch = summary.rows_in - summary.quarantined - candidates
            if spec.identified:
                status_counts = {r[0]: r[1] for r in kept.groupBy("id_status").count().collect()}
                summary.ids_blocked = int(status_counts.get("blocked", 0))
                summary.ids_invalid = int(status_counts.get("invalid", 0))
            counts = lake.merge_upsert(kept, silver, unique=True)  # deduplicated just above
        finally:
            kept.unpersist()
    finally:
        typed.unpersist()
    summary.silver_inserted = counts["inserted"]
    summary.silver_updated = counts["updated"]
    summary.already_in_silver = candidates - counts["inserted"] - counts["updated"]
    return summary


def record_files(
    spark: SparkSession,
    lake: Lakehouse,
    done: dict[str, list[LandingFile]],
    run_id: str,
    ingested_at: dt.datetime,
) -> None:
    """Mark files as ingested, once per run. Written last: if a run dies before this,
    the rerun redoes those files, which every step above makes harmless."""
    rows = [
        (d, f.path, f.size, f.modified, run_id, ingested_at)
        for d, files in done.items()
        for f in files
    ]
    if not rows:
        return
    registry = spark.createDataFrame(
        rows,
        "dataset string, path string, size long, modified long, run_id string, ingested_at timestamp",
    )
    lake.append_log(registry, T.INGEST_FILES)


def run(spark: SparkSession, cfg: Config) -> dict[str, Summary]:
    lake = Lakehouse.from_config(spark, cfg)
    wanted = cfg.ingest.datasets or DATASETS
    settings = conform.IdentifierSettings.from_config(cfg)
    landing = {
        d: list_landing_files(spark, cfg.landing_path(d), cfg.landing_format(d)) for d in wanted
    }
    absent = [d for d, files in landing.items() if not files]
    if absent and cfg.ingest.datasets:
        raise MissingDatasetError(
            f"landing dataset(s) not found: {', '.join(f'{d} ({cfg.landing_path(d)})' for d in absent)}"
        )
    for d in absent:
        log.info("[%s] %s: no landing data at %s, skipped", JOB, d, cfg.landing_path(d))
    present = [d for d in wanted if landing[d]]
    if not present:
        raise MissingDatasetError(
            f"no landing data under {cfg.root}/landing; run the generate job or land files first"
        )

    summaries: dict[str, Summary] = {}
    done: dict[str, list[LandingFile]] = {}
    progress = Progress(JOB, len(present))
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with job_run(cfg, JOB) as tracker:
        run_id = tracker.key
        for dataset in present:
            with progress.step(dataset) as step:
                todo = new_files(lake, dataset, landing[dataset])
                if not todo:
                    summaries[dataset] = Summary(dataset)
                    step.detail = "up to date, no new files"
                    continue
                try:
                    summary = ingest_dataset(
                        spark, cfg, lake, dataset, todo, settings, run_id, ingested_at
                    )
                    done[dataset] = todo
                except DatasetFailed as exc:
                    summary = Summary(dataset, files=len(todo), error=str(exc))
                    log.error("[%s] %s", JOB, exc)
                summaries[dataset] = summary
                step.rows = summary.rows_in
                step.detail = (
                    f"{summary.files} new file(s), silver +{summary.silver_inserted} "
                    f"~{summary.silver_updated}, {summary.duplicates} duplicate(s), "
                    f"{summary.quarantined} quarantined"
                )
        record_files(spark, lake, done, run_id, ingested_at)
        _record(spark, lake, cfg, tracker, run_id, ingested_at, summaries)
    print(render(summaries))
    progress.finish()
    failed = [s for s in summaries.values() if s.error]
    if failed:
        raise DatasetFailed("; ".join(s.error for s in failed))
    return summaries


def _record(spark, lake, cfg, tracker, run_id, ingested_at, summaries) -> None:
    rows = [
        (
            run_id,
            cfg.run_date,
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
        )
        for s in summaries.values()
    ]
    df = spark.createDataFrame(
        rows,
        "run_id string, run_date date, dataset string, files int, rows_in long, silver_inserted long, "
        "silver_updated long, duplicates long, quarantined long, ids_blocked long, ids_invalid long, "
        "error string, ingested_at timestamp",
    )
    lake.append_log(df, T.INGEST_RUNS)
    metrics = {}
    for s in summaries.values():
        for name, value in asdict(s).items():
            if isinstance(value, int):
                metrics[f"{s.dataset}.{name}"] = value
        metrics[f"{s.dataset}.duplicates"] = s.duplicates
        for reason, count in s.reasons.items():
            metrics[f"{s.dataset}.quarantine.{reason.replace(':', '.')}"] = count
    tracker.log_metrics(metrics)
    tracker.log_dict({d: asdict(s) for d, s in summaries.items()}, "ingest_summary.json")


def render(summaries: dict[str, Summary]) -> str:
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
        )
        lines.append(
            "  ".join(f"{v:>12}" for v in values) + ("  FAILED: " + s.error if s.error else "")
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
