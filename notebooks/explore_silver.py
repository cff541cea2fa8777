# Databricks notebook source
# MAGIC %md
# MAGIC # Explore silver tables and the ingest quarantine
# MAGIC Read-only: shows what the last ingest runs accepted, rejected and why. Widgets:
# MAGIC `env` (config overlay) and `overrides` (`dotted.key=value` pairs separated by `;`,
# MAGIC like `--set`). Only counts and reasons are shown, never the rejected rows, which
# MAGIC hold data as landed (PII included).

# COMMAND ----------

dbutils.widgets.text("env", "databricks", "env")
dbutils.widgets.text("overrides", "", "overrides (key=value;...)")

# COMMAND ----------

from pyspark.sql import functions as F

from precis import tables as T
from precis.config import load_config
from precis.session import get_spark
from precis.storage import Lakehouse

overrides = [o.strip() for o in dbutils.widgets.get("overrides").split(";") if o.strip()]
cfg = load_config(overrides=overrides, env=dbutils.widgets.get("env") or None)
lake = Lakehouse.from_config(get_spark(cfg), cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Ingest runs, newest first

# COMMAND ----------

display(lake.read(T.INGEST_RUNS).orderBy(F.desc("ingested_at"), "dataset"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Quarantine reasons

# COMMAND ----------

# A rejected row lists all its reasons (`;`-separated): count each reason on its own, as
# the ingest summary does, so one frequent problem is not spread over many combinations.
# The quarantine table appears with the first rejected row.
if lake.exists(T.QUARANTINE):
    display(
        lake.read(T.QUARANTINE)
        .select("dataset", F.explode(F.split("reason", ";")).alias("reason"))
        .groupBy("dataset", "reason")
        .count()
        .orderBy(F.desc("count"), "dataset", "reason")
    )
else:
    print(f"bronze/quarantine is absent under {cfg.root}: no row has been rejected")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Identifier status in silver/id_observations

# COMMAND ----------

display(
    lake.read(T.ID_OBSERVATIONS)
    .groupBy("id_type", "id_status")
    .count()
    .orderBy("id_type", "id_status")
)
