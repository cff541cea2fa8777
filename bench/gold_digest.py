"""Digests of every Delta table in a lakehouse's layers, to show that a change left outputs alone.

    .venv/bin/python bench/gold_digest.py /tmp/demo/lakehouse --save before.json
    ... change the code, run the same pipeline into another root ...
    .venv/bin/python bench/gold_digest.py /tmp/demo2/lakehouse --compare before.json

A table's digest is its row count and the sum of a 64-bit hash of each row: it does not
depend on row order or file layout, and any changed value changes it (barring a hash
collision). Columns that record when or in which run a row was written differ between
any two runs and are left out (``precis.frames.VOLATILE``).
``--compare`` prints the tables whose digests differ and exits 1 if any do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from precis.config import load_config
from precis.frames import digest
from precis.session import get_spark

LAYERS = ("silver", "gold")


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
