"""The table catalog: every lakehouse table declared once.

A ``Table`` names its layer and table, the keys a MERGE matches on, how the job that owns
it writes it, and the columns that do not count as a change when a rerun compares its rows
with the stored ones (lineage such as run ids and timestamps). ``precis.storage`` reads and
writes tables by these declarations; no other module spells a table's name.

Write modes (see docs/tables.md):

- ``overwrite``: the whole table is replaced (generator output, small checks);
- ``replace_where``: the rows of a predicate are replaced (one run date, one batch);
- ``merge``: MERGE on ``keys``, unchanged rows untouched;
- ``append_log``: insert-only MERGE on ``keys`` (logs; a rerun inserts nothing twice);
- ``snapshot``: one snapshot per run date, partitioned by ``run_date``; writing a run
  date replaces that date's rows only, and ``retention.snapshots`` bounds how many days
  are kept.

A silver fact table also names its ``as_of`` column: the time that places a row in the
past of a run date. Dated jobs read facts through it (``Lakehouse.read_as_of``), so a
run for an older date (a backfill) sees no later orders, events, touches or spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from precis.columns import (
    ID_KEY,
    ID_TYPE,
    ID_VALUE,
    INGEST_RUN_ID,
    INGESTED_AT,
    ONE_ID,
    RECORD_ID,
    RUN_DATE,
    RUN_ID,
    SOURCE_FILE,
)
from precis.schemas import SPECS, DatasetSpec

Layer = Literal["bronze", "silver", "gold", "truth", "meta"]
Mode = Literal["overwrite", "replace_where", "merge", "append_log", "snapshot"]
LAYERS: tuple[str, ...] = ("landing", "bronze", "silver", "gold", "truth", "meta")


@dataclass(frozen=True)
class Table:
    layer: Layer
    name: str
    mode: Mode = "overwrite"
    keys: tuple[str, ...] = ()
    # Columns whose differences alone do not make a row changed (MERGE leaves it alone).
    ignore: tuple[str, ...] = ()
    # MERGE: a source row replaces a stored one only if this column is not older.
    newer: str | None = None
    # Facts: the date or timestamp column that places a row in time (see read_as_of).
    as_of: str | None = None

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer '{self.layer}'; expected one of {', '.join(LAYERS)}")
        if self.mode in ("merge", "append_log") and not self.keys:
            raise ValueError(f"{self.ref}: a {self.mode} table needs keys")

    @property
    def ref(self) -> str:
        """``layer/name``, as messages and docs write it."""
        return f"{self.layer}/{self.name}"

    def __str__(self) -> str:
        return self.ref


def silver_keys(spec: DatasetSpec) -> tuple[str, ...]:
    """Silver's key: the landed key with ``id_value`` replaced by its hash and status."""
    keys: list[str] = []
    for k in spec.keys:
        keys.extend((ID_KEY, "id_status") if k == ID_VALUE else (k,))
    return tuple(keys)


# --------------------------------------------------------------------- bronze
# Each landed dataset as landed, extra columns kept; a batch's rows replaced on rerun.
BRONZE: dict[str, Table] = {name: Table("bronze", name, "replace_where") for name in SPECS}
QUARANTINE = Table("bronze", "quarantine", "replace_where")

# --------------------------------------------------------------------- silver
# Facts and when they happened. Identifiers, customers and items are current state: every
# run reads all of them (one_ids are stable, so an older run date uses today's map).
_AS_OF = {
    "orders": "order_time",
    "events": "event_time",
    "touchpoints": "touch_time",
    "campaign_spend": "spend_date",
    "experiment_assignments": "assigned_at",
}
SILVER: dict[str, Table] = {
    name: Table(
        "silver",
        name,
        "merge",
        keys=silver_keys(spec),
        # Lineage of the latest version: which file and ingest run, when.
        ignore=(SOURCE_FILE, INGEST_RUN_ID, INGESTED_AT),
        newer=spec.order_by,
        as_of=_AS_OF.get(name),
    )
    for name, spec in SPECS.items()
}
ID_OBSERVATIONS = SILVER["id_observations"]
EVENTS = SILVER["events"]
ORDERS = SILVER["orders"]
ORDER_ITEMS = SILVER["order_items"]
TOUCHPOINTS = SILVER["touchpoints"]
ITEMS = SILVER["items"]
CUSTOMERS = SILVER["customers"]
CAMPAIGN_SPEND = SILVER["campaign_spend"]
EXPERIMENT_ASSIGNMENTS = SILVER["experiment_assignments"]
EXPERIMENTS = SILVER["experiments"]

# ----------------------------------------------------------------------- gold
# identity
RECORD_KEYS = ("dataset", "source", RECORD_ID)
IDENTITY_MAP = Table("gold", "identity_map", "merge", keys=(ID_TYPE, ID_KEY))
RECORD_IDENTITY = Table("gold", "record_identity", "merge", keys=RECORD_KEYS)
IDENTITY_CHANGES = Table(
    "gold", "identity_changes", "append_log", keys=(RUN_DATE, "change", ONE_ID)
)
IDENTITY_GUARDS = Table("gold", "identity_guards", "replace_where")
# lifecycle
CUSTOMER_VALUE = Table("gold", "customer_value", "snapshot", keys=(ONE_ID,))
CLV_MODEL_PARAMS = Table("gold", "clv_model_params", "replace_where")
# tags and segments (tag_changes: one run date's changes against the snapshot before it)
PROFILE_TAGS = Table("gold", "profile_tags", "snapshot", keys=(ONE_ID, "tag"))
TAG_CHANGES = Table("gold", "tag_changes", "replace_where", keys=(RUN_DATE, ONE_ID, "tag"))
PROFILES = Table("gold", "profiles", "snapshot", keys=(ONE_ID,))
SEGMENTS = Table("gold", "segments", "snapshot", keys=("segment", ONE_ID))
TAG_STATS = Table("gold", "tag_stats", "replace_where")
# recommendations and attribution
RECOMMENDATIONS = Table("gold", "recommendations", "snapshot", keys=(ONE_ID, "rank"))
ATTRIBUTION = Table(
    "gold", "attribution", "merge", keys=(RUN_DATE, "model", "channel"), ignore=(RUN_ID,)
)
# experiments: one row per (experiment, arm, metric) of each run date that judged it
EXPERIMENT_RESULTS = Table(
    "gold",
    "experiment_results",
    "merge",
    keys=(RUN_DATE, "experiment_id", "arm", "metric"),
    ignore=(RUN_ID,),
)
# budget: the plan per channel, and each attribution model against each channel holdout
BUDGET_PLAN = Table("gold", "budget_plan", "merge", keys=(RUN_DATE, "channel"), ignore=(RUN_ID,))
ATTRIBUTION_CALIBRATION = Table(
    "gold",
    "attribution_calibration",
    "merge",
    keys=(RUN_DATE, "experiment_id", "arm", "model"),
    ignore=(RUN_ID,),
)
# share: differentially private aggregates for outside the team, one release per run
# date (a forced rerun replaces the date's rows); by release name (docs/share.md).
SHARED: dict[str, Table] = {
    "segments": Table("gold", "shared_segment_sizes", "replace_where", keys=(RUN_DATE, "segment")),
    "tags": Table(
        "gold", "shared_tag_distribution", "replace_where", keys=(RUN_DATE, "tag", "value")
    ),
    "attribution": Table("gold", "shared_attribution", "replace_where", keys=(RUN_DATE, "channel")),
}
SHARED_SEGMENT_SIZES = SHARED["segments"]
SHARED_TAG_DISTRIBUTION = SHARED["tags"]
SHARED_ATTRIBUTION = SHARED["attribution"]

# ----------------------------------------------------------------------- meta
INGEST_FILES = Table(
    "meta", "ingest_files", "append_log", keys=("dataset", "path", "size", "modified")
)
INGEST_RUNS = Table("meta", "ingest_runs", "append_log", keys=(RUN_ID, "dataset"))
IDENTITY_RUNS = Table("meta", "identity_runs", "append_log", keys=(RUN_ID,))
IDENTITY_STATE = Table("meta", "identity_state", "merge", keys=("node",))
IDENTITY_RECORDS = Table("meta", "identity_records", "merge", keys=RECORD_KEYS)
# Operators' force/never/block rules: written by people, read by the identity job.
IDENTITY_RULES = Table("meta", "identity_rules")
# The fingerprint of the key that hashed this lakehouse's PII identifiers (one row:
# fingerprint, first_used_at, env); a job with another key stops. Replaced by rekey.
KEY_FINGERPRINT = Table("meta", "key_fingerprint")
EVALUATIONS = Table("meta", "evaluations", "replace_where")
# The quality figures lifecycle and recommend measure in their own runs (holdout, churn
# AUC, validation against popularity), for the run report (precis.model_metrics).
MODEL_METRICS = Table("meta", "model_metrics", "replace_where")
SELFCHECK = Table("meta", "selfcheck", "merge", keys=("id",))
# Landing folders the generate job wrote: it replaces only these (generate.replace_landing).
GENERATED_LANDING = Table("meta", "generated_landing", "merge", keys=("path",))
# Forgetting: every identifier of a forgotten person as a keyed hash (ingest drops their
# rows forever), and one audit row per forget run and table (counts, request hashes).
SUPPRESSIONS = Table("meta", "suppressions", "append_log", keys=("request_key", ID_TYPE, ID_KEY))
FORGET_LOG = Table("meta", "forget_log", "append_log", keys=(RUN_ID, "table"))
# The pipeline's ledger: which (run date, job) finished, with the versions of what it read.
PIPELINE_RUNS = Table("meta", "pipeline_runs", "merge", keys=(RUN_DATE, "job"))
# One writer per job: the lease of the run that holds it (precis.storage.lease).
LEASES = Table("meta", "leases", "merge", keys=("job",))
# share: the privacy budget spent, one row per release and table (epsilon, delta).
PRIVACY_BUDGET = Table("meta", "privacy_budget", "append_log", keys=("release_id", "dataset"))

# ---------------------------------------------------------------------- truth
# The generator's ground truth, replaced with each generated world.
# In the order the generate job writes them.
TRUTH_NAMES = (
    "record_person",
    "person_preferences",
    "person_purchase_params",
    "channel_effects",
    "people",
    "traps",
    "corruptions",
    "experiment_lifts",
    "response_curves",
)
TRUTH: dict[str, Table] = {name: Table("truth", name) for name in TRUTH_NAMES}
RECORD_PERSON = TRUTH["record_person"]
PERSON_PURCHASE_PARAMS = TRUTH["person_purchase_params"]
CHANNEL_EFFECTS = TRUTH["channel_effects"]
PEOPLE = TRUTH["people"]
EXPERIMENT_LIFTS = TRUTH["experiment_lifts"]
RESPONSE_CURVES = TRUTH["response_curves"]


# ------------------------------------------------------------------ speed layer
# The stream job (docs/stream.md): hot tags and triggers, the activity it keeps for its
# windows (event time, identifiers as keys), and one row per micro-batch.
REALTIME_TAGS = Table(
    "gold", "realtime_tags", "merge", keys=(ONE_ID, "tag"), ignore=("updated_at",)
)
TRIGGERS = Table("gold", "triggers", "append_log", keys=("trigger", "event_id"))
STREAM_ACTIVITY = Table("meta", "stream_activity", "merge", keys=("dataset", "activity_id"))
STREAM_PROGRESS = Table("meta", "stream_progress", "merge", keys=("batch_id",))


# ------------------------------------------------------------------ readers
#: The tables each job reads (identity and tags: every silver table they may use). The
#: pipeline's ledger records their versions with each (run date, job) it finishes.
READS: dict[str, tuple[Table, ...]] = {
    "generate": (),
    "ingest": (INGEST_FILES,),  # and the landing files, listed in meta/ingest_files
    "forget": (SILVER["forget_requests"], IDENTITY_MAP, RECORD_IDENTITY, FORGET_LOG),
    "identity": (
        *SILVER.values(),
        IDENTITY_RULES,
        IDENTITY_STATE,
        IDENTITY_RECORDS,
        IDENTITY_MAP,
    ),
    "lifecycle": (ORDERS, EVENTS, IDENTITY_MAP, IDENTITY_GUARDS),
    "tags": (*SILVER.values(), IDENTITY_MAP, IDENTITY_GUARDS, CUSTOMER_VALUE, PROFILE_TAGS),
    "recommend": (EVENTS, ORDERS, ORDER_ITEMS, CUSTOMERS, IDENTITY_MAP),
    "attribution": (TOUCHPOINTS, ORDERS, CAMPAIGN_SPEND, IDENTITY_MAP, IDENTITY_GUARDS),
    "experiments": (EXPERIMENT_ASSIGNMENTS, EXPERIMENTS, ORDERS, IDENTITY_MAP, IDENTITY_GUARDS),
    "budget": (
        TOUCHPOINTS,
        ORDERS,
        CAMPAIGN_SPEND,
        IDENTITY_MAP,
        IDENTITY_GUARDS,
        EXPERIMENT_ASSIGNMENTS,
        EXPERIMENTS,
        EXPERIMENT_RESULTS,
    ),
    "share": (
        SEGMENTS,
        PROFILE_TAGS,
        TOUCHPOINTS,
        ORDERS,
        CAMPAIGN_SPEND,
        IDENTITY_MAP,
        IDENTITY_GUARDS,
        PRIVACY_BUDGET,
    ),
    "evaluate": (
        *SILVER.values(),
        RECORD_IDENTITY,
        CUSTOMER_VALUE,
        CLV_MODEL_PARAMS,
        ATTRIBUTION,
        EXPERIMENT_RESULTS,
        *TRUTH.values(),
    ),
    "stream": (
        IDENTITY_MAP,
        IDENTITY_GUARDS,
        CUSTOMERS,
        SEGMENTS,
        SUPPRESSIONS,
        STREAM_ACTIVITY,
        STREAM_PROGRESS,
        REALTIME_TAGS,
    ),
    # The run report: what the other jobs wrote for the run date, and the trends before it.
    "report": (
        INGEST_RUNS,
        QUARANTINE,
        IDENTITY_RUNS,
        IDENTITY_MAP,
        IDENTITY_CHANGES,
        IDENTITY_GUARDS,
        CUSTOMER_VALUE,
        TAG_STATS,
        SEGMENTS,
        RECOMMENDATIONS,
        ITEMS,
        ATTRIBUTION,
        BUDGET_PLAN,
        EXPERIMENT_RESULTS,
        MODEL_METRICS,
        EVALUATIONS,
        PIPELINE_RUNS,
    ),
    "selfcheck": (),
}


def _declared() -> dict[tuple[str, str], Table]:
    found: dict[tuple[str, str], Table] = {}
    for value in globals().values():
        tables = value.values() if isinstance(value, dict) else [value]
        for table in tables:
            if isinstance(table, Table):
                found[(table.layer, table.name)] = table
    return found


def find(layer: str, name: str) -> Table:
    """The declared table ``layer/name`` (for names that arrive as data, e.g. a list)."""
    try:
        return _DECLARED[(layer, name)]
    except KeyError:
        raise KeyError(f"no table {layer}/{name} in precis.tables") from None


_DECLARED = _declared()

#: The tables that keep one snapshot per run date.
SNAPSHOTS: tuple[Table, ...] = tuple(t for t in _DECLARED.values() if t.mode == "snapshot")

#: Every declared table (for jobs that visit all of them, such as rekey).
DECLARED: tuple[Table, ...] = tuple(_DECLARED.values())
