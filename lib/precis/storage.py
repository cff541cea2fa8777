"""Delta table I/O: the only module that reads or writes lakehouse tables.

Every table lives at ``<storage.root>/<layer>/<table>``. Writers are idempotent by
construction: full overwrite, overwrite of the partitions present in the new data,
MERGE-upsert on keys, or insert-only MERGE for append-only logs (a rerun inserts
nothing twice). None of them blindly appends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from precis.config import Config
from precis.errors import MissingDatasetError, SchemaDriftError

LAYERS = ("landing", "bronze", "silver", "gold", "truth", "meta")


@dataclass(frozen=True)
class Lakehouse:
    spark: SparkSession
    root: str
    register_tables: bool = False
    database_prefix: str = ""

    @classmethod
    def from_config(cls, spark: SparkSession, cfg: Config) -> "Lakehouse":
        return cls(spark, cfg.root, cfg.storage.register_tables, cfg.storage.database_prefix)

    # ------------------------------------------------------------------ locations
    def path(self, layer: str, table: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer '{layer}'; expected one of {', '.join(LAYERS)}")
        return f"{self.root}/{layer}/{table}"

    def exists(self, layer: str, table: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(layer, table))

    # ---------------------------------------------------------------------- reads
    def read(self, layer: str, table: str, version: int | None = None) -> DataFrame:
        if not self.exists(layer, table):
            raise MissingDatasetError(
                f"table {layer}/{table} does not exist at {self.path(layer, table)}; "
                "run the job that writes it first"
            )
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(layer, table))

    def version(self, layer: str, table: str) -> int:
        history = DeltaTable.forPath(self.spark, self.path(layer, table)).history(1)
        return int(history.select("version").first()[0])

    # --------------------------------------------------------------------- writes
    def overwrite(
        self,
        df: DataFrame,
        layer: str,
        table: str,
        partition_by: Sequence[str] = (),
        schema: StructType | None = None,
        evolve: bool = False,
    ) -> None:
        """Replace the whole table (schema changes only with ``evolve=True``)."""
        self._check(df, layer, table, schema, evolve)
        writer = df.write.format("delta").mode("overwrite")
        if evolve:
            writer = writer.option("overwriteSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.path(layer, table))
        self._register(layer, table)

    def overwrite_partitions(
        self,
        df: DataFrame,
        layer: str,
        table: str,
        partition_by: Sequence[str],
        schema: StructType | None = None,
    ) -> None:
        """Replace only the partitions present in ``df``; other partitions are kept."""
        if not partition_by:
            raise ValueError("overwrite_partitions needs partition columns")
        self._check(df, layer, table, schema, evolve=False)
        (
            df.write.format("delta")
            .mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(*partition_by)
            .save(self.path(layer, table))
        )
        self._register(layer, table)

    def merge_upsert(
        self,
        df: DataFrame,
        layer: str,
        table: str,
        keys: Sequence[str],
        partition_by: Sequence[str] = (),
        schema: StructType | None = None,
        update: bool = True,
    ) -> None:
        """Insert new keys and update changed rows; the same upsert twice changes nothing.

        Rows whose values are unchanged are not rewritten, so a rerun produces no
        churn in the table's change history. With ``update=False`` existing keys are
        left alone (first write wins).
        """
        _require_columns(df, keys, f"{layer}/{table} merge keys")
        self._check(df, layer, table, schema, evolve=False)
        _require_unique(df, keys, f"{layer}/{table}")
        if not self.exists(layer, table):
            self.overwrite(df, layer, table, partition_by=partition_by, schema=schema)
            return
        target = DeltaTable.forPath(self.spark, self.path(layer, table))
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        merge = target.alias("t").merge(df.alias("s"), condition)
        if update:
            value_cols = [c for c in df.columns if c not in keys]
            if value_cols:
                changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in value_cols)
                merge = merge.whenMatchedUpdateAll(condition=changed)
        merge.whenNotMatchedInsertAll().execute()
        self._register(layer, table)

    def append_log(
        self,
        df: DataFrame,
        layer: str,
        table: str,
        keys: Sequence[str],
        schema: StructType | None = None,
    ) -> None:
        """Append-only log: insert rows whose keys are new, never touch existing rows."""
        self.merge_upsert(df, layer, table, keys, schema=schema, update=False)

    def delete_where(self, layer: str, table: str, condition: Column | str) -> None:
        if self.exists(layer, table):
            DeltaTable.forPath(self.spark, self.path(layer, table)).delete(condition)

    # ------------------------------------------------------------------- helpers
    def _check(
        self, df: DataFrame, layer: str, table: str, schema: StructType | None, evolve: bool
    ) -> None:
        if schema is not None:
            check_schema(df.schema, schema, f"{layer}/{table}")
        if not evolve and self.exists(layer, table):
            existing = self.spark.read.format("delta").load(self.path(layer, table)).schema
            check_schema(df.schema, existing, f"{layer}/{table} (existing table)")

    def table_name(self, layer: str, table: str) -> str:
        return f"{self.database_prefix}{layer}.{table}"

    def _register(self, layer: str, table: str) -> None:
        if not self.register_tables:
            return
        database = f"{self.database_prefix}{layer}"
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` USING DELTA "
            f"LOCATION '{self.path(layer, table)}'"
        )


def check_schema(actual: StructType, expected: StructType, what: str) -> None:
    """Fail with the list of missing, unexpected and retyped columns (nullability aside)."""
    got = {f.name: f.dataType for f in actual.fields}
    want = {f.name: f.dataType for f in expected.fields}
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


def _require_columns(df: DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaDriftError(f"{what}: missing columns {', '.join(missing)}")


def _require_unique(df: DataFrame, keys: Sequence[str], what: str) -> None:
    # MERGE fails obscurely when two source rows hit one target row; say which keys.
    dupes = df.groupBy(*keys).count().filter(F.col("count") > 1).limit(3).collect()
    if dupes:
        sample = "; ".join(str({k: row[k] for k in keys}) for row in dupes)
        raise ValueError(f"MERGE into {what}: source has duplicate keys {list(keys)}, e.g. {sample}")
