"""identity with its defaults on a small world of each generated family, against the
simple link-everything baseline, and the churn of a next-day run.

Each world is the identity sweep benchmark's (``bench/bench_identity_sweep.py``) at
300 people and the generator's own trap settings: generated for the run date, resolved
as two days (every record before the run date, then all of them, incrementally), and
scored on the second day against the generator's truth.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import sys
from pathlib import Path

import pytest

# A world generated, ingested twice and resolved twice per family: a few minutes each.
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench"
RUN_DATE = dt.date(2026, 3, 31)
PEOPLE = 300


@pytest.fixture(scope="module")
def sweep():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("bench_identity_sweep")
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module", params=["retail", "siloed"])
def scored(request, spark, sweep, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param) / "lakehouse"
    cfg = sweep.world_config(root, PEOPLE, request.param, 1.0, RUN_DATE)
    with contextlib.redirect_stdout(sys.stderr):
        return {**sweep.one_world(spark, cfg, 1.0), "family": request.param}


def test_precision_is_high(scored):
    assert scored["precis"]["precision"] >= 0.995


def test_recall_is_within_a_point_of_what_the_records_connect(scored):
    precis = scored["precis"]
    assert precis["recall"] >= precis["recall_ceiling"] - 0.01


def test_f1_is_at_least_the_simple_baselines(scored):
    assert scored["precis"]["f1"] >= scored["baseline"]["f1"]


def test_a_next_day_run_leaves_untouched_people_alone(scored):
    churn = scored["churn"]
    assert churn["mode"] == "incremental"
    assert churn["untouched_people"] > PEOPLE / 2
    assert churn["churned_records"] == 0, churn["by_trap"]
