"""Delta table I/O: the only module that reads or writes lakehouse tables.

Every table is declared once in ``precis.tables`` (layer, name, keys, write mode,
columns ignored when comparing reruns) and lives at ``<storage.root>/<layer>/<name>``;
the methods here take those declarations. Writers are idempotent by
construction: full overwrite, overwrite of the partitions present in the new data,
MERGE-upsert on keys, or insert-only MERGE for append-only logs (a rerun inserts
nothing twice). None of them blindly appends.

Delta is driven through Spark SQL (``MERGE INTO``, ``DELETE``, ``DESCRIBE HISTORY``) and
the DataFrame reader and writer only, never Delta's ``DeltaTable`` Python API: those work
on any session with Delta's SQL extension, Spark Connect included, where the Python API
would need Delta's Connect plugin on the server.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, DataFrameWriter, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

from precis.columns import SOURCE_FILE
from precis.config import Config
from precis.errors import MissingDatasetError, SchemaDriftError
from precis.tables import Table


@dataclass(frozen=True)
class Lakehouse:
    spark: SparkSession
    root: str
    register_tables: bool = False
    database_prefix: str = ""

    @classmethod
    def from_config(cls, spark: SparkSession, cfg: Config) -> Lakehouse:
        return cls(spark, cfg.root, cfg.storage.register_tables, cfg.storage.database_prefix)

    # ------------------------------------------------------------------ locations
    def path(self, table: Table) -> str:
        return f"{self.root}/{table.layer}/{table.name}"

    def exists(self, table: Table) -> bool:
        return last_commit(self.spark, self.path(table)) is not None

    # ---------------------------------------------------------------------- reads
    def read(self, table: Table, version: int | None = None) -> DataFrame:
        if not self.exists(table):
            raise MissingDatasetError(
                f"table {table.ref} does not exist at {self.path(table)}; "
                "run the job that writes it first"
            )
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(table))

    def require(self, *tables: Table, job: str) -> None:
        """Fail, naming the table and the job that writes it, unless every table exists."""
        for table in tables:
            if not self.exists(table):
                raise MissingDatasetError(
                    f"{table.ref} not found under {self.root}: run the {job} job first"
                )

    def read_if_exists(self, table: Table) -> DataFrame | None:
        """The table, or ``None`` where no run has written it yet."""
        return self.read(table) if self.exists(table) else None

    def version(self, table: Table) -> int:
        return int(self._last_commit(table)["version"])

    def _last_commit(self, table: Table) -> Row:
        commit = last_commit(self.spark, self.path(table))
        if commit is None:
            raise MissingDatasetError(f"table {table.ref} does not exist at {self.path(table)}")
        return commit

    # --------------------------------------------------------------------- writes
    def overwrite(
        self,
        df: DataFrame,
        table: Table,
        partition_by: Sequence[str] = (),
        schema: StructType | None = None,
        evolve: bool = False,
    ) -> None:
        """Replace the whole table (schema changes only with ``evolve=True``)."""
        self._check(df, table, schema, evolve)
        writer = df.write.format("delta").mode("overwrite")
        if evolve:
            writer = writer.option("overwriteSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.path(table))
        self._register(table)

    def overwrite_partitions(
        self,
        df: DataFrame,
        table: Table,
        partition_by: Sequence[str],
        schema: StructType | None = None,
        evolve: bool = False,
    ) -> None:
        """Replace only the partitions present in ``df``; other partitions are kept.

        ``evolve=True`` lets new columns join the table (bronze keeps whatever landed).
        """
        if not partition_by:
            raise ValueError("overwrite_partitions needs partition columns")
        self._check(df, table, schema, evolve=evolve)
        writer = (
            df.write.format("delta")
            .mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(*partition_by)
        )
        self._save(writer, table, evolve)

    def replace_where(
        self,
        df: DataFrame,
        table: Table,
        condition: str,
        evolve: bool = False,
    ) -> None:
        """Atomically replace the rows matching ``condition`` with ``df``.

        Rerunning with the same batch replaces the same rows, so nothing doubles.
        ``evolve=True`` lets new columns join the table.
        """
        if not self.exists(table):
            self.overwrite(df, table)
            return
        self._check(df, table, None, evolve=evolve)
        writer = df.write.format("delta").mode("overwrite").option("replaceWhere", condition)
        self._save(writer, table, evolve)

    def _save(self, writer: DataFrameWriter, table: Table, evolve: bool) -> None:
        if evolve:
            writer = writer.option("mergeSchema", "true")
        writer.save(self.path(table))
        self._register(table)

    def merge_upsert(
        self,
        df: DataFrame,
        table: Table,
        keys: Sequence[str] | None = None,
        partition_by: Sequence[str] = (),
        schema: StructType | None = None,
        update: bool = True,
        ignore: Sequence[str] | None = None,
        newer: str | None = None,
        unique: bool = False,
        delete_missing: bool = False,
        scope: str | None = None,
    ) -> dict[str, int]:
        """Insert new keys and update changed rows; the same upsert twice changes nothing.

        Rows whose values are unchanged are not rewritten, so a rerun produces no
        churn in the table's change history; columns in ``ignore`` (lineage such as the
        run id) do not count as a change. With ``newer``, a source row replaces a target
        row only if its ``newer`` value is not older, so late-arriving stale copies of a
        record never overwrite the current one. With ``update=False`` existing keys are
        left alone (first write wins). Returns the inserted and updated row counts.
        ``unique=True`` skips the duplicate-key check when the caller deduplicated.
        ``delete_missing=True`` also deletes target rows whose keys are not in ``df``
        (the frame is then the table's whole new content); with ``scope`` (a SQL
        condition on the target's columns) only the rows inside it, e.g. one run date.
        ``keys``, ``ignore`` and ``newer`` default to the table's declaration.
        """
        keys = table.keys if keys is None else tuple(keys)
        ignore = table.ignore if ignore is None else tuple(ignore)
        newer = newer or table.newer
        if not keys:
            raise ValueError(f"{table.ref}: MERGE needs keys (declare them in precis.tables)")
        _require_columns(df, keys, f"{table.ref} merge keys")
        self._check(df, table, schema, evolve=False)
        if not unique:
            _require_unique(df, keys, table.ref)
        if not self.exists(table):
            self.overwrite(df, table, partition_by=partition_by, schema=schema)
            return {"inserted": self.last_write_rows(table), "updated": 0, "deleted": 0}
        clauses = []
        if update:
            value_cols = [c for c in df.columns if c not in keys and c not in ignore]
            if value_cols:
                changed = (
                    "(" + " OR ".join(_differs(c, df.schema[c].dataType) for c in value_cols) + ")"
                )
                if newer:
                    changed += f" AND (t.`{newer}` IS NULL OR s.`{newer}` >= t.`{newer}`)"
                clauses.append(f"WHEN MATCHED AND {changed} THEN UPDATE SET *")
        clauses.append("WHEN NOT MATCHED THEN INSERT *")
        if delete_missing:
            clauses.append(
                "WHEN NOT MATCHED BY SOURCE" + (f" AND ({scope})" if scope else "") + " THEN DELETE"
            )
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        # MERGE reports its own counts: nothing to look up, and an insert-only MERGE that
        # finds nothing to insert (and commits nothing) reports zeros.
        result = self._sql_with(
            df,
            lambda source: (
                f"MERGE INTO {delta_table(self.path(table))} t USING {source} s "
                f"ON {condition} " + " ".join(clauses)
            ),
        )
        self._register(table)
        return {
            "inserted": int(result["num_inserted_rows"] or 0),
            "updated": int(result["num_updated_rows"] or 0),
            "deleted": int(result["num_deleted_rows"] or 0),
        }

    def _sql_with(self, df: DataFrame, statement: Callable[[str], str]) -> Row:
        """Run ``statement(view)`` with ``df`` as a temporary view; its one result row."""
        view = f"precis_source_{uuid.uuid4().hex}"
        df.createOrReplaceTempView(view)
        try:
            return self.spark.sql(statement(f"`{view}`")).collect()[0]
        finally:
            self.spark.catalog.dropTempView(view)

    def last_write_rows(self, table: Table) -> int:
        """Rows written by the table's last commit (from Delta's operation metrics)."""
        metrics = self._last_commit(table)["operationMetrics"] or {}
        return int(metrics.get("numOutputRows", 0))

    def append_log(
        self,
        df: DataFrame,
        table: Table,
        keys: Sequence[str] | None = None,
        schema: StructType | None = None,
    ) -> dict[str, int]:
        """Append-only log: insert rows whose keys are new, never touch existing rows."""
        return self.merge_upsert(df, table, keys, schema=schema, update=False)

    def delete_where(self, table: Table, condition: str) -> None:
        """Delete the rows matching the SQL ``condition`` (nothing if the table is absent)."""
        if self.exists(table):
            self.spark.sql(f"DELETE FROM {delta_table(self.path(table))} WHERE {condition}")

    # ------------------------------------------------------------------- files
    def export_path(self, name: str, run_date: dt.date) -> str:
        return f"{self.root}/exports/{name}/run_date={run_date.isoformat()}"

    def export(
        self,
        df: DataFrame,
        name: str,
        run_date: dt.date,
        fmt: str,
        partition_by: Sequence[str] = (),
        subdir: str = "",
    ) -> str:
        """Files for activation tools at ``<root>/exports/<name>/run_date=<date>[/<subdir>]``,
        replaced on rerun; ``fmt`` is ``csv`` (with a header) or ``parquet``. Returns the path."""
        path = self.export_path(name, run_date) + (f"/{subdir}" if subdir else "")
        writer = df.write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if fmt == "csv":
            writer.option("header", True).csv(path)
        else:
            writer.parquet(path)
        return path

    def write_landing(self, df: DataFrame, path: str, fmt: str) -> None:
        """Replace a landing dataset (the generator's output) in ``fmt``."""
        writer = df.write.mode("overwrite").format(fmt)
        if fmt == "csv":
            writer = writer.option("header", "true")
        if fmt == "delta":
            # Corruption switches datasets between typed and all-string columns.
            writer = writer.option("overwriteSchema", "true")
        writer.save(path)

    # ------------------------------------------------------------------- helpers
    def _check(self, df: DataFrame, table: Table, schema: StructType | None, evolve: bool) -> None:
        if schema is not None:
            check_schema(df.schema, schema, table.ref)
        if not evolve and self.exists(table):
            existing = self.spark.read.format("delta").load(self.path(table)).schema
            check_schema(df.schema, existing, f"{table.ref} (existing table)")

    def table_name(self, table: Table) -> str:
        return f"{self.database_prefix}{table.layer}.{table.name}"

    def _register(self, table: Table) -> None:
        if not self.register_tables:
            return
        database = f"{self.database_prefix}{table.layer}"
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{table.name}` USING DELTA "
            f"LOCATION '{self.path(table)}'"
        )


def delta_table(path: str) -> str:
    """The SQL name of the Delta table at ``path``: delta.`<path>`."""
    return "delta.`" + path.replace("`", "``") + "`"


#: Errors that mean "no Delta table here" (no such path, or not a Delta table).
_NOT_A_TABLE = (
    "DELTA_TABLE_ONLY_OPERATION",
    "DELTA_MISSING_DELTA_TABLE",
    "PATH_NOT_FOUND",
    "DELTA_TABLE_NOT_FOUND",
)


def last_commit(spark: SparkSession, path: str) -> Row | None:
    """The newest entry of the Delta log at ``path`` (``version``, ``operationMetrics``,
    ...), or None when there is no Delta table there."""
    try:
        return spark.sql(f"DESCRIBE HISTORY {delta_table(path)} LIMIT 1").first()
    except AnalysisException as exc:
        if (exc.getCondition() or "") in _NOT_A_TABLE or any(c in str(exc) for c in _NOT_A_TABLE):
            return None
        raise


def check_schema(actual: StructType, expected: StructType, what: str) -> None:
    """Fail with the list of missing, unexpected and retyped columns (nullability aside)."""
    got = {f.name: _nullable(f.dataType) for f in actual.fields}
    want = {f.name: _nullable(f.dataType) for f in expected.fields}
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    retyped = [
        f"{n} ({want[n].simpleString()} -> {got[n].simpleString()})"
        for n in want
        if n in got and got[n] != want[n]
    ]
    if missing or extra or retyped:
        parts = []
        if missing:
            parts.append("missing columns: " + ", ".join(missing))
        if extra:
            parts.append("unexpected columns: " + ", ".join(extra))
        if retyped:
            parts.append("changed types: " + ", ".join(retyped))
        raise SchemaDriftError(f"schema drift writing {what}: " + "; ".join(parts))


def _nullable(data_type: DataType) -> DataType:
    # Delta stores every nested field, array element and map value as nullable, while
    # e.g. collect_list yields array<string> with containsNull=false: without this a
    # rerun would report "array<string> -> array<string>" as drift.
    if isinstance(data_type, StructType):
        return StructType(
            [StructField(f.name, _nullable(f.dataType), True) for f in data_type.fields]
        )
    if isinstance(data_type, ArrayType):
        return ArrayType(_nullable(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(_nullable(data_type.keyType), _nullable(data_type.valueType), True)
    return data_type


def _differs(column: str, data_type: DataType) -> str:
    # <=> cannot compare maps (nor anything holding one): compare their JSON instead.
    if _holds_map(data_type):
        return f"NOT (to_json(t.`{column}`) <=> to_json(s.`{column}`))"
    return f"NOT (t.`{column}` <=> s.`{column}`)"


def _holds_map(data_type: DataType) -> bool:
    if isinstance(data_type, MapType):
        return True
    if isinstance(data_type, ArrayType):
        return _holds_map(data_type.elementType)
    if isinstance(data_type, StructType):
        return any(_holds_map(f.dataType) for f in data_type.fields)
    return False


def _require_columns(df: DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaDriftError(f"{what}: missing columns {', '.join(missing)}")


def _require_unique(df: DataFrame, keys: Sequence[str], what: str) -> None:
    # MERGE fails obscurely when two source rows hit one target row; say which keys.
    dupes = df.groupBy(*keys).count().filter(F.col("count") > 1).limit(3).collect()
    if dupes:
        sample = "; ".join(str({k: row[k] for k in keys}) for row in dupes)
        raise ValueError(
            f"MERGE into {what}: source has duplicate keys {list(keys)}, e.g. {sample}"
        )


# --------------------------------------------------------------------------- landing
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
        if (exc.getCondition() or "") == "PATH_NOT_FOUND" or "PATH_NOT_FOUND" in str(exc):
            return []
        raise
    return sorted(
        (LandingFile(r["path"], int(r["length"]), int(r["modified"])) for r in listing),
        key=lambda f: f.path,
    )


def read_landing(
    spark: SparkSession, files: Sequence[LandingFile], fmt: str, base_path: str
) -> DataFrame:
    """Read the given landing files as landed, with ``_source_file`` naming each row's file.

    csv and json are read as strings (no inference): ingest does the typing, so a bad
    value becomes a quarantine reason instead of a reader error or a silent null.
    """
    if fmt == "delta":
        df = spark.read.format("delta").load(base_path)
        return df.withColumn(SOURCE_FILE, F.lit(files[0].path))
    reader = spark.read.format(fmt).option("basePath", base_path)
    if fmt == "csv":
        reader = (
            reader.option("header", "true")
            .option("inferSchema", "false")
            .option("mode", "PERMISSIVE")
        )
    elif fmt == "json":
        reader = reader.option("primitivesAsString", "true").option("mode", "PERMISSIVE")
    df = reader.load([f.path for f in files])
    return df.withColumn(SOURCE_FILE, F.col("_metadata.file_path"))
