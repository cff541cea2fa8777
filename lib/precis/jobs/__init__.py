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
    "identity",
    "lifecycle",
    "tags",
    "recommend",
    "attribution",
    "evaluate",
    "pipeline",
    "selfcheck",
)

#: Jobs that ``pipeline.jobs`` may list (the pipeline cannot run itself).
PIPELINE_JOBS: tuple[str, ...] = tuple(j for j in JOBS if j != "pipeline")


def load(name: str) -> ModuleType:
    """The module of job ``name``; ``LookupError`` naming the known jobs otherwise."""
    if name not in JOBS:
        raise LookupError(f"unknown job '{name}'; jobs: {', '.join(JOBS)}")
    return importlib.import_module(f"{__name__}.{name}")
