"""The batch jobs. Each ``precis.jobs.<job>`` module has ``main(argv)`` and ``run(spark, cfg)``.

This package is the one list of jobs: the command line, ``spark-submit.sh``, the
pipeline's validation and the notebooks' job pickers all read :data:`JOBS`. Importing it
imports no job module (they pull in PySpark and MLflow).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Every job, in the order a pipeline runs them; ``pipeline`` and ``selfcheck`` last.
JOBS: tuple[str, ...] = (
    "generate",
    "ingest",
    "forget",
    "identity",
    "lifecycle",
    "tags",
    "recommend",
    "attribution",
    "experiments",
    # Plans next period's budget per channel: run when planning (weekly, monthly).
    "budget",
    "share",
    "evaluate",
    # One page per run date of what the jobs above wrote (docs/report.md).
    "report",
    # The speed layer: a service, or available-now after each landing (docs/stream.md).
    "stream",
    "pipeline",
    "selfcheck",
    # Rotates the hashing key: run by hand, once per rotation (docs/privacy.md).
    "rekey",
)

#: Jobs that ``pipeline.jobs`` may list (the pipeline cannot run itself).
PIPELINE_JOBS: tuple[str, ...] = tuple(j for j in JOBS if j != "pipeline")

#: The jobs a run date's daily pipeline runs by default, in order. ``generate`` (demo
#: data) and ``evaluate`` (scores against the generator's truth) are for generated
#: worlds only: the demo profile (``conf/demo.yaml``) adds them. ``share`` spends privacy
#: budget with each release, so it runs on purpose, never by default; ``budget`` plans
#: a period ahead, so it runs when a plan is due; ``stream`` runs as a service or after
#: each landing.
_NOT_DAILY = ("generate", "evaluate", "budget", "share", "stream", "pipeline", "selfcheck", "rekey")
DAILY_JOBS: tuple[str, ...] = tuple(j for j in JOBS if j not in _NOT_DAILY)

#: The jobs whose tables each job reads, for the same run date. Schedulers draw their
#: task graphs from this (Airflow, Databricks Jobs); :data:`JOBS` is one order that
#: respects it. A job missing from a graph is skipped, its needs passed on.
NEEDS: dict[str, tuple[str, ...]] = {
    "generate": (),
    "ingest": ("generate",),
    # Forget before identity: the graph is then built without the people it removed.
    "forget": ("ingest",),
    "identity": ("forget",),
    "lifecycle": ("identity",),
    "tags": ("lifecycle",),  # the model tags read customer_value
    "recommend": ("identity",),
    "attribution": ("identity",),
    "experiments": ("identity",),
    "budget": ("experiments",),
    "share": ("tags", "attribution"),
    "evaluate": ("identity", "lifecycle", "attribution", "experiments"),
    # Last: its page shows what every job of the run date wrote (and, after evaluate in
    # JOBS' order, the scores of a generated world's pipeline).
    "report": ("tags", "recommend", "attribution", "experiments", "budget", "share"),
    # Reads the identity map and the segments of the latest runs, not of one run date.
    "stream": ("tags",),
}


def upstream(job: str, among: tuple[str, ...]) -> tuple[str, ...]:
    """The jobs of ``among`` that ``job`` waits for: its needs, and through a need not in
    ``among``, that job's needs in turn (in :data:`JOBS` order)."""
    found: set[str] = set()
    todo = list(NEEDS[job])
    while todo:
        need = todo.pop()
        if need in among:
            found.add(need)
        else:
            todo.extend(NEEDS[need])
    return tuple(j for j in JOBS if j in found)


def load(name: str) -> ModuleType:
    """The module of job ``name``; ``LookupError`` naming the known jobs otherwise."""
    if name not in JOBS:
        raise LookupError(f"unknown job '{name}'; jobs: {', '.join(JOBS)}")
    return importlib.import_module(f"{__name__}.{name}")
