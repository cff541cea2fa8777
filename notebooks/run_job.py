# Databricks notebook source
# MAGIC %md
# MAGIC # Run a precis job
# MAGIC Runs one job (or the whole `pipeline`) with this notebook's Spark session.
# MAGIC Parameters come from the widgets; `run_date` empty means today (UTC), the jobs'
# MAGIC default; `overrides` takes `dotted.key=value` pairs separated by `;`, exactly like
# MAGIC `--set` on the command line.

# COMMAND ----------

from precis import jobs

# The job list is the library's own, so a new job appears here without editing this file.
dbutils.widgets.dropdown("job", "pipeline", list(jobs.JOBS), "job")
dbutils.widgets.text("run_date", "", "run_date (YYYY-MM-DD)")
dbutils.widgets.text("env", "databricks", "env")
dbutils.widgets.text("overrides", "", "overrides (key=value;...)")

# COMMAND ----------

from precis.config import load_config

job = dbutils.widgets.get("job")
overrides = [o.strip() for o in dbutils.widgets.get("overrides").split(";") if o.strip()]
cfg = load_config(
    overrides=overrides,
    run_date=dbutils.widgets.get("run_date") or None,
    env=dbutils.widgets.get("env") or None,
)
print(f"{job}: run date {cfg.run_date}, env {cfg.env}, tables under {cfg.root}")

# COMMAND ----------

from precis.session import get_spark

result = jobs.load(job).run(get_spark(cfg), cfg)
