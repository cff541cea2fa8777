"""Digests of every Delta table in a lakehouse's layers, to show that a change left outputs alone.

    .venv/bin/python bench/gold_digest.py /tmp/demo/lakehouse --save before.json
    ... change the code, run the same pipeline into another root ...
    .venv/bin/python bench/gold_digest.py /tmp/demo2/lakehouse --compare before.json

A table's digest is its row count and the sum of a 64-bit hash of each row: it does not
depend on row order or file layout, and any changed value changes it (barring a hash
collision). Columns that record when or in which run a row was written differ between
any two runs and are left out (``VOLATILE``); so are whole tables that only log runs.
``--compare`` prints the tables whose digests differ and exits 1 if any do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.config import load_config
from precis.session import get_spark

LAYERS = ("silver", "gold")
# When and by which run a row was written, and the landed file it came from (the
# lakehouse root and Spark's part-file names are in it): new in every run by design.
VOLATILE = frozenset(
    {
        "_source_file",
        "run_id",
        "computed_at",
        "generated_at",
        "changed_at",
        "created_at",
        "_ingested_at",
        "_run_id",
        "model_version",
    }
)


def digest(frame: DataFrame) -> dict[str, object]:
    columns = sorted(c for c in frame.columns if c not in VOLATILE)
    # to_json of a struct keeps every type (maps, arrays, doubles) as text exactly.
    row_hash = F.xxhash64(F.to_json(F.struct(*columns))).cast("decimal(38,0)")
    row = frame.agg(F.count(F.lit(1)).alias("rows"), F.sum(row_hash).alias("sum")).collect()[0]
    return {"rows": int(row["rows"]), "digest": str(row["sum"]), "columns": columns}


def tables(root: Path) -> dict[str, Path]:
    found = {}
    for layer in LAYERS:
        base = root / layer
        if base.is_dir():
            for path in sorted(base.iterdir()):
                if (path / "_delta_log").is_dir():
                    found[f"{layer}/{path.name}"] = path
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a lakehouse root (storage.root)")
    parser.add_argument("--save", type=Path, help="write the digests to this JSON file")
    parser.add_argument("--compare", type=Path, help="a file written by --save")
    args = parser.parse_args()
    spark = get_spark(load_config(overrides=[f"storage.root={args.root}"]))
    out = {
        name: digest(spark.read.format("delta").load(str(path)))
        for name, path in tables(args.root).items()
    }
    spark.stop()
    if args.save is not None:
        args.save.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    differ = 0
    for name in sorted(set(before) | set(out)):
        old, new = before.get(name), out.get(name)
        if old == new:
            print(f"same     {name} ({new['rows']:,} rows)")  # type: ignore[index]
        else:
            differ += 1
            print(f"DIFFERS  {name}: before {old}, after {new}")
    print(f"{differ} of {len(set(before) | set(out))} tables differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
