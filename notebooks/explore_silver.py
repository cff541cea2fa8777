# Databricks notebook source
# MAGIC %md
# MAGIC # Explore silver tables and the ingest quarantine
# MAGIC Read-only: shows what the last ingest runs accepted, rejected and why.

# COMMAND ----------

dbutils.widgets.text("env", "databricks")  # noqa: F821
dbutils.widgets.text("overrides", "")  # noqa: F821

# COMMAND ----------

from pyspark.sql import functions as F

from precis.config import load_config
from precis.session import get_spark
from precis.storage import Lakehouse

overrides = [o.strip() for o in dbutils.widgets.get("overrides").split(";") if o.strip()]  # noqa: F821
cfg = load_config(overrides=overrides, env=dbutils.widgets.get("env") or None)  # noqa: F821
lake = Lakehouse.from_config(get_spark(cfg), cfg)

# COMMAND ----------

display(lake.read("meta", "ingest_runs").orderBy(F.desc("ingested_at")))  # noqa: F821

# COMMAND ----------

display(  # noqa: F821
    lake.read("bronze", "quarantine").groupBy("dataset", "reason").count().orderBy(F.desc("count"))
)

# COMMAND ----------

display(lake.read("silver", "id_observations").groupBy("id_type", "id_status").count())  # noqa: F821
