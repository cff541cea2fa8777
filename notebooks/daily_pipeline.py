# Databricks notebook source
# MAGIC %md
# MAGIC # Daily pipeline
# MAGIC Runs the `pipeline` job for one run date with this notebook's Spark session, then
# MAGIC shows a short health summary from the meta tables the jobs write.
# MAGIC
# MAGIC Widgets:
# MAGIC - `run_date`: `YYYY-MM-DD`; empty means **yesterday (UTC)**, the last complete day;
# MAGIC - `env`: config overlay (`databricks`, `cluster`, `local`);
# MAGIC - `overrides`: `dotted.key=value` pairs separated by `;`, like `--set`;
# MAGIC - `jobs`: comma-separated jobs to run, in order; empty means the configured
# MAGIC   `pipeline.jobs`.

# COMMAND ----------

dbutils.widgets.text("run_date", "", "run_date (empty: yesterday, UTC)")
dbutils.widgets.text("env", "databricks", "env")
dbutils.widgets.text("overrides", "", "overrides (key=value;...)")
dbutils.widgets.text("jobs", "", "jobs (comma-separated; empty: pipeline.jobs)")

# COMMAND ----------

import datetime as dt

from pyspark.sql import functions as F

from precis import jobs
from precis import tables as T
from precis.config import load_config
from precis.session import get_spark
from precis.storage import Lakehouse
from precis.tables import Table

overrides = [o.strip() for o in dbutils.widgets.get("overrides").split(";") if o.strip()]
selected = [j.strip() for j in dbutils.widgets.get("jobs").split(",") if j.strip()]
if selected:
    # Exactly --set pipeline.jobs=[...]: the config checks every name against precis.jobs.
    overrides.append(f"pipeline.jobs=[{', '.join(selected)}]")
# A daily run processes the day that has ended, not the one still filling up.
run_date = (
    dbutils.widgets.get("run_date").strip()
    or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
)
cfg = load_config(overrides=overrides, run_date=run_date, env=dbutils.widgets.get("env") or None)
print(
    f"pipeline: {', '.join(cfg.pipeline.jobs)}; run date {cfg.run_date}; env {cfg.env}; tables under {cfg.root}"
)

# COMMAND ----------

session = get_spark(cfg)
jobs.load("pipeline").run(session, cfg)
lake = Lakehouse.from_config(session, cfg)

# COMMAND ----------


def show_run_date_rows(table: Table, order_by: list, writer: str) -> None:
    """Display this run date's rows of a meta table, or say why there are none."""
    if not lake.exists(table):
        print(f"{table} is absent under {cfg.root}: the {writer} job has not run here")
        return
    rows = lake.read(table).filter(F.col("run_date") == F.lit(cfg.run_date)).orderBy(*order_by)
    if rows.isEmpty():
        print(
            f"meta/{table} has no rows for run date {cfg.run_date}: the {writer} job did not run for it"
        )
        return
    display(rows)


# COMMAND ----------

# MAGIC %md
# MAGIC ## Ingest runs of the run date
# MAGIC Per dataset: files, rows in, silver inserts and updates, duplicates, quarantined rows,
# MAGIC blocked and invalid identifiers; `error` is empty when the dataset went through.

# COMMAND ----------

show_run_date_rows(T.INGEST_RUNS, [F.desc("ingested_at"), "dataset"], "ingest")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Identity runs of the run date
# MAGIC Identifiers, records, links, one_ids, the largest one_id and the identity map's
# MAGIC inserts, updates and deletes.

# COMMAND ----------

show_run_date_rows(T.IDENTITY_RUNS, [F.desc("finished_at")], "identity")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Evaluations of the run date
# MAGIC Scores against the generator's ground truth: only for generated data.

# COMMAND ----------

show_run_date_rows(T.EVALUATIONS, ["target", "metric"], "evaluate")
