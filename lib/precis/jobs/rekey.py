"""rekey: rewrite every keyed hash of the lakehouse under a new hashing key.

Run once per rotation, by hand, never by the daily pipeline: the old key in the variable
named by ``privacy.previous_key_env``, the new one in ``privacy.pii_key_env``. Checks
the old key against ``meta/key_fingerprint``, builds the old -> new translation from the
plain values it can still read (landing files, plain bronze rows; ``precis.rekey``),
rewrites each table's keyed hashes in place, empties the identity job's incremental
state (the next identity run reclusters in full, one_ids stay) and stores the new
key's fingerprint last. A rerun after a failure finishes the rotation; after success it
changes nothing. Procedure and limits: docs/privacy.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import keys, privacy, rekey
from precis import tables as T
from precis.columns import ID_TYPE, ID_VALUE
from precis.config import Config
from precis.frames import kept_observed, row_count
from precis.ingest.conform import IdentifierSettings
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.schemas import SPECS
from precis.storage import Lakehouse, list_landing_files, read_landing
from precis.tracking import job_run

JOB = "rekey"
#: Derived from keyed hashes and rebuilt by the next identity run: emptied, not translated.
REBUILT = (T.IDENTITY_STATE, T.IDENTITY_RECORDS)


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    settings = cfg.privacy
    new = privacy.resolve_key(settings, cfg.env)
    old = privacy.resolve_key(settings, cfg.env, settings.previous_key_env)
    mode = rekey.check_rotation(
        keys.stored(lake), old, new, settings.previous_key_env, settings.pii_key_env
    )
    ids = IdentifierSettings.of(cfg.ingest, settings.pii_types, new)
    old_print, new_print = privacy.fingerprint(old), privacy.fingerprint(new)
    tables = [t for t in T.DECLARED if t not in (*REBUILT, T.KEY_FINGERPRINT) and lake.exists(t)]
    progress = Progress(JOB, len(tables) + 2)
    result: dict[str, Any] = {"from": old_print, "to": new_print, "mode": mode, "tables": {}}
    with job_run(cfg, JOB) as tracker:
        with progress.step("translation") as step:
            found = rekey.translation(plain(spark, cfg, lake), ids, old, new)
        with kept_observed(found, [row_count()]) as (translation, counted):
            step.rows = result["identifiers"] = int(counted["rows"])
            for table in tables:
                with progress.step(table.ref) as step:
                    done = translate(lake, table, translation, ids, new_print, old_print)
                    step.detail = rekey.describe(done)
                    if done:
                        result["tables"][table.ref] = done
        with progress.step("identity state and the new fingerprint"):
            for table in REBUILT:
                lake.delete_where(table, "true")
            keys.record(lake, new, cfg.env)
        tracker.log_metrics(metrics(result))
        tracker.log_dict(result, "rekey.json")
    for table, columns in result["tables"].items():
        for column, counts in columns.items():
            if counts["untranslated"]:
                log.warning(
                    "[%s] %s.%s: %d row(s) keep a hash no plain value explains (old key)",
                    *(JOB, table, column, counts["untranslated"]),
                )
    progress.finish(f"key {old_print[:12]}… -> {new_print[:12]}…")
    return result


def plain(spark: SparkSession, cfg: Config, lake: Lakehouse) -> DataFrame:
    """id_type, id_value of every identified landing file and plain bronze row."""
    frames = []
    for name, spec in SPECS.items():
        if not spec.identified:
            continue
        where, fmt = cfg.landing_path(name), cfg.landing_format(name)
        files = list_landing_files(spark, where, fmt)
        if files:
            landed = read_landing(spark, files, fmt, where, cfg.landing_encoding(name))
            if {ID_TYPE, ID_VALUE} <= set(landed.columns):
                frames.append(rekey.plain_values(landed))
        if lake.exists(T.BRONZE[name]):
            frames.append(rekey.plain_values(lake.read(T.BRONZE[name])))
    if not frames:
        return spark.createDataFrame([], f"{ID_TYPE} string, {ID_VALUE} string")
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def translate(
    lake: Lakehouse,
    table: T.Table,
    translation: DataFrame,
    ids: IdentifierSettings,
    new_print: str,
    old_print: str,
) -> dict[str, dict[str, int]]:
    """Rewrite ``table``'s keyed hashes: per column, the rows translated and those left."""
    columns = lake.read(table).columns
    done: dict[str, dict[str, int]] = {}
    for slot in rekey.slots(columns, new_print):
        translated = lake.update_matched(translation, table, slot.condition, dict(slot.sets))
        # The rows left are the job's result (what the operator must know), not a log line.
        left = rekey.left_over(lake.read(table), slot, translation, ids).count()
        done[slot.sets[0][0]] = {"translated": translated, "untranslated": left}
    if rekey.KEY_FINGERPRINT in columns:
        # Rows still under the old key say so: ingest needs that key to honour them.
        marker = lake.spark.range(1).select(F.lit(old_print).alias("fp"))
        condition = f"t.`{rekey.KEY_FINGERPRINT}` IS NULL"
        lake.update_matched(marker, table, condition, {rekey.KEY_FINGERPRINT: "s.fp"})
    return done


def metrics(result: dict[str, Any]) -> dict[str, float]:
    out = {"identifiers": float(result["identifiers"])}
    for table, columns in result["tables"].items():
        for column, counts in columns.items():
            for name, value in counts.items():
                out[f"{name}.{table.replace('/', '.')}.{column}"] = float(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
