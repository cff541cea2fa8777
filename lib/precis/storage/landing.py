"""Landing files: list what landed under a dataset's path and read it as landed.

Part of :mod:`precis.storage` (the lakehouse's I/O); ingest uses these.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, StructField, StructType

from precis.columns import CORRUPT_RECORD, SOURCE_FILE
from precis.errors import ConfigError, PrecisError
from precis.settings import local_file_path
from precis.storage.delta import last_commit


class LandingFileError(PrecisError):
    """Landed files that cannot be read as a table: ``reasons`` by file path (the
    message names each file)."""

    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons = dict(reasons)
        super().__init__("; ".join(f"{path}: {why}" for path, why in sorted(self.reasons.items())))


@dataclass(frozen=True)
class LandingFile:
    """One landed file (or, for a Delta landing table, one table version)."""

    path: str
    size: int
    modified: int  # epoch milliseconds, or the table version for Delta


def list_landing_files(spark: SparkSession, path: str, fmt: str) -> list[LandingFile]:
    """Data files under ``path`` (recursively), skipping ``_SUCCESS``, ``.crc`` and the like.

    Empty when the path does not exist: the dataset is absent. Files are listed by Spark
    itself (the ``binaryFile`` source, reading no content), so the listing works on any
    file system the session can read and over Spark Connect; Spark's file index skips
    names starting with ``_`` or ``.`` (partition folders such as ``day=1`` excepted).
    """
    if fmt == "delta":
        commit = last_commit(spark, path)
        if commit is None:
            return []
        version = int(commit["version"])
        return [LandingFile(f"{path}@v{version}", 0, version)]
    try:
        listing = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(path)
            .select("path", "length", F.unix_millis("modificationTime").alias("modified"))
            .collect()
        )
    except AnalysisException as exc:
        if _path_not_found(exc):
            return []
        raise
    return sorted(
        (LandingFile(r["path"], int(r["length"]), int(r["modified"])) for r in listing),
        key=lambda f: f.path,
    )


def _path_not_found(exc: AnalysisException) -> bool:
    return (exc.getCondition() or "") == "PATH_NOT_FOUND" or "PATH_NOT_FOUND" in str(exc)


#: The file Spark and most copy tools write into a folder once everything else is there.
MARKER = "_SUCCESS"


def folders_with_marker(spark: SparkSession, folders: Iterable[str]) -> set[str]:
    """The ``folders`` holding a ``_SUCCESS`` file (``MARKER``).

    Spark's file index never lists a name starting with ``_``, not even when asked for
    it by name, but naming a file that is not there fails: so one existence check per
    folder, made on the driver while Spark resolves the path (no Spark job).
    """
    found = set()
    for folder in sorted(set(folders)):
        try:
            # .columns makes a Spark Connect client resolve the path too.
            _ = spark.read.format("binaryFile").load(f"{folder}/{MARKER}").columns
        except AnalysisException as exc:
            if _path_not_found(exc):
                continue
            raise
        found.add(folder)
    return found


def read_landing(
    spark: SparkSession,
    files: Sequence[LandingFile],
    fmt: str,
    base_path: str,
    encoding: str = "UTF-8",
    types: Mapping[str, DataType] | None = None,
) -> DataFrame:
    """Read the given landing files as landed, with ``_source_file`` naming each row's file.

    csv and json are read as strings (no inference): ingest does the typing, so a bad
    value becomes a quarantine reason instead of a reader error or a silent null. A line
    the reader cannot parse (broken JSON, a csv row with too many or too few fields)
    comes back with its text in ``_corrupt_record`` (``CORRUPT_RECORD``) instead of
    being dropped. csv columns are matched by each file's own header, so files with
    another column order (or more columns) read right; quoted fields may hold newlines.
    ``encoding`` (csv, json) is a Java charset name: UTF-8, GBK, GB18030, ...

    ``types`` (json): the types to read these columns as, whatever the values found. As
    a string, an object or array value comes back as its JSON text, so a column reads the
    same whichever files share the batch; a value that does not fit a type makes its line
    a ``_corrupt_record``. parquet columns keep the types of the files; the footers of
    all files are read and merged (a column of some files only is read too), and files
    that disagree on a column's type fail here, before any row is read.
    """
    if fmt == "delta":
        # The version listed, not the latest: ingest reads a batch twice (bronze, silver).
        version = files[0].modified
        df = spark.read.format("delta").option("versionAsOf", version).load(base_path)
        return df.withColumn(SOURCE_FILE, F.lit(files[0].path))
    if _normalized(encoding) not in _SPARK_CHARSETS:
        # Spark 4 reads only the Unicode charsets and Latin-1 unless told to allow every
        # charset the JVM has (GBK, GB18030, Big5, Shift_JIS, ...).
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    reader = spark.read.format(fmt)
    if _is_folder(base_path, files):
        # Partition folders (day=2026-01-01) below the landing folder become columns.
        reader = reader.option("basePath", base_path)
    if fmt == "csv":
        return _read_csv(spark, reader, files, encoding)
    if fmt == "json":
        reader = (
            reader.option("primitivesAsString", "true")
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
            .option("encoding", encoding)
        )
        if _normalized(encoding) != "utf8":
            # Spark splits json lines of another charset only at a line end it is told.
            reader = reader.option("lineSep", "\n")
    if fmt == "parquet":
        reader = reader.option("mergeSchema", "true")
    paths = [f.path for f in files]
    df = reader.load(paths)
    if fmt == "json" and types:
        wanted = _with_types(df.schema, types)
        if wanted != df.schema:
            # The schema found by reading the files (one pass, as before), retyped.
            df = reader.schema(wanted).load(paths)
    return df.withColumn(SOURCE_FILE, F.col("_metadata.file_path"))


def _with_types(schema: StructType, types: Mapping[str, DataType]) -> StructType:
    fields = [StructField(f.name, types.get(f.name, f.dataType)) for f in schema.fields]
    if not any(f.dataType != g.dataType for f, g in zip(fields, schema.fields)):
        return schema
    if CORRUPT_RECORD not in schema.fieldNames():
        # Where a retyped value does not fit, the reader needs the column for its line.
        fields.append(StructField(CORRUPT_RECORD, StringType()))
    return StructType(fields)


_SPARK_CHARSETS = {"iso88591", "usascii", "utf16", "utf16be", "utf16le", "utf32", "utf8"}


def _normalized(charset: str) -> str:
    return charset.lower().replace("-", "").replace("_", "")


def _is_folder(base_path: str, files: Sequence[LandingFile]) -> bool:
    """Whether the landing path names a folder (not one file, not a glob)."""
    if any(ch in base_path for ch in "*?[{"):
        return False
    tail = base_path.rstrip("/").rsplit("/", 1)[-1]
    return not (len(files) == 1 and files[0].path.rstrip("/").endswith("/" + tail))


def _read_csv(
    spark: SparkSession, reader: DataFrameReader, files: Sequence[LandingFile], encoding: str
) -> DataFrame:
    """csv files by header name: files are grouped by their header line, each group read
    with a schema of its own columns (all strings, plus ``_corrupt_record``) and the
    groups put together by name. One pass over the files finds the headers."""
    reader = (
        reader.option("header", "true")
        .option("mode", "PERMISSIVE")
        .option("multiLine", "true")
        .option("encoding", encoding)
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
    )
    groups: dict[tuple[str, ...], list[str]] = {}
    bad: dict[str, str] = {}
    for path, line in first_lines(spark, [f.path for f in files], encoding):
        try:
            groups.setdefault(csv_header(line), []).append(path)
        except ValueError as exc:
            bad[path] = str(exc)
    if bad:  # every bad file at once, so a caller leaving them out reads the rest
        raise LandingFileError(bad)
    if not groups:  # every file empty: no header, no rows
        return spark.createDataFrame([], f"`{CORRUPT_RECORD}` string, `{SOURCE_FILE}` string")
    frames = []
    for header, paths in sorted(groups.items(), key=lambda kv: min(kv[1])):
        schema = StructType([StructField(c, StringType()) for c in (*header, CORRUPT_RECORD)])
        frame = reader.schema(schema).load(sorted(paths))
        frames.append(frame.withColumn(SOURCE_FILE, F.col("_metadata.file_path")))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def first_lines(
    spark: SparkSession, paths: Sequence[str], encoding: str = "UTF-8"
) -> list[tuple[str, str]]:
    """(path as listed, first line) of each non-empty text file, in one Spark job.

    The first line is the lowest row of the file's first block (a file is read in
    order within a block). Paths come back as listed: the reader's own names for the
    files may be escaped differently.
    """
    by_name = {same_file(p): p for p in paths}
    text = spark.read.text(list(paths))
    first = (
        text.filter(F.col("_metadata.file_block_start") == 0)
        .select(
            F.col("_metadata.file_path").alias("path"),
            # The line's bytes as read: decoded below with the file's own charset.
            F.col("value").cast("binary").alias("value"),
            F.monotonically_increasing_id().alias("at"),
        )
        .groupBy("path")
        .agg(F.min_by("value", "at").alias("line"))
    )
    return sorted(
        (
            by_name.get(same_file(r["path"]), r["path"]),
            bytes(r["line"]).decode(encoding, errors="replace"),
        )
        for r in first.collect()
    )


def same_file(path: str) -> str:
    """A path as one key whatever the spelling (``file:/x``, ``file:///x``, ``%20``)."""
    return unquote(re.sub(r"^file:/+", "/", path))


def csv_header(line: str) -> tuple[str, ...]:
    """Column names of a csv header line (quotes removed, a byte-order mark and white
    space around names stripped). Duplicate or empty names are a ``ValueError`` saying
    which: no column of such a file can be told for sure."""
    names = next(csv.reader([line.lstrip("\ufeff")]), [])
    names = [n.strip().lstrip("\ufeff") for n in names]
    empty = [str(i + 1) for i, n in enumerate(names) if not n]
    if empty:
        raise ValueError(f"csv header has empty column name(s) at position {', '.join(empty)}")
    folded = [n.lower() for n in names]
    dupes = sorted({n for n, f in zip(names, folded, strict=True) if folded.count(f) > 1})
    if dupes:
        raise ValueError(f"csv header names column(s) twice: {', '.join(dupes)}")
    return tuple(names)


def count_csv_rows(spark: SparkSession, path: str, encoding: str = "UTF-8") -> int:
    """The rows of one csv file below its header, whatever the header's names (Spark
    numbers duplicate and empty ones): for the accounts of a file left out whole."""
    reader = spark.read.option("header", "true").option("multiLine", "true")
    return reader.option("encoding", encoding).csv(path).count()


def rewrite_landing_without(
    spark: SparkSession,
    where: str,
    fmt: str,
    mark: Callable[[DataFrame], DataFrame],
    flag: str,
    encoding: str = "UTF-8",
) -> dict[str, int]:
    """Rewrite every landing file under ``where`` holding rows that ``mark`` flags (it
    adds the boolean column ``flag``) without those rows; rows removed per file path.

    One pass over the dataset finds the files; each is then read on its own, as its owner
    wrote it, so its columns and values come back as they were (``rewrite_landed_file``).
    A Delta landing table is rewritten as a whole.
    """
    files = list_landing_files(spark, where, fmt)
    if not files:
        return {}
    targets = [where]
    if fmt != "delta":
        hits = mark(read_landing(spark, files, fmt, where, encoding)).filter(F.col(flag))
        targets = [r[0] for r in hits.select(SOURCE_FILE).distinct().collect()]
    removed: dict[str, int] = {}
    for path in sorted(targets):
        own = read_landed_file(spark, path, fmt, encoding)
        marked = mark(own)
        gone = marked.filter(F.col(flag)).count()
        if gone:
            kept_rows = marked.filter(~F.col(flag)).select(*own.columns)
            rewrite_landed_file(kept_rows, path, fmt, encoding)
            removed[path] = gone
    return removed


def read_landed_file(
    spark: SparkSession, path: str, fmt: str, encoding: str = "UTF-8"
) -> DataFrame:
    """One landed file as its owner wrote it, for rewriting it (``rewrite_landed_file``):
    csv by its own header as strings, json with its types inferred, parquet and a Delta
    landing table (its latest version) as typed."""
    if fmt == "csv":
        reader = spark.read.option("header", "true").option("multiLine", "true")
        return reader.option("encoding", encoding).csv(path)
    if fmt == "json":
        return spark.read.option("encoding", encoding).json(path)
    return spark.read.format(fmt).load(path)


def rewrite_landed_file(rows: DataFrame, path: str, fmt: str, encoding: str = "UTF-8") -> int:
    """Replace the landed file ``path`` by ``rows`` (same name, same format, one file);
    the number of rows it now holds. A file left with no row is deleted; a Delta landing
    table (``path`` its folder) gets a new version holding ``rows``.

    For the ``forget`` job's ``forget.rewrite_landing``. Spark writes the rows into a
    hidden folder beside the file (names starting with ``.`` are never listed as landing
    data, so a crash leaves nothing ingest would read), then the finished file replaces
    the original by a rename on the same file system: readers see the old file or the new
    one, never half of one. Renaming needs the file system of the process running the
    job: local disk, or a mount such as Databricks' ``/dbfs`` and ``/Volumes``.
    """
    if fmt == "delta":
        # A new version of the table without the rows; its history is the owner's.
        kept = rows.count()
        rows.write.format("delta").mode("overwrite").save(path)
        return kept
    local = _local_file(path)
    kept = rows.count()
    if kept == 0:
        local.unlink()
        return 0
    staging = local.with_name(f".precis-rewrite-{local.name}")
    shutil.rmtree(staging, ignore_errors=True)  # left by a crashed attempt
    writer = rows.coalesce(1).write.mode("overwrite").format(fmt)
    if fmt == "csv":
        # Values as landed: Spark's csv writer trims them unless told not to.
        writer = (
            writer.option("header", "true")
            .option("ignoreLeadingWhiteSpace", "false")
            .option("ignoreTrailingWhiteSpace", "false")
        )
    if fmt in ("csv", "json"):
        writer = writer.option("encoding", encoding)
    if fmt in ("csv", "json") and local.name.endswith(".gz"):
        writer = writer.option("compression", "gzip")
    writer.save(str(staging))
    (part,) = staging.glob("part-*")
    part.replace(local)  # a rename on one file system: atomic
    shutil.rmtree(staging)
    return kept


def _local_file(path: str) -> Path:
    local = local_file_path(path)
    if local is None or not Path(local).is_file():
        raise ConfigError(
            f"forget.rewrite_landing: cannot rewrite {path}: landing files are rewritten "
            "through the file system of the process running the job (local disk, /dbfs, "
            "/Volumes), and this file is not there; remove the person's rows from it "
            "yourself, or turn forget.rewrite_landing off (meta/suppressions keeps them "
            "out of every later ingest either way)"
        )
    return Path(local)
