"""The forget job's deletions: every table of every layer, in an order safe to rerun.

``precis.forget`` finds the rows (pure); this module deletes them, table after table,
through the lakehouse (``Lakehouse.delete_matching``).
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import forget
from precis import tables as T
from precis.columns import ID_KEY
from precis.frames import cut
from precis.ingest.conform import BRONZE_KEY, IdentifierSettings
from precis.storage import Lakehouse
from precis.tables import Table

# Never searched for rows: the suppression list and the log are what forgetting keeps,
# and the requests themselves (keyed hashes only): they record what was asked, and a run
# that dies before its log entry must find them again when rerun.
KEPT = (
    T.SUPPRESSIONS,
    T.FORGET_LOG,
    T.KEY_FINGERPRINT,
    T.BRONZE["forget_requests"],
    T.SILVER["forget_requests"],
)
# Deleted from last: a run that dies halfway finds the person through them again.
LAST = (T.RECORD_IDENTITY, T.IDENTITY_MAP)


def delete_everywhere(
    lake: Lakehouse, who: forget.Person, settings: IdentifierSettings
) -> dict[str, int]:
    """Rows removed per table (``layer/name``), for every table holding any."""
    removed: dict[str, int] = {}
    lineage: list[DataFrame] = []
    for dataset, table in T.BRONZE.items():
        if table not in KEPT and lake.exists(table):
            rows = cut(forget.bronze_lineage(lake.read(table), dataset, who, settings))
            lineage.append(rows)
            removed[table.ref] = lake.delete_matching(table, rows, forget.LINEAGE)
    if lineage:
        every = reduce(DataFrame.unionByName, lineage)
        removed[T.QUARANTINE.ref] = lake.delete_matching(T.QUARANTINE, every, forget.LINEAGE)
    # Rejected rows whose bronze row is gone already (bronze.retention_days), by key.
    keys = who.identifiers.select(F.col(ID_KEY).alias(BRONZE_KEY))
    removed[T.QUARANTINE.ref] = removed.get(T.QUARANTINE.ref, 0) + lake.delete_matching(
        T.QUARANTINE, keys, (BRONZE_KEY,)
    )
    bronze = {*T.BRONZE.values(), T.QUARANTINE}
    ordered: list[Table] = [
        t for t in T.DECLARED if t not in bronze and t not in KEPT and t not in LAST
    ]
    for table in [*ordered, *LAST]:
        if not lake.exists(table):
            continue
        for matches, on in forget.matches(lake.read(table).columns, who):
            removed[table.ref] = removed.get(table.ref, 0) + lake.delete_matching(
                table, matches, on
            )
    return {ref: n for ref, n in removed.items() if n}
