# Databricks notebook source
# MAGIC %md
# MAGIC # Run a precis job
# MAGIC Runs one job (or the whole `pipeline`) with this notebook's Spark session.
# MAGIC Parameters come from the widgets; `overrides` takes `dotted.key=value` pairs
# MAGIC separated by `;`, exactly like `--set` on the command line.

# COMMAND ----------

dbutils.widgets.dropdown("job", "pipeline", ["pipeline", "generate", "ingest", "identity", "lifecycle", "tags", "recommend", "attribution", "evaluate", "selfcheck"])  # noqa: F821
dbutils.widgets.text("run_date", "")  # noqa: F821
dbutils.widgets.text("env", "databricks")  # noqa: F821
dbutils.widgets.text("overrides", "")  # noqa: F821

# COMMAND ----------

import importlib

from precis.config import load_config

job = dbutils.widgets.get("job")  # noqa: F821
overrides = [o.strip() for o in dbutils.widgets.get("overrides").split(";") if o.strip()]  # noqa: F821
cfg = load_config(
    overrides=overrides,
    run_date=dbutils.widgets.get("run_date") or None,  # noqa: F821
    env=dbutils.widgets.get("env") or None,  # noqa: F821
)

# COMMAND ----------

from precis.session import get_spark

result = importlib.import_module(f"jobs.{job}").run(get_spark(cfg), cfg)
