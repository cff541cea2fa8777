"""Which landing datasets and files an ingest run takes, and reading them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, StructType

from precis import tables as T
from precis.columns import CORRUPT_RECORD, ID_VALUE, SOURCE_FILE
from precis.config import Config
from precis.errors import ConfigError, MissingDatasetError
from precis.ingest import conform
from precis.ingest.batch import DatasetFailed, require_columns
from precis.ingest.files import (
    Rejected,
    Waiting,
    cause,
    failed_file,
    ready,
    type_reasons,
    unreadable,
    write_folder,
)
from precis.progress import log
from precis.schemas import SPECS, DatasetSpec
from precis.storage import (
    Lakehouse,
    LandingFile,
    LandingFileError,
    list_landing_files,
    read_landing,
)
from precis.storage.landing import count_csv_rows, folders_with_marker, same_file


@dataclass(frozen=True)
class Batch:
    """What a run takes of a dataset's new files."""

    files: list[LandingFile]  # the files read
    landed: DataFrame | None  # their rows as landed (None: no file to read)
    columns: list[str]  # their landed columns
    rejected: list[Rejected] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)


def present_datasets(
    landing: Mapping[str, Sequence[LandingFile]],
    requested: Sequence[str],
    path_of: Callable[[str], str],
    root: str,
) -> list[str]:
    """The datasets with landed files; an explicitly ``requested`` absent one is an error."""
    absent = [d for d, files in landing.items() if not files]
    if absent and requested:
        found = ", ".join(f"{d} ({path_of(d)})" for d in absent)
        raise MissingDatasetError(f"landing dataset(s) not found: {found}")
    for d in absent:
        log.info("[ingest] %s: no landing data at %s, skipped", d, path_of(d))
    present = [d for d in landing if landing[d]]
    if not present:
        raise MissingDatasetError(
            f"no landing data under {root}/landing; run the generate job or land files first"
        )
    return present


def landed_files(spark: SparkSession, cfg: Config, dataset: str) -> list[LandingFile]:
    """The files under ``landing.<dataset>.path``; a path Spark cannot list is an error
    naming the key (a missing one means the dataset is absent)."""
    path = cfg.landing_path(dataset)
    try:
        return list_landing_files(spark, path, cfg.landing_format(dataset))
    except Exception as exc:  # whatever the file system says, the user needs the key
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"landing.{dataset}.path ({path}) cannot be listed: {first}") from exc


def new_files(lake: Lakehouse, dataset: str, files: list[LandingFile]) -> list[LandingFile]:
    """The files ``meta/ingest_files`` does not hold (same path, size and modification
    time), ingested or rejected."""
    if not files or not lake.exists(T.INGEST_FILES):
        return files
    registry = lake.read(T.INGEST_FILES).filter(F.col("dataset") == dataset).collect()
    seen = {(r["path"], r["size"], r["modified"]) for r in registry}
    return [f for f in files if (f.path, f.size, f.modified) not in seen]


def next_batch(
    spark: SparkSession, cfg: Config, lake: Lakehouse, dataset: str, listed: list[LandingFile]
) -> Batch:
    """The new files of ``dataset`` that have finished arriving, read; those still
    arriving wait, and those that cannot be read are rejected."""
    todo, waiting = arrived(spark, cfg, dataset, new_files(lake, dataset, listed))
    if not todo:
        return Batch([], None, [], waiting=waiting)
    batch = read_batch(spark, cfg, dataset, todo, bronze_types(lake, dataset))
    return Batch(batch.files, batch.landed, batch.columns, batch.rejected, waiting)


R = TypeVar("R")


def read_through(
    spark: SparkSession,
    cfg: Config,
    lake: Lakehouse,
    dataset: str,
    batch: Batch,
    ingest: Callable[[Batch], R],
) -> tuple[R | None, Batch]:
    """``ingest(batch)``; if it fails reading a file whose content is broken past what
    ``read_batch`` checks (a damaged data page or compressed block, found only when
    every row is read), that file is rejected and the rest ingested again. (None, the
    batch) when no file is left. Every write of ``ingest`` before its first read of all
    rows (the bronze write) is one Delta commit, so a failed attempt leaves nothing.

    A file is rejected only if reading all of it alone fails again: a failure of the
    file system or the network fails the dataset, and the next run retries it."""
    while True:
        try:
            return ingest(batch), batch
        except Exception as exc:
            broken = _broken(spark, cfg, dataset, batch, str(exc))
            if broken is None:
                raise
        log.error("[ingest] %s: file rejected: %s: %s", dataset, broken.file.path, broken.reason)
        files = [f for f in batch.files if f.path != broken.file.path]
        rest = read_batch(spark, cfg, dataset, files, bronze_types(lake, dataset))
        rejected = sorted([*batch.rejected, broken, *rest.rejected], key=lambda r: r.file.path)
        batch = Batch(rest.files, rest.landed, rest.columns, rejected, batch.waiting)
        if not batch.files:
            return None, batch


def _broken(
    spark: SparkSession, cfg: Config, dataset: str, batch: Batch, error: str
) -> Rejected | None:
    """The file of ``batch`` that ``error`` names, if reading every value of it alone
    fails too; its rows counted where that still works (a parquet footer)."""
    named, fmt = failed_file(error), cfg.landing_format(dataset)
    if named is None or fmt == "delta":
        return None
    found = [f for f in batch.files if same_file(f.path) == same_file(named)]
    if not found:
        return None
    where, encoding = cfg.landing_path(dataset), cfg.landing_encoding(dataset)
    alone = read_landing(spark, found, fmt, where, encoding)
    try:
        alone.agg(F.sum(F.hash(*alone.columns))).collect()  # every value decoded
        return None
    except Exception as again:
        why = "unreadable: " + cause(str(again))
    try:
        rows: int | None = alone.count()
    except Exception:
        rows = None
    return Rejected(found[0], why, rows)


def arrived(
    spark: SparkSession, cfg: Config, dataset: str, files: list[LandingFile]
) -> tuple[list[LandingFile], list[Waiting]]:
    """(files to read now, files still arriving): ``ingest.settle_seconds`` and
    ``ingest.require_marker``. A Delta landing table's versions are whole when listed."""
    settle, marker = cfg.ingest.settle_seconds, cfg.ingest.require_marker
    if not files or cfg.landing_format(dataset) == "delta" or not (settle or marker):
        return files, []
    marked = folders_with_marker(spark, {write_folder(f.path) for f in files}) if marker else None
    take, wait = ready(files, int(time.time() * 1000), settle, marked)
    for w in wait:
        log.info("[ingest] %s: %s waits for the next run: %s", dataset, w.file.path, w.why)
    return take, wait


def bronze_types(lake: Lakehouse, dataset: str) -> dict[str, DataType]:
    """The types ``bronze/<dataset>`` holds landed columns as: later files must match
    them. Left out: ingest's own columns and those it stores as text whatever landed
    (the identifier, a broken line)."""
    table = T.BRONZE[dataset]
    if not lake.exists(table):
        return {}
    own = {*conform.BRONZE_META, conform.BRONZE_KEY, ID_VALUE, CORRUPT_RECORD}
    return {f.name: f.dataType for f in lake.read(table).schema.fields if f.name not in own}


def read_batch(
    spark: SparkSession,
    cfg: Config,
    dataset: str,
    files: Sequence[LandingFile],
    known: Mapping[str, DataType] | None = None,
) -> Batch:
    """The landed rows of ``files`` and their landed columns. ``known``: the types of
    earlier batches (``bronze_types``).

    A file whose content Spark cannot read on its own (``files.unreadable``), a parquet
    file whose column types do not fit (``files.type_reasons``), or a csv file whose
    header names a column twice or leaves a name empty, is rejected: logged, left out,
    and the others read. Another error reading a file (the file system, the network) or
    a required column missing fails the dataset (``DatasetFailed``, naming it), not the
    run.

    The files are checked one by one only when reading them together fails: reading
    them together is needed anyway, and its first, eager step (csv: each file's first
    line; json: the pass that finds the columns; parquet: every footer) reads what a
    check would. So a batch of good files costs no extra pass; a batch with a bad file
    costs one small Spark job per file, once, as a rejected file is not read again.
    json contract columns are read as text (``read_landing``'s ``types``), so an object
    in one file and a string in another read alike, and a value that fits no type is
    a ``malformed_record`` row, not a rejected file.
    """
    where, fmt, spec = cfg.landing_path(dataset), cfg.landing_format(dataset), SPECS[dataset]
    known = dict(known or {})
    types = {c: known.get(c, StringType()) for c in spec.column_names} if fmt == "json" else None
    bronze = T.BRONZE[dataset].ref

    def read(chosen: Sequence[LandingFile]) -> DataFrame:
        return read_landing(spark, chosen, fmt, where, cfg.landing_encoding(dataset), types)

    landed: DataFrame | None = None
    headers: list[Rejected] = []
    try:
        try:
            landed = read(files)
        except LandingFileError as exc:  # csv headers naming no column for sure
            headers = _bad_headers(spark, exc, files, cfg.landing_encoding(dataset))
            files = [f for f in files if f.path not in exc.reasons]
            landed = read(files) if files else None
        if (
            landed is not None
            and fmt == "parquet"
            and type_reasons({"": _data(landed)}, spec, known, bronze)
        ):
            landed = None  # some file holds a column bronze cannot take: find which
    except Exception as exc:  # Spark's own errors: which file, the check below finds
        if fmt == "delta":
            raise
        why = cause(str(exc))
        log.warning("[ingest] %s: reading the batch failed (%s); checking each file", dataset, why)
    rejected: list[Rejected] = []
    if landed is None and files:
        rejected = _check_each(read, files, spec, fmt, known, bronze)
        out = {r.file.path for r in rejected}
        files = [f for f in files if f.path not in out]
        try:
            landed = read(files) if files else None
        except DatasetFailed:
            raise
        except Exception as exc:  # what no file does on its own: the dataset fails
            raise DatasetFailed(f"dataset '{dataset}' ({where}): {cause(str(exc))}") from exc
    rejected = sorted(headers + rejected, key=lambda r: r.file.path)
    for r in rejected:
        log.error("[ingest] %s: file rejected: %s: %s", dataset, r.file.path, r.reason)
    if landed is None:
        return Batch([], None, [], rejected)
    columns = [c for c in landed.columns if c != SOURCE_FILE]
    require_columns(columns, spec, where, cfg.ingest.orders_without_status_are_paid)
    return Batch(list(files), landed, columns, rejected)


def _bad_headers(
    spark: SparkSession, error: LandingFileError, files: Sequence[LandingFile], encoding: str
) -> list[Rejected]:
    """The csv files ``error`` names, rejected with their rows counted: a header naming a
    column twice (or none) leaves no column of the file certain."""
    return [
        Rejected(f, "bad header: " + error.reasons[f.path], count_csv_rows(spark, f.path, encoding))
        for f in files
        if f.path in error.reasons
    ]


def _check_each(
    read: Callable[[Sequence[LandingFile]], DataFrame],
    files: Sequence[LandingFile],
    spec: DatasetSpec,
    fmt: str,
    known: Mapping[str, DataType],
    bronze: str,
) -> list[Rejected]:
    """The files to reject: those whose content cannot be read on their own, then
    parquet files whose column types do not fit (their rows counted from the footer).
    Another error reading a file fails the dataset for this run (``files.unreadable``)."""
    frames: dict[str, DataFrame] = {}
    rejected: list[Rejected] = []
    for f in files:
        try:
            frames[f.path] = read([f])
        except Exception as exc:
            reason = unreadable(str(exc))
            if reason is None:
                raise DatasetFailed(
                    f"dataset '{spec.name}': cannot read {f.path}: {cause(str(exc))}"
                ) from exc
            rejected.append(Rejected(f, reason))
    if fmt == "parquet":
        schemas = {path: _data(frame) for path, frame in frames.items()}
        reasons = type_reasons(schemas, spec, known, bronze)
        rejected += [
            Rejected(f, reasons[f.path], frames[f.path].count()) for f in files if f.path in reasons
        ]
    return sorted(rejected, key=lambda r: r.file.path)


def _data(frame: DataFrame) -> StructType:
    """The landed columns of a read (without the file each row came from)."""
    return frame.drop(SOURCE_FILE).schema
