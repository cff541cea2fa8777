# Databricks notebook source
# MAGIC %md
# MAGIC # Inspect one person
# MAGIC Everything the gold tables hold about one person: identifiers, the history of their
# MAGIC `one_id`, tags, value and lifecycle stage, recommendations. Read-only.
# MAGIC
# MAGIC Widgets (give `one_id` or `member_id`, not both):
# MAGIC - `one_id`: the person id of `gold/identity_map`;
# MAGIC - `member_id`: a CRM member id as landed; matched as ingest stores it
# MAGIC   (`ingest.id_rules.member_id`, trimmed by default);
# MAGIC - `env`: config overlay; `overrides`: `dotted.key=value` pairs separated by `;`.
# MAGIC
# MAGIC Identifiers are shown as `id_key`, a keyed hash for PII types (email, phone): no
# MAGIC plain email or phone appears here. A section whose table does not exist says so.

# COMMAND ----------

dbutils.widgets.text("one_id", "", "one_id")
dbutils.widgets.text("member_id", "", "member_id")
dbutils.widgets.text("env", "databricks", "env")
dbutils.widgets.text("overrides", "", "overrides (key=value;...)")

# COMMAND ----------

from precis import person
from precis import tables as T
from precis.config import load_config
from precis.ingest.conform import IdentifierSettings
from precis.session import get_spark
from precis.storage import Lakehouse

overrides = [o.strip() for o in dbutils.widgets.get("overrides").split(";") if o.strip()]
cfg = load_config(overrides=overrides, env=dbutils.widgets.get("env") or None)
lake = Lakehouse.from_config(get_spark(cfg), cfg)

# Without the identity map there is nobody to look up: reading it fails naming the table.
identity_map = lake.read(T.IDENTITY_MAP)
tables = {t: lake.read_current(t) for t in person.SECTIONS.values()}  # newest snapshots
one_id = person.resolve_one_id(
    identity_map,
    IdentifierSettings.from_config(cfg),
    one_id=dbutils.widgets.get("one_id"),
    member_id=dbutils.widgets.get("member_id"),
    changes=tables[T.IDENTITY_CHANGES],
)
view = person.person_view(one_id, tables)
print(f"person {one_id} (tables under {cfg.root})")


def show(section: str) -> None:
    """Display one section of the person, or say that its table is absent."""
    if view[section] is None:
        print(
            f"{section}: {person.SECTIONS[section]} is absent under {cfg.root}; run the job that writes it"
        )
    else:
        display(view[section])


# COMMAND ----------

# MAGIC %md
# MAGIC ## Identifiers

# COMMAND ----------

show("identifiers")

# COMMAND ----------

# MAGIC %md
# MAGIC ## History of the one_id
# MAGIC Created, merged, split or deleted, by run; includes changes naming this `one_id` as
# MAGIC the related one (an id merged into it, a fragment split from it).

# COMMAND ----------

show("history")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tags

# COMMAND ----------

show("tags")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Value and lifecycle stage

# COMMAND ----------

show("value")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Recommendations

# COMMAND ----------

show("recommendations")
