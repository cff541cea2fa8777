"""Public data sets the benchmarks read out of PyPI packages (never committed, never imported).

MovieLens-100k: the ratings file of the ``recbole`` 1.2.1 wheel
(``recbole/dataset_example/ml-100k/ml-100k.inter``), fetched with ``pip download
--no-deps`` into a cache folder on first use.
"""

from __future__ import annotations

import glob
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

RECBOLE = "recbole==1.2.1"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
DEFAULT_CACHE = Path.home() / ".cache" / "precis-bench"


def movielens_100k_ratings(cache: Path = DEFAULT_CACHE) -> np.ndarray:
    """int64 rows of (user, item, stars 1-5, unix time): MovieLens-100k's 100,000 ratings."""
    wheels = sorted(glob.glob(str(cache / "recbole-1.2.1-*.whl")))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        print(f"fetching the {RECBOLE} wheel into {cache}", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", RECBOLE, "--no-deps", "-d", str(cache)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wheels = sorted(glob.glob(str(cache / "recbole-1.2.1-*.whl")))
    with zipfile.ZipFile(wheels[0]) as wheel:
        text = wheel.read(ML100K_MEMBER).decode()
    header, *lines = text.splitlines()
    if not header.startswith("user_id:token\titem_id:token\trating:float\ttimestamp:float"):
        raise SystemExit(f"unexpected header in {ML100K_MEMBER}: {header!r}")
    return np.loadtxt(io.StringIO("\n".join(lines)), delimiter="\t", dtype=np.float64).astype(
        np.int64
    )


def per_user_split(users: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the rows kept in the first part: round(share * n) random rows of each user."""
    order = np.lexsort((rng.random(len(users)), users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    position = np.arange(len(users)) - np.repeat(starts, counts)
    keep_n = np.rint(share * counts).astype(np.int64)
    first = np.empty(len(users), dtype=bool)
    first[order] = position < np.repeat(keep_n, counts)
    return first
