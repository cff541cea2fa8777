# Databricks notebook source
# MAGIC %md
# MAGIC # Real-time tags and triggers
# MAGIC Runs the `stream` job with this notebook's Spark session: `available_now` processes
# MAGIC the events and orders that have landed since the last run, then stops; an interval
# MAGIC such as `10 seconds` keeps a micro-batch going that often for `run_seconds` (empty:
# MAGIC until the cell is cancelled). Then shows the live profiles (the batch profile with
# MAGIC the real-time tags overlaid), the latest triggers and the stream's progress.
# MAGIC `overrides` takes `dotted.key=value` pairs separated by `;`, like `--set`.

# COMMAND ----------

dbutils.widgets.text("env", "databricks", "env")
dbutils.widgets.text("trigger", "available_now", "trigger (available_now or an interval)")
dbutils.widgets.text("run_seconds", "", "run_seconds (with an interval; empty: until stopped)")
dbutils.widgets.text("overrides", "", "overrides (key=value;...)")

# COMMAND ----------

from precis.config import load_config

overrides = [o.strip() for o in dbutils.widgets.get("overrides").split(";") if o.strip()]
overrides.append(f"stream.trigger={dbutils.widgets.get('trigger')}")
if dbutils.widgets.get("run_seconds"):
    overrides.append(f"stream.run_seconds={dbutils.widgets.get('run_seconds')}")
cfg = load_config(overrides=overrides, env=dbutils.widgets.get("env") or None)
print(f"stream ({cfg.stream.trigger}): tables under {cfg.root}")

# COMMAND ----------

from precis.jobs import stream
from precis.session import get_spark

spark = get_spark(cfg)
result = stream.run(spark, cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Live profiles

# COMMAND ----------

from pyspark.sql import functions as F

live = stream.live_profiles(spark, cfg)
display(live.orderBy(F.col("realtime_updated_at").desc_nulls_last(), "one_id").limit(100))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Latest triggers

# COMMAND ----------

from precis import tables as T
from precis.storage import Lakehouse

lake = Lakehouse.from_config(spark, cfg)
if lake.exists(T.TRIGGERS):
    display(lake.read(T.TRIGGERS).orderBy(F.col("fired_at").desc(), "event_id").limit(100))
else:
    print("no trigger has fired yet")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Stream progress

# COMMAND ----------

display(lake.read(T.STREAM_PROGRESS).orderBy(F.col("batch_id").desc()).limit(20))
