"""Campaign experiments: each arm against control, per metric: ``build``.

``build`` reads and writes nothing: its caller reads the inputs and writes the rows. On
Spark it resolves each assignment to a person, keeps every person's first assignment
to each experiment whose window has closed, joins their paid orders near it, and sums
the outcomes per arm; the statistics then run on the driver over a few numbers per arm
(``precis.experiments.stats``), and the rows cross back to Spark once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, fields
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ONE_ID, RUN_DATE, RUN_ID
from precis.experiments import outcomes as O
from precis.experiments.results import ResultRow, lacking_control, results
from precis.experiments.settings import ExperimentsConfig
from precis.identity.resolve import isolated_identifiers, resolve

#: The person key of an assigned identifier the identity graph has not seen: nobody's
#: orders carry it (they would have put it in the graph), so its outcomes are 0.
UNRESOLVED = "unresolved:"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentInputs:
    assignments: DataFrame  # silver experiment_assignments
    orders: DataFrame  # silver orders up to the run date
    identity_map: DataFrame
    guards: DataFrame | None = None  # identity guards: isolated identifiers are nobody's
    arms: DataFrame | None = None  # silver experiments: intended weights per arm


@dataclass(frozen=True)
class ExperimentOutputs:
    table: DataFrame  # gold/experiment_results rows of the run date
    rows: list[ResultRow]
    counts: dict[str, int]


def people(inputs: ExperimentInputs, isolated: DataFrame | None) -> DataFrame:
    """Assignments with a person: ``experiment_id``, ``arm``, ``one_id``, ``assigned_at``.

    An identifier the graph isolated (shared by many people) assigns nobody; one it has
    not seen is a person of its own (``unresolved:<id_type>:<id_key>``), which
    ``identity.resolve.resolve`` (an inner join) would drop."""
    keyed = inputs.assignments.filter(F.col(ID_KEY).isNotNull())
    if isolated is not None:
        keyed = keyed.join(F.broadcast(isolated), [ID_TYPE, ID_KEY], how="left_anti")
    mapped = keyed.join(
        inputs.identity_map.select(ID_TYPE, ID_KEY, ONE_ID), [ID_TYPE, ID_KEY], how="left"
    )
    person = F.coalesce(F.col(ONE_ID), F.concat(F.lit(UNRESOLVED), ID_TYPE, F.lit(":"), ID_KEY))
    return mapped.select(O.EXPERIMENT, O.ARM, person.alias(ONE_ID), O.ASSIGNED_AT)


def paid_orders(inputs: ExperimentInputs, isolated: DataFrame | None) -> DataFrame:
    """Orders with their person: ``one_id``, ``order_time``, ``amount``, ``status``
    (orders under an isolated identifier are nobody's)."""
    return resolve(inputs.orders, inputs.identity_map, isolated).select(
        ONE_ID, "order_time", "amount", "status"
    )


def weights(arms: DataFrame | None) -> dict[str, dict[str, float]]:
    """experiment -> arm -> intended weight, where ``silver/experiments`` gives one."""
    if arms is None:
        return {}
    found: dict[str, dict[str, float]] = {}
    # One row per experiment and arm: a handful, whatever the number of people.
    for r in (
        arms.filter(F.col("weight").isNotNull()).select(O.EXPERIMENT, O.ARM, "weight").collect()
    ):
        found.setdefault(r[0], {})[r[1]] = float(r[2])
    return found


def build(
    inputs: ExperimentInputs, settings: ExperimentsConfig, run_date: dt.date, run_id: str
) -> ExperimentOutputs:
    isolated = isolated_identifiers(inputs.guards) if inputs.guards is not None else None
    first = O.first_assignments(people(inputs, isolated))
    judged = O.closed(first, settings.window_days, run_date)
    per_person = O.person_outcomes(
        judged, paid_orders(inputs, isolated), settings.window_days, settings.pre_days
    )
    if not settings.cuped:
        per_person = per_person.withColumns({x: F.lit(0.0) for x in O.COVARIATES.values()})
    # One row per experiment, arm and metric.
    sums = [r.asDict() for r in O.arm_sums(per_person).collect()]
    counted = first.agg(
        F.countDistinct(O.EXPERIMENT).alias("experiments"),
        F.count(F.lit(1)).alias("assigned"),  # people x experiments
        F.sum(F.when(F.col("arms") > 1, 1).otherwise(0)).alias("crossovers"),
        F.sum(F.when(F.col(ONE_ID).startswith(UNRESOLVED), 1).otherwise(0)).alias("unresolved"),
    ).collect()[0]
    rows = results(sums, weights(inputs.arms), settings.control_arm, settings.sequential_scale)
    lacking = lacking_control(sums, settings.control_arm)
    for experiment, arms in sorted(lacking.items()):
        log.warning(
            "experiment '%s' has nobody in its '%s' arm (experiments.control_arm): not "
            "judged; its arms: %s",
            experiment,
            settings.control_arm,
            ", ".join(arms),
        )
    spark = inputs.assignments.sparkSession
    table = spark.createDataFrame(
        [(*(getattr(r, f.name) for f in fields(ResultRow)),) for r in rows], RESULT_SCHEMA
    ).select("*", F.lit(run_date).alias(RUN_DATE), F.lit(run_id).alias(RUN_ID))
    counts: dict[str, Any] = {k: int(counted[k] or 0) for k in counted.asDict()}
    counts["judged_experiments"] = len({r.experiment_id for r in rows})
    counts["srm_failed"] = len({r.experiment_id for r in rows if r.srm_failed})
    counts["without_control"] = len(lacking)
    return ExperimentOutputs(table, rows, counts)


RESULT_SCHEMA = (
    "experiment_id string, arm string, metric string, n long, n_control long, value double, "
    "control_value double, lift_abs double, ci_low double, ci_high double, p_value double, "
    "p_value_holm double, srm_p_value double, srm_failed boolean, adjusted boolean, "
    "ci_low_sequential double, ci_high_sequential double"
)
