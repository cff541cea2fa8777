"""One SparkSession for the whole suite, tuned for a 2-core CI machine."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from precis import tables as T
from precis.config import Config, load_config

PROJECT = Path(__file__).resolve().parents[1]
# Every Spark process the suite starts, in this process or as a command, reads the
# suite's Spark defaults (why each: the file's comments).
os.environ["SPARK_CONF_DIR"] = str(PROJECT / "tests" / "spark-conf")
#: Units of work (a group of modules, below, a module, or one parameter of a module of
#: ``BY_PARAM``) that run whole pipelines, longest first, by their worker-seconds in a
#: full run (docs/benchmarks.md). ``make test`` runs the suite in two worker processes,
#: a unit at a time each (pytest -n 2 --dist loadfile): started first, these leave the
#: short modules to fill the other worker around them.
LONG_FIRST = (
    "world",
    "small world",
    "test_deploy.py",
    "test_identity_families.py[siloed]",
    "test_identity_families.py[retail]",
    "test_budget_e2e.py",
    "test_identity_job.py",
    "test_stream.py",
    "test_cron.py",
    "test_consent.py",
    "test_experiments_e2e.py",
    "test_fewer_datasets.py",
    "test_generate.py",
)
#: Modules that share a session-scoped world run on one worker, which builds it once.
GROUPS = {
    **dict.fromkeys(("test_faults.py", "test_concurrency.py"), "small world"),
    **dict.fromkeys(
        (
            "test_attribution_e2e.py",
            "test_forget.py",
            "test_generate_ingest.py",
            "test_identity_e2e.py",
            "test_lifecycle_e2e.py",
            "test_notebooks.py",
            "test_schedule.py",
            "test_tags_e2e.py",
        ),
        "world",
    ),
}
#: Modules whose module-scoped fixture is parametrized over independent worlds: each
#: parameter is a unit of its own, so the two workers can build them at once.
BY_PARAM = frozenset({"test_identity_families.py"})


def pytest_collection_modifyitems(config, items):
    rank = {unit: i for i, unit in enumerate(LONG_FIRST)}
    # A stable sort: the other modules keep their order.
    items.sort(key=lambda item: rank.get(unit_of(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the modules of a group in one unit of work and the modules of
    ``BY_PARAM`` split into one unit per parameter."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return ModulesAndGroups(config, log)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its module's group, or its module, or for a
    module of ``BY_PARAM`` the module and the test's parameter."""
    module, _, test = nodeid.partition("::")
    name = Path(module).name
    if name in BY_PARAM and test.endswith("]"):
        return f"{name}[{test.rsplit('[', 1)[1]}"
    return GROUPS.get(name, name)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from services import suite_session_builder

    builder = suite_session_builder(
        tmp_path_factory.mktemp("warehouse"), tmp_path_factory.mktemp("checkpoints")
    )
    session = builder.getOrCreate()
    yield session
    session.stop()


@pytest.fixture(scope="module", autouse=True)
def _release_cached_frames():
    """Each test module starts without the frames earlier modules cached."""
    yield
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.catalog.clearCache()


@pytest.fixture
def cfg(tmp_path) -> Config:
    """A config whose lakehouse and MLflow store live in this test's temporary directory."""
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={tmp_path / 'lakehouse'}"],
        run_date="2026-03-31",
    )


@contextlib.contextmanager
def _no_lease(*args, **kwargs):
    yield None


@pytest.fixture(autouse=True)
def _lease_where_tested(request, monkeypatch):
    """Jobs called in this process take their lease only in tests marked ``lease``.

    A lease is a MERGE and a DELETE on meta/leases per job run: seconds each on a busy
    2-core machine, paid by hundreds of job runs that test something else. The lease's
    own tests (test_faults.py) are marked; jobs started as processes (spark-submit, the
    console entry point, notebooks, the schedulers' commands) always take it."""
    if request.node.get_closest_marker("lease") is None:
        monkeypatch.setattr("precis.storage.lease.held", _no_lease)


@pytest.fixture(autouse=True)
def _no_ambient_env(monkeypatch):
    # Tests must not depend on the developer's shell.
    for var in ("PRECIS_ENV", "SPARK_MASTER"):
        monkeypatch.delenv(var, raising=False)
    os.environ.setdefault("PRECIS_GIT_COMMIT", "test-commit")


# ------------------------------------------------------------------ generated world
@pytest.fixture(scope="session")
def world(spark, tmp_path_factory):
    """A small synthetic retailer, generated and ingested once, with 5% corruption and
    two campaign experiments.

    Shared by the data and identity end-to-end tests: (cfg, lake, ingest summaries).
    """
    from precis.jobs import generate, ingest
    from precis.storage import Lakehouse

    root = tmp_path_factory.mktemp("e2e") / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "generate.people=300",
            "generate.items=200",
            "generate.days=120",
            "generate.partitions=2",
            "generate.corrupt_fraction=0.05",
            # Two small experiments (26 assignments), so that every landing dataset is
            # there; hardly any planted order (one), so the other models see the world
            # they were tuned on.
            "generate.experiments=2",
            "generate.experiment_rate=0.01",
            "mlflow.enabled=false",
        ],
        run_date="2026-03-31",
    )
    generate.run(spark, cfg)
    summaries = ingest.run(spark, cfg)
    # As ingest left it, before any test runs a job on the world (see ``ingested``).
    shutil.copytree(root, root.parent / "ingested")
    return cfg, Lakehouse.from_config(spark, cfg), summaries


@pytest.fixture(scope="session")
def ingested(world) -> Path:
    """The world's lakehouse as ingest left it (generated and ingested for 2026-03-31):
    modules that run their own jobs on the world copy it into a lakehouse of their own."""
    cfg, _, _ = world
    return Path(cfg.root).parent / "ingested"


@pytest.fixture(scope="session")
def landed(spark, tmp_path_factory) -> Path:
    """The landing folder of the crash and concurrency tests' small world (worlds.py)."""
    from worlds import generate_world

    return generate_world(spark, tmp_path_factory.mktemp("small_world"))


@pytest.fixture(scope="session")
def uninterrupted(spark, landed, tmp_path_factory) -> Path:
    """The lakehouse of one uninterrupted run of worlds.JOBS on the small world."""
    from worlds import JOBS, copy_world, run_job

    root = copy_world(landed, tmp_path_factory.mktemp("uninterrupted"))
    for job in JOBS:
        run_job(root, job)
        if job == "ingest":  # kept for ``small_ingested``
            shutil.copytree(root, root.parent / "ingested")
    return root


@pytest.fixture(scope="session")
def small_ingested(uninterrupted) -> Path:
    """The small world's lakehouse as the uninterrupted run's ingest left it: scenarios
    that start after ingest copy it."""
    return uninterrupted.parent / "ingested"


@pytest.fixture(scope="session")
def plain_identifiers(world):
    """Every plain form of the world's landed emails and phones: as landed, trimmed,
    normalized, digits only (6 characters or more, so short junk cannot match)."""
    from pyspark.sql import functions as F

    from precis.ingest import identifiers as ids

    cfg, lake, _ = world
    rules, cc = cfg.ingest.id_rules, cfg.ingest.default_country_code
    plain = None
    for dataset in ("id_observations", "events", "orders", "touchpoints", "customers"):
        landed = read_landed(lake.spark, cfg, dataset)
        raw = landed.filter(F.col("id_type").isin("email", "phone"))
        forms = raw.select(
            F.explode(
                F.array(
                    F.col("id_value"),
                    F.trim("id_value"),
                    ids.normalize_by_type(
                        ids.kind(F.col("id_type")), ids.fold(F.col("id_value")), rules, cc
                    ),
                    F.regexp_replace("id_value", r"[^0-9]", ""),
                )
            ).alias("value")
        ).filter(F.length("value") >= 6)
        plain = forms if plain is None else plain.unionByName(forms)
    return plain.distinct().localCheckpoint()


def read_landed(spark, cfg, dataset: str):
    """Every landed file of ``dataset`` as ingest reads it: the only place plain
    identifiers remain (bronze holds PII only as keyed hashes)."""
    from precis.storage import list_landing_files, read_landing

    path, fmt = cfg.landing_path(dataset), cfg.landing_format(dataset)
    files = list_landing_files(spark, path, fmt)
    return read_landing(spark, files, fmt, path, cfg.landing_encoding(dataset))


def assert_no_plain(lake, layer: str, table: str, plain) -> None:
    """No string column of the table holds any of the ``plain`` values."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    df = lake.read(T.find(layer, table))
    strings = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
    values = df.select(F.explode(F.array(*[F.col(c) for c in strings])).alias("value"))
    leaked = values.join(plain, on="value", how="inner")
    assert leaked.count() == 0, f"plain identifier in {layer}/{table}: {leaked.first()}"


def bronze_of(spark, rows, schema: str):
    """Bronze rows of a tiny landed frame (``rows`` of the DDL ``schema``), as ingest
    stages them, from one file ``f1`` of one run."""
    from pyspark.sql import functions as F

    from precis.ingest import conform

    landed = spark.createDataFrame(rows, schema).withColumn(conform.SOURCE_FILE, F.lit("f1"))
    columns = [c for c in landed.columns if c != conform.SOURCE_FILE]
    return conform.with_lineage(landed, columns, "run", F.current_timestamp())
