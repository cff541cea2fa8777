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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, DataFrameWriter, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from precis import faults, model_metrics
from precis.config import Config
from precis.errors import MissingDatasetError
from precis.storage.delta import LocalLogs, delta_table, is_table, last_commit
from precis.storage.exports import Exports, write_export_files
from precis.storage.landing import (
    LandingFile,
    LandingFileError,
    list_landing_files,
    read_landing,
    rewrite_landing_without,
)
from precis.storage.lease import retrying
from precis.storage.purge import Purge
from precis.storage.schema import check_schema, differs, require_columns, require_unique
from precis.storage.snapshots import Snapshots
from precis.tables import GENERATED_LANDING as T_GENERATED
from precis.tables import MODEL_METRICS as T_MODEL_METRICS
from precis.tables import Table

__all__ = [
    "Lakehouse",
    "LandingFile",
    "LandingFileError",
    "check_schema",
    "delta_table",
    "last_commit",
    "list_landing_files",
    "read_landing",
    "rewrite_landing_without",
]


@dataclass(frozen=True)
class Lakehouse(Snapshots, Purge, Exports):
    spark: SparkSession
    root: str
    register_tables: bool = False
    database_prefix: str = ""
    # Snapshot tables keep the run dates less than this many days before their newest
    # (None: all); files of deleted snapshots are vacuumed this many hours later.
    snapshot_days: int | None = None
    vacuum_hours: int = 168
    # Tables this lakehouse has seen or written: precis never drops a table, so one found
    # once is there for the rest of the job, and asking again would cost a read of its
    # log (jobs ask about the same tables again and again).
    _seen: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    # Missing tables, looked for on this machine's disk once it is known to be Spark's.
    _logs: LocalLogs = field(default_factory=LocalLogs, init=False, repr=False, compare=False)

    @classmethod
    def from_config(cls, spark: SparkSession, cfg: Config) -> Lakehouse:
        return cls(
            spark,
            cfg.root,
            cfg.storage.register_tables,
            cfg.storage.database_prefix,
            cfg.retention.snapshots,
            cfg.retention.vacuum_hours,
        )

    # ------------------------------------------------------------------ locations
    def path(self, table: Table) -> str:
        return f"{self.root}/{table.layer}/{table.name}"

    def exists(self, table: Table) -> bool:
        path = self.path(table)
        if path in self._seen:
            return True
        # The disk, once known to be Spark's; else a catalog lookup, not a read: a failed
        # read of a missing table makes Spark's listeners log an error with a stack trace.
        found = self._logs.exists(path)
        if not (is_table(self.spark, path) if found is None else found):
            return False
        self._found(path)
        return True

    def _found(self, path: str) -> None:
        self._seen.add(path)
        self._logs.confirm(self.spark, path)

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

    def read_if_exists(self, table: Table, as_of: dt.date | None = None) -> DataFrame | None:
        """The table (up to the end of ``as_of``, see ``read_as_of``), or ``None`` where no
        run has written it yet."""
        if not self.exists(table):
            return None
        return self.read(table) if as_of is None else self.read_as_of(table, as_of)

    def versions(self, tables: Sequence[Table]) -> dict[str, int]:
        """``layer/name`` -> current version, of those of ``tables`` that exist."""
        found = {}
        # Asked first: the history of a missing table fails inside Spark.
        for table in filter(self.exists, tables):
            commit = last_commit(self.spark, self.path(table))
            if commit is not None:
                found[table.ref] = int(commit["version"])
        return found

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
        self._overwrite(df, table, partition_by, evolve)

    def _overwrite(
        self, df: DataFrame, table: Table, partition_by: Sequence[str] = (), evolve: bool = False
    ) -> None:
        """``overwrite`` once the caller has checked ``df`` against the table."""
        writer = df.write.format("delta").mode("overwrite")
        if evolve:
            writer = writer.option("overwriteSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.path(table))
        self._register(table)
        faults.after_write(table.ref)

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
            self._overwrite(df, table)  # a new table: nothing to check against
            return
        self._check(df, table, None, evolve=evolve, exists=True)
        writer = df.write.format("delta").mode("overwrite").option("replaceWhere", condition)
        self._save(writer, table, evolve)

    def _save(self, writer: DataFrameWriter, table: Table, evolve: bool) -> None:
        if evolve:
            writer = writer.option("mergeSchema", "true")
        # Each caller replaces a condition's rows: idempotent, so safe to repeat.
        retrying(lambda: writer.save(self.path(table)), table.ref)
        self._register(table)
        faults.after_write(table.ref)

    def write_model_metrics(
        self,
        job: str,
        run_date: dt.date,
        run_id: str,
        metrics: Mapping[str, float],
        curves: Mapping[str, model_metrics.Curve] | None = None,
    ) -> None:
        """A job run's quality figures as its rows of ``meta/model_metrics`` (replaced)."""
        df = model_metrics.frame(self.spark, run_date, run_id, job, metrics, curves)
        self.replace_where(df, T_MODEL_METRICS, model_metrics.scope(run_date, job))

    def merge_run_date(self, df: DataFrame, table: Table, run_date: dt.date) -> dict[str, int]:
        """``df`` as ``table``'s rows of ``run_date`` (its ``run_date`` column): MERGE that
        inserts, updates and deletes only within the date, so an unchanged rerun rewrites
        nothing and other dates are untouched."""
        return self.merge_upsert(
            df,
            table,
            unique=True,
            delete_missing=True,
            scope=f"t.run_date = '{run_date.isoformat()}'",
        )

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
        delete_null: str | None = None,
        within: str | None = None,
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
        ``delete_null`` (a column): a source row whose value there is null deletes its
        key's row instead (and inserts nothing), so one MERGE updates a group of keys
        whose new values include "none". ``within`` (a SQL condition on the target's
        columns, ``t.<column>``) holds for every stored row a source row may match: added
        to the match condition, it lets Delta read only the files that can hold one.
        ``keys``, ``ignore`` and ``newer`` default to the table's declaration.
        """
        keys = table.keys if keys is None else tuple(keys)
        ignore = table.ignore if ignore is None else tuple(ignore)
        newer = newer or table.newer
        if not keys:
            raise ValueError(f"{table.ref}: MERGE needs keys (declare them in precis.tables)")
        require_columns(df, keys, f"{table.ref} merge keys")
        exists = self.exists(table)
        self._check(df, table, schema, evolve=False, exists=exists)
        if not unique:
            require_unique(df, keys, table.ref)
        if not exists:
            if delete_null:
                df = df.filter(F.col(delete_null).isNotNull())
            self._overwrite(df, table, partition_by=partition_by)
            return {"inserted": self.last_write_rows(table), "updated": 0, "deleted": 0}
        clauses = []
        if delete_null:
            clauses.append(f"WHEN MATCHED AND s.`{delete_null}` IS NULL THEN DELETE")
        if update:
            value_cols = [c for c in df.columns if c not in keys and c not in ignore]
            if value_cols:
                changed = (
                    "(" + " OR ".join(differs(c, df.schema[c].dataType) for c in value_cols) + ")"
                )
                if newer:
                    changed += f" AND (t.`{newer}` IS NULL OR s.`{newer}` >= t.`{newer}`)"
                clauses.append(f"WHEN MATCHED AND {changed} THEN UPDATE SET *")
        present = f" AND s.`{delete_null}` IS NOT NULL" if delete_null else ""
        clauses.append(f"WHEN NOT MATCHED{present} THEN INSERT *")
        if delete_missing:
            clauses.append(
                "WHEN NOT MATCHED BY SOURCE" + (f" AND ({scope})" if scope else "") + " THEN DELETE"
            )
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        if within:
            condition += f" AND ({within})"
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
            # Every statement here is a keyed MERGE: repeating one after a conflict is safe.
            row = retrying(lambda: self.spark.sql(statement(f"`{view}`")).collect()[0], "MERGE")
        finally:
            self.spark.catalog.dropTempView(view)
        faults.after_write("MERGE")
        return row

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
        within: str | None = None,
        unique: bool = False,
    ) -> dict[str, int]:
        """Append-only log: insert rows whose keys are new, never touch existing rows
        (``within``, ``unique``: see ``merge_upsert``)."""
        return self.merge_upsert(
            df, table, keys, schema=schema, update=False, within=within, unique=unique
        )

    def add_new_columns(self, table: Table, schema: StructType) -> list[str]:
        """Add the columns of ``schema`` the stored table lacks (nullable): an optional
        contract column added later (e.g. customers' ``consent_updated_at``) reaches a
        table written before it, without a rewrite. Returns their names."""
        if not self.exists(table):
            return []
        have = set(self.read(table).columns)
        new = [f for f in schema.fields if f.name not in have]
        if new:
            spec = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in new)
            self.spark.sql(f"ALTER TABLE {delta_table(self.path(table))} ADD COLUMNS ({spec})")
        return [f.name for f in new]

    def delete_where(self, table: Table, condition: str) -> None:
        """Delete the rows matching the SQL ``condition`` (nothing if the table is absent)."""
        if self.exists(table):
            self.spark.sql(f"DELETE FROM {delta_table(self.path(table))} WHERE {condition}")
            faults.after_write(table.ref)

    def update_matched(
        self, df: DataFrame, table: Table, condition: str, assignments: Mapping[str, str]
    ) -> int:
        """Rewrite columns in place: the rows of ``table`` (``t``) that match a row of
        ``df`` (``s``) on the SQL ``condition`` get ``assignments`` (column -> SQL
        expression). Nothing is inserted or deleted; at most one ``df`` row may match a
        table row. Returns the rows updated (0 when the table is absent)."""
        if not self.exists(table):
            return 0
        sets = ", ".join(f"t.`{column}` = {value}" for column, value in assignments.items())
        result = self._sql_with(
            df,
            lambda source: (
                f"MERGE INTO {delta_table(self.path(table))} t USING {source} s "
                f"ON {condition} WHEN MATCHED THEN UPDATE SET {sets}"
            ),
        )
        return int(result["num_updated_rows"] or 0)

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
        write_export_files(df, path, fmt, partition_by)
        faults.after_write(path)
        return path

    def foreign_landing(self, paths: Mapping[str, str], formats: Mapping[str, str]) -> list[str]:
        """Of ``paths`` (dataset -> landing path), those holding data the generate job did
        not write: files (or a Delta table) there, and the path not in
        ``meta/generated_landing``."""
        ours = set()
        if self.exists(T_GENERATED):
            ours = {r["path"] for r in self.read(T_GENERATED).select("path").collect()}
        return [
            path
            for name, path in paths.items()
            if path not in ours and list_landing_files(self.spark, path, formats[name])
        ]

    def has_landing(self, path: str, fmt: str) -> bool:
        """Whether a landing folder (or Delta table) holds files of ``fmt``."""
        return bool(list_landing_files(self.spark, path, fmt))

    def claim_landing(self, paths: Mapping[str, str], run_date: dt.date) -> None:
        """Record ``paths`` as the generate job's, before it writes them: a run that stops
        halfway may then be rerun."""
        rows = [(name, path, run_date) for name, path in sorted(paths.items())]
        df = self.spark.createDataFrame(rows, "dataset string, path string, run_date date")
        self.merge_upsert(df, T_GENERATED, unique=True)

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
    def _check(
        self,
        df: DataFrame,
        table: Table,
        schema: StructType | None,
        evolve: bool,
        exists: bool | None = None,
    ) -> None:
        """``df`` against ``schema`` and, unless ``evolve``, the stored table's schema.
        ``exists``: whether the table exists, when the caller has just asked (asking
        about a missing table costs a failed catalog lookup each time)."""
        if schema is not None:
            check_schema(df.schema, schema, table.ref)
        if not evolve and (self.exists(table) if exists is None else exists):
            check_schema(df.schema, self.read(table).schema, f"{table.ref} (existing table)")

    def table_name(self, table: Table) -> str:
        return f"{self.database_prefix}{table.layer}.{table.name}"

    def _register(self, table: Table) -> None:
        """After every write: the table exists now, in the catalog too if configured."""
        self._found(self.path(table))
        if not self.register_tables:
            return
        database = f"{self.database_prefix}{table.layer}"
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{table.name}` USING DELTA "
            f"LOCATION '{self.path(table)}'"
        )
