"""Reads as of a run date and tables that keep one snapshot per run date.

Part of :class:`precis.storage.Lakehouse` (a mixin, so the table I/O stays one class):
``read_as_of`` hides facts after a run date; ``write_snapshot`` replaces one run date's
snapshot, partitioned by ``run_date``, and drops those out of retention; ``read_snapshot``,
``read_latest`` and ``read_current`` read them back.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import RUN_DATE
from precis.days import day_end
from precis.errors import MissingDatasetError, SchemaDriftError
from precis.progress import log
from precis.storage.delta import delta_table, vacuum
from precis.storage.schema import nullable
from precis.tables import Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrameWriter, SparkSession
    from pyspark.sql.types import StructType


class Snapshots:
    if TYPE_CHECKING:  # what the mixin uses of Lakehouse
        spark: SparkSession
        snapshot_days: int | None
        vacuum_hours: int

        def path(self, table: Table) -> str: ...
        def exists(self, table: Table) -> bool: ...
        def read(self, table: Table, version: int | None = None) -> DataFrame: ...
        def read_if_exists(
            self, table: Table, as_of: dt.date | None = None
        ) -> DataFrame | None: ...
        def last_write_rows(self, table: Table) -> int: ...
        def delete_where(self, table: Table, condition: str) -> None: ...
        def _check(
            self,
            df: DataFrame,
            table: Table,
            schema: StructType | None,
            evolve: bool,
            exists: bool | None = None,
        ) -> None: ...
        def _save(self, writer: DataFrameWriter, table: Table, evolve: bool) -> None: ...
        def overwrite(
            self,
            df: DataFrame,
            table: Table,
            partition_by: tuple[str, ...] = (),
            schema: StructType | None = None,
            evolve: bool = False,
        ) -> None: ...

    def read_as_of(self, table: Table, run_date: dt.date) -> DataFrame:
        """The table's rows up to the end of the business day ``run_date``
        (``precis.days``): a fact after it is invisible. A table that declares no
        ``as_of`` column is read whole."""
        df = self.read(table)
        if table.as_of is None:
            return df
        # A date or timestamp column against the next midnight: Spark compares both as
        # timestamps, so a date column keeps its run date and a timestamp its whole day.
        return df.filter(F.col(table.as_of) < day_end(run_date))

    def snapshot_dates(self, table: Table) -> list[dt.date]:
        """The run dates ``table`` holds a snapshot of, oldest first."""
        if not self.exists(table):
            return []
        df = self.read(table)
        if RUN_DATE not in df.columns:
            self._require_snapshot_layout(table)  # raises, naming the folder to delete
        rows = df.select(RUN_DATE).distinct().collect()
        return sorted(r[0] for r in rows)

    def read_snapshot(
        self, table: Table, run_date: dt.date, job: str | None = None
    ) -> DataFrame | None:
        """``run_date``'s snapshot of ``table``; None when there is none, or with ``job``
        (the job that writes it) an error saying to run that job for the date."""
        dates = self.snapshot_dates(table)
        if run_date in dates:
            return self.read(table).filter(F.col(RUN_DATE) == F.lit(run_date))
        if job is None:
            return None
        raise MissingDatasetError(
            f"{table.ref} has no snapshot for run date {run_date} (newest: "
            f"{dates[-1] if dates else 'none'}): run the {job} job for {run_date} first"
        )

    def read_latest(self, table: Table, before: dt.date | None = None) -> DataFrame | None:
        """The newest snapshot of ``table`` (the newest before ``before``, if given);
        None when there is none."""
        dates = [d for d in self.snapshot_dates(table) if before is None or d < before]
        if not dates:
            return None
        return self.read(table).filter(F.col(RUN_DATE) == F.lit(dates[-1]))

    def read_current(self, table: Table) -> DataFrame | None:
        """What ``table`` says now: its newest snapshot if it keeps snapshots, else the
        whole table; None when it does not exist."""
        if table.mode == "snapshot":
            return self.read_latest(table)
        return self.read_if_exists(table)

    def write_snapshot(
        self, df: DataFrame, table: Table, run_date: dt.date, evolve: bool = False
    ) -> int:
        """Replace ``run_date``'s snapshot of ``table`` with ``df``, stamped with the run
        date; the other dates' snapshots stay. Then drop snapshots that fell out of
        retention. Returns the rows written. ``evolve=True`` lets columns join the table
        (older snapshots read null in them) and, as a column cannot hold two types, a
        retyped column replaces the whole table, older snapshots dropped with a warning.

        Raises ``ValueError`` for a run date that retention would drop at once.
        """
        if table.mode != "snapshot":
            raise ValueError(f"{table.ref} is not a snapshot table ({table.mode})")
        dates = self.snapshot_dates(table)
        if self.exists(table):
            self._require_snapshot_layout(table)
        if dates and self.snapshot_days is not None:
            oldest_kept = max(dates[-1], run_date) - dt.timedelta(days=self.snapshot_days - 1)
            if run_date < oldest_kept:
                raise ValueError(
                    f"run date {run_date} is {self.snapshot_days} days or more before the "
                    f"newest snapshot of {table.ref} ({dates[-1]}), so retention would delete "
                    "it at once: raise retention.snapshots to keep it"
                )
        stamped = df.withColumn(RUN_DATE, F.lit(run_date).cast("date"))
        retyped = self._retyped(stamped, table) if evolve else []
        if retyped:
            log.warning(
                "%s: %s changed type; its older snapshots are dropped",
                table.ref,
                ", ".join(retyped),
            )
        if retyped or (not dates and not self.exists(table)):
            self.overwrite(stamped, table, partition_by=(RUN_DATE,), evolve=bool(retyped))
        else:
            self._check(stamped, table, None, evolve=evolve)
            writer = (
                stamped.write.format("delta")
                .mode("overwrite")
                .option("replaceWhere", f"{RUN_DATE} = DATE'{run_date.isoformat()}'")
            )
            self._save(writer, table, evolve)
        written = self.last_write_rows(table)
        self.prune_snapshots(table, sorted({*dates, run_date}))
        return written

    def _retyped(self, df: DataFrame, table: Table) -> list[str]:
        if not self.exists(table):
            return []
        # Nullability aside: Delta stores every nested field as nullable.
        stored = {f.name: nullable(f.dataType) for f in self.read(table).schema.fields}
        return [
            f.name
            for f in df.schema.fields
            if f.name in stored and stored[f.name] != nullable(f.dataType)
        ]

    def _require_snapshot_layout(self, table: Table) -> None:
        detail = self.spark.sql(f"DESCRIBE DETAIL {delta_table(self.path(table))}").first()
        if detail is None or list(detail["partitionColumns"]) != [RUN_DATE]:
            raise SchemaDriftError(
                f"{table.ref} at {self.path(table)} is not partitioned by {RUN_DATE}: it holds "
                "one current state, as precis wrote it before run-date snapshots. Delete the "
                "folder; the next run of its job writes it anew, one snapshot per run date"
            )

    def prune_snapshots(self, table: Table, dates: list[dt.date] | None = None) -> list[dt.date]:
        """Delete the snapshots older than ``snapshot_days`` before the newest, and vacuum
        files no version newer than ``vacuum_hours`` ago refers to. Returns the dates.
        ``dates``: the table's snapshot dates, when the caller knows them."""
        dates = self.snapshot_dates(table) if dates is None else dates
        if not dates or self.snapshot_days is None:
            return []
        oldest_kept = dates[-1] - dt.timedelta(days=self.snapshot_days - 1)
        gone = [d for d in dates if d < oldest_kept]
        if gone:
            self.delete_where(table, f"{RUN_DATE} < DATE'{oldest_kept.isoformat()}'")
            # Deleting only unlinks files; Delta keeps them for time travel until a vacuum
            # past its retention. Every prune vacuums, so a daily schedule frees them.
            vacuum(self.spark, self.path(table), self.vacuum_hours)
        return gone
