"""Forgetting people: who a request means, and which rows of each table are theirs.

Pure DataFrame functions; the ``forget`` job (``precis.jobs.forget``) reads the tables,
deletes the rows these functions find and purges history. A request names an
identifier (landing's ``forget_requests``, a file) or a ``one_id``; it means the whole
person: every identifier ``gold/identity_map`` gives that ``one_id``, every record
``gold/record_identity`` gives it, and the orders those identifiers placed.

Which rows of a table belong to the person follows from its columns, so a table added
later is covered without naming it here (``matches``):

- ``one_id`` (or ``related_one_id``): the person's ids, and the provisional one_ids of
  their identifiers (the speed layer's, ``precis.identity.resolve.provisional_id``);
- ``id_type`` and ``id_key``: the person's identifiers;
- ``dataset``, ``source``, ``record_id`` (or ``source``, ``record_id``): their records;
- ``order_id`` without identifier columns (``order_items``): their orders;
- ``node``: the identity graph's node of each of their identifiers;
- ``person_id`` (the generator's truth): the true people behind their records.

Bronze and quarantine keep rows as landed, so their rows are found by ``_id_key`` (the
key ingest gives every identified row), record and order, and deleted by lineage
(``bronze_lineage``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import privacy
from precis.columns import ID_KEY, ID_TYPE, ID_VALUE, ONE_ID, ORDER_ID, RECORD_ID, RUN_DATE, RUN_ID
from precis.frames import cut
from precis.identity.records import node_id
from precis.identity.resolve import provisional_id
from precis.ingest import conform, protect
from precis.ingest import identifiers as idn

REQUEST_KEY = "request_key"
REQUESTS_SCHEMA = "request_key string, id_type string, id_key string, requested_at timestamp"
LINEAGE = (conform.SOURCE_FILE, conform.ROW_HASH, conform.DUP_ORDINAL)
_ONE_ID_REQUEST = ONE_ID


@dataclass(frozen=True)
class Person:
    """Everyone a batch of requests means, as small frames (the job cuts them)."""

    one_ids: DataFrame  # one_id
    identifiers: DataFrame  # id_type, id_key
    records: DataFrame  # dataset, source, record_id
    orders: DataFrame  # order_id
    person_ids: DataFrame | None  # person_id (generated worlds' truth)

    def computed(self) -> Person:
        """The same frames, computed once: the job deletes with them table after table,
        and the tables they come from change meanwhile."""
        ids = None if self.person_ids is None else cut(self.person_ids)
        return Person(
            cut(self.one_ids), cut(self.identifiers), cut(self.records), cut(self.orders), ids
        )


def keyed_requests(plain: DataFrame, settings: conform.IdentifierSettings) -> DataFrame:
    """Requests given as landed (``id_type``, ``id_value``, optional ``requested_at``)
    as ``REQUESTS_SCHEMA``: the value normalized and hashed as ingest keys it."""
    keyed = protect.with_bronze_key(privacy.with_key(plain, settings.key), settings)
    key = F.col(protect.BRONZE_KEY)
    at = F.col("requested_at") if "requested_at" in plain.columns else F.current_timestamp()
    out = privacy.drop_key(
        keyed.select(
            idn.kind(F.col(ID_TYPE)).alias(ID_TYPE),
            key.alias(ID_KEY),
            F.to_timestamp(at).alias("requested_at"),
        )
    )
    return _with_request_key(out.filter(F.col(ID_KEY).isNotNull()))


def stored_requests(silver: DataFrame) -> DataFrame:
    """Silver ``forget_requests`` (already keyed by ingest) as ``REQUESTS_SCHEMA``."""
    valid = silver.filter(F.col(ID_KEY).isNotNull())
    return _with_request_key(valid.select(ID_TYPE, ID_KEY, F.col("requested_at")))


def one_id_requests(spark: SparkSession, one_ids: Sequence[str]) -> DataFrame:
    """Requests by ``one_id`` (``forget.one_ids``)."""
    rows = [(f"{_ONE_ID_REQUEST}:{i}", _ONE_ID_REQUEST, str(i), None) for i in one_ids]
    return spark.createDataFrame(rows, REQUESTS_SCHEMA)


def _with_request_key(df: DataFrame) -> DataFrame:
    key = F.concat_ws(":", F.col(ID_TYPE), F.col(ID_KEY))
    return df.select(key.alias(REQUEST_KEY), ID_TYPE, ID_KEY, "requested_at")


def pending(requests: DataFrame, forget_log: DataFrame | None) -> DataFrame:
    """Requests no finished forget run has handled; the earliest time each was made."""
    first = requests.groupBy(REQUEST_KEY, ID_TYPE, ID_KEY).agg(
        F.min("requested_at").alias("requested_at")
    )
    if forget_log is None:
        return first
    done = forget_log.select(F.explode("requests").alias(REQUEST_KEY))
    return first.join(done, REQUEST_KEY, how="left_anti")


def person(
    todo: DataFrame,
    identity_map: DataFrame | None,
    record_identity: DataFrame | None,
    orders: DataFrame | None,
    record_person: DataFrame | None,
) -> tuple[Person, DataFrame]:
    """The people ``todo`` means, and (request, identifier) pairs for suppression."""
    by_id = todo.filter(F.col(ID_TYPE) == _ONE_ID_REQUEST).select(
        REQUEST_KEY, F.col(ID_KEY).alias(ONE_ID)
    )
    by_identifier = todo.filter(F.col(ID_TYPE) != _ONE_ID_REQUEST)
    spark = todo.sparkSession
    if identity_map is None:
        identity_map = spark.createDataFrame([], "id_type string, id_key string, one_id string")
    ids = identity_map.select(ID_TYPE, ID_KEY, ONE_ID)
    resolved = by_identifier.join(ids, [ID_TYPE, ID_KEY], how="left").select(REQUEST_KEY, ONE_ID)
    request_people = resolved.filter(F.col(ONE_ID).isNotNull()).unionByName(by_id)
    one_ids = request_people.select(ONE_ID).distinct()
    # Each request suppresses its own identifier (even one no identity run has seen yet)
    # and every identifier of its person.
    pairs = by_identifier.select(REQUEST_KEY, ID_TYPE, ID_KEY).unionByName(
        request_people.join(ids, ONE_ID, how="inner").select(REQUEST_KEY, ID_TYPE, ID_KEY)
    )
    identifiers = pairs.select(ID_TYPE, ID_KEY).distinct()
    records = _records(record_identity, one_ids, spark)
    order_ids = _orders(orders, identifiers, spark)
    if orders is not None:
        placed = pairs.join(orders.select(ID_TYPE, ID_KEY, ORDER_ID), [ID_TYPE, ID_KEY], "inner")
        pairs = pairs.unionByName(
            placed.select(
                REQUEST_KEY,
                F.lit(protect.ORDER_SUPPRESSION).alias(ID_TYPE),
                F.col(ORDER_ID).cast("string").alias(ID_KEY),
            )
        )
    person_ids = None
    if record_person is not None and "person_id" in record_person.columns:
        person_ids = (
            record_person.join(records.drop("dataset"), ["source", RECORD_ID], how="left_semi")
            .select("person_id")
            .distinct()
        )
    found = Person(one_ids, identifiers, records, order_ids, person_ids)
    return found, pairs.distinct()


def _records(
    record_identity: DataFrame | None, one_ids: DataFrame, spark: SparkSession
) -> DataFrame:
    if record_identity is None:
        return spark.createDataFrame([], "dataset string, source string, record_id string")
    return (
        record_identity.join(one_ids, ONE_ID, how="left_semi")
        .select("dataset", "source", RECORD_ID)
        .distinct()
    )


def _orders(orders: DataFrame | None, identifiers: DataFrame, spark: SparkSession) -> DataFrame:
    if orders is None:
        return spark.createDataFrame([], "order_id string")
    return (
        orders.join(identifiers, [ID_TYPE, ID_KEY], how="left_semi")
        .select(F.col(ORDER_ID).cast("string").alias(ORDER_ID))
        .distinct()
    )


def suppression_rows(
    pairs: DataFrame, todo: DataFrame, fingerprint: str, run_date: dt.date, at: dt.datetime
) -> DataFrame:
    """``meta/suppressions``: (request_key, id_type, id_key, requested_at, run_date,
    forgotten_at, key_fingerprint); keyed hashes and order ids, no plain value."""
    when = todo.select(REQUEST_KEY, "requested_at")
    return (
        pairs.filter(F.col(ID_TYPE) != _ONE_ID_REQUEST)
        .join(when, REQUEST_KEY, how="inner")
        .select(
            REQUEST_KEY,
            ID_TYPE,
            ID_KEY,
            "requested_at",
            F.lit(run_date).alias(RUN_DATE),
            F.lit(at).alias("forgotten_at"),
            F.lit(fingerprint).alias("key_fingerprint"),
        )
    )


def matches(columns: Sequence[str], who: Person) -> list[tuple[DataFrame, tuple[str, ...]]]:
    """For a lakehouse table with ``columns``: frames of the person's values and the
    columns they match (each deleted with ``Lakehouse.delete_matching``)."""
    have = set(columns)
    found: list[tuple[DataFrame, tuple[str, ...]]] = []
    if ONE_ID in have:
        found.append((who.one_ids, (ONE_ID,)))
        # The speed layer's name for an identifier the identity map had not seen yet.
        provisional = provisional_id(F.col(ID_TYPE), F.col(ID_KEY)).alias(ONE_ID)
        found.append((who.identifiers.select(provisional), (ONE_ID,)))
    if "related_one_id" in have:
        found.append((who.one_ids.withColumnRenamed(ONE_ID, "related_one_id"), ("related_one_id",)))
    if {ID_TYPE, ID_KEY} <= have:
        found.append((who.identifiers, (ID_TYPE, ID_KEY)))
    if {"dataset", "source", RECORD_ID} <= have:
        found.append((who.records, ("dataset", "source", RECORD_ID)))
    elif {"source", RECORD_ID} <= have:
        found.append((who.records.select("source", RECORD_ID), ("source", RECORD_ID)))
    if ORDER_ID in have and ID_KEY not in have:
        found.append((who.orders, (ORDER_ID,)))
    if "node" in have:
        found.append((who.identifiers.select(node_id().alias("node")), ("node",)))
    if "person_id" in have and who.person_ids is not None:
        found.append((who.person_ids, ("person_id",)))
    return found


def bronze_lineage(
    bronze: DataFrame, dataset: str, who: Person, settings: conform.IdentifierSettings
) -> DataFrame:
    """The lineage (file, row hash, ordinal) of a bronze table's rows of the person:
    by identifier, by record (``id_observations``) and by order (``order_items``)."""
    hits: list[Column] = []
    df = bronze
    if ID_TYPE in df.columns and ID_VALUE in df.columns:
        if protect.BRONZE_KEY not in df.columns:
            # Written before bronze kept keys: key the landed value the same way now.
            keyed = privacy.with_key(df, settings.key)
            df = privacy.drop_key(protect.with_bronze_key(keyed, settings))
        ids = who.identifiers.select(
            F.col(ID_TYPE).alias("_f_type"),
            F.col(ID_KEY).alias("_f_key"),
            F.lit(True).alias("_f_id"),
        )
        df = df.join(
            F.broadcast(ids),
            (idn.kind(F.col(ID_TYPE)) == F.col("_f_type"))
            & (F.col(protect.BRONZE_KEY) == F.col("_f_key")),
            how="left",
        )
        hits.append(F.col("_f_id").isNotNull())
    if dataset == "id_observations":
        records = who.records.filter(F.col("dataset") == dataset).select(
            F.col("source").alias("_f_source"),
            F.col(RECORD_ID).alias("_f_record"),
            F.lit(True).alias("_f_rec"),
        )
        df = df.join(
            F.broadcast(records),
            (idn.kind(F.col("source")) == F.col("_f_source"))
            & (idn.fold(F.col(RECORD_ID)) == F.col("_f_record")),
            how="left",
        )
        hits.append(F.col("_f_rec").isNotNull())
    if dataset == "order_items" and ORDER_ID in df.columns:
        orders = who.orders.select(F.col(ORDER_ID).alias("_f_order"), F.lit(True).alias("_f_ord"))
        df = df.join(
            F.broadcast(orders),
            idn.is_order(df.columns, F.col("_f_order")),
            how="left",
        )
        hits.append(F.col("_f_ord").isNotNull())
    if not hits:
        return bronze.select(*LINEAGE).limit(0)
    hit = hits[0]
    for h in hits[1:]:
        hit = hit | h
    return df.filter(hit).select(*LINEAGE).distinct()


def log_rows(
    removed: dict[str, int],
    todo_keys: list[str],
    people: int,
    run: tuple[str, dt.date, dt.datetime],
) -> list[tuple]:
    """``meta/forget_log`` rows (``LOG_SCHEMA``): one per table the run changed."""
    run_id, run_date, at = run
    rows = [
        (run_id, run_date, at, table, n, people, todo_keys) for table, n in sorted(removed.items())
    ]
    # A run that found no rows still records the requests it handled.
    return rows or [(run_id, run_date, at, "(none)", 0, people, todo_keys)]


LOG_SCHEMA = (
    f"{RUN_ID} string, {RUN_DATE} date, forgotten_at timestamp, table string, "
    "rows_removed long, people long, requests array<string>"
)
