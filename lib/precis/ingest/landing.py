"""Which landing datasets an ingest run takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession

from precis.columns import SOURCE_FILE
from precis.config import Config
from precis.errors import ConfigError, MissingDatasetError
from precis.ingest.batch import DatasetFailed, require_columns
from precis.progress import log
from precis.schemas import SPECS
from precis.storage import LandingFile, LandingFileError, list_landing_files, read_landing


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


def read_batch(
    spark: SparkSession, cfg: Config, dataset: str, files: Sequence[LandingFile]
) -> tuple[DataFrame, list[str]]:
    """The landed rows of ``files`` and their landed columns. A file that cannot be read
    as a table, or a required column missing, fails the dataset (``DatasetFailed``,
    naming it), not the run."""
    where = cfg.landing_path(dataset)
    try:
        landed = read_landing(
            spark, files, cfg.landing_format(dataset), where, cfg.landing_encoding(dataset)
        )
    except LandingFileError as exc:
        raise DatasetFailed(f"dataset '{dataset}': {exc}") from exc
    columns = [c for c in landed.columns if c != SOURCE_FILE]
    require_columns(columns, SPECS[dataset], where, cfg.ingest.orders_without_status_are_paid)
    return landed, columns
