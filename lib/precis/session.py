"""SparkSession factory: the caller asks for a session, nothing is created at import."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from precis import jvm
from precis.config import Config

# Local defaults, each overridable through ``spark.conf`` in config.
LOCAL_DEFAULTS: dict[str, str] = {
    # A laptop or a 2-core CI box: 200 shuffle partitions would be 200 tiny tasks.
    "spark.sql.shuffle.partitions": "8",
    # Local mode runs every task inside the driver JVM: Spark's 1 GB default heap runs
    # out when the generator's output and an ingest batch share it.
    "spark.driver.memory": "4g",
    # Delta reads its log with 50 partitions by default; far too many for local tables.
    "spark.databricks.delta.snapshotPartitions": "4",
    # Our own progress lines replace the console progress bar.
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # Adaptive execution coalesces small shuffles; keep it on explicitly.
    "spark.sql.adaptive.enabled": "true",
    # Delta MERGE/overwrite on local disk: no need to retain old files for a week here.
    "spark.databricks.delta.retentionDurationCheck.enabled": "false",
}

DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands PySpark its gateway port.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(cfg: Config, extra_packages: tuple[str, ...] = ()) -> SparkSession:
    """Return the active session (Databricks, spark-submit, a test) or build a local one."""
    active = SparkSession.getActiveSession()
    if active is None and not launched_by_spark_submit():
        builder = SparkSession.builder.appName(cfg.spark.app_name).master(cfg.spark.master)
        local = cfg.spark.master.startswith("local")
        conf = {**(LOCAL_DEFAULTS if local else {}), **DELTA_CONF}
        if cfg.spark.add_packages:
            conf["spark.jars.packages"] = ",".join(jvm.packages(extra_packages))
            conf["spark.jars.ivySettings"] = jvm.ivy_settings_path()
            if cfg.spark.ivy_dir:
                conf["spark.jars.ivy"] = cfg.spark.ivy_dir
        if local:
            # Python workers (pandas UDFs) must run this environment's interpreter;
            # PySpark reads it from the environment when the context starts.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            conf["spark.driver.extraJavaOptions"] = f"-Dlog4j.configurationFile={jvm.log4j_config_path()}"
        conf.update(cfg.spark.conf)
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    else:
        spark = active or SparkSession.builder.getOrCreate()
        _apply_runtime_conf(spark, cfg.spark.conf)
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    spark.sparkContext.setCheckpointDir(cfg.checkpoint_dir)
    return spark


def _apply_runtime_conf(spark: SparkSession, conf: dict[str, str]) -> None:
    """Apply the settings a running session accepts; static ones were fixed at launch."""
    for key, value in conf.items():
        if spark.conf.isModifiable(key):
            spark.conf.set(key, value)
