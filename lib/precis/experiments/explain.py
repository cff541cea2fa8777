"""One person's part in the experiments: what the job counted for them, and why.

``trace`` follows one ``one_id`` through the same steps as ``build``: their assignments
(every identifier's, which one counted), the paid and refunded orders near each counted
assignment (pre-period or window), and the outcome values that enter their arm's sums.
Pure: the caller reads the inputs and prints the frames. Identifiers appear as
``id_key``, a keyed hash for PII types.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ONE_ID, ORDER_ID
from precis.experiments import ExperimentInputs, paid_orders, people
from precis.experiments import outcomes as O
from precis.experiments.settings import ExperimentsConfig
from precis.identity.resolve import isolated_identifiers, resolve


@dataclass(frozen=True)
class PersonTrace:
    one_id: str
    # experiment_id, arm, id_type, id_key, assigned_at, isolated, counted, judged
    assignments: DataFrame
    # experiment_id, order_id, order_time, amount, status, period (pre, window), counted
    orders: DataFrame
    # experiment_id, arm, converted, revenue, pre_orders, pre_revenue (judged ones)
    outcomes: DataFrame


def trace(
    inputs: ExperimentInputs, settings: ExperimentsConfig, run_date: dt.date, one_id: str
) -> PersonTrace:
    isolated = isolated_identifiers(inputs.guards) if inputs.guards is not None else None
    mine = inputs.identity_map.filter(F.col(ONE_ID) == F.lit(one_id)).select(
        ID_TYPE, ID_KEY, ONE_ID
    )
    theirs = inputs.assignments.join(mine, [ID_TYPE, ID_KEY], how="left_semi")
    own = dataclasses.replace(inputs, assignments=theirs, identity_map=mine)
    first = O.first_assignments(people(own, isolated))
    # Judged or not is the experiment's (its last assignment of anyone), not theirs.
    done = O.closed_experiments(inputs.assignments, settings.window_days, run_date)
    counted = first.select(O.EXPERIMENT, O.ARM, O.ASSIGNED_AT, F.lit(True).alias("counted"))
    blocked = (
        isolated.select(ID_TYPE, ID_KEY, F.lit(True).alias("isolated"))
        if isolated is not None
        else None
    )
    listed = theirs.select(O.EXPERIMENT, O.ARM, ID_TYPE, ID_KEY, O.ASSIGNED_AT)
    if blocked is not None:
        listed = listed.join(blocked, [ID_TYPE, ID_KEY], how="left")
    else:
        listed = listed.withColumn("isolated", F.lit(None).cast("boolean"))
    assignments = (
        listed.join(counted, [O.EXPERIMENT, O.ARM, O.ASSIGNED_AT], how="left")
        .join(done.withColumn("judged", F.lit(True)), O.EXPERIMENT, how="left")
        .select(
            O.EXPERIMENT,
            O.ARM,
            ID_TYPE,
            ID_KEY,
            O.ASSIGNED_AT,
            F.coalesce("isolated", F.lit(False)).alias("isolated"),
            # Two identifiers of theirs assigned at once: the first by arm counts.
            F.coalesce("counted", F.lit(False)).alias("counted"),
            F.coalesce("judged", F.lit(False)).alias("judged"),
        )
        .orderBy(O.EXPERIMENT, O.ASSIGNED_AT, O.ARM, ID_TYPE)
    )
    bought = resolve(own.orders, mine, isolated).select(ORDER_ID, "order_time", "amount", "status")
    t = F.col("order_time")
    period = F.when(O.in_window(t, settings.window_days), "window").when(
        O.in_pre_period(t, settings.pre_days), "pre"
    )
    orders = (
        first.select(O.EXPERIMENT, O.ASSIGNED_AT)
        .crossJoin(bought)
        .select(
            O.EXPERIMENT,
            ORDER_ID,
            "order_time",
            "amount",
            "status",
            period.alias("period"),
            (F.lower(F.coalesce("status", F.lit("paid"))) != "refunded").alias("counted"),
        )
        .filter(F.col("period").isNotNull())
        .orderBy(O.EXPERIMENT, "order_time")
    )
    judged = first.join(done, O.EXPERIMENT, how="left_semi")
    outcomes = (
        O.person_outcomes(
            judged, paid_orders(own, isolated), settings.window_days, settings.pre_days
        )
        .select(O.EXPERIMENT, O.ARM, "converted", "revenue", O.PRE_ORDERS, O.PRE_REVENUE)
        .orderBy(O.EXPERIMENT)
    )
    return PersonTrace(one_id, assignments, orders, outcomes)


def lines(found: PersonTrace) -> list[str]:
    """What the job prints: each section's rows (a person's handful)."""
    out = [f"experiments of one_id {found.one_id}:"]
    for name, frame in (
        ("assignments", found.assignments),
        ("orders near the counted assignments", found.orders),
        ("outcomes (in their arm's sums)", found.outcomes),
    ):
        rows = frame.collect()
        out.append(f"  {name}: {len(rows)} row(s)")
        out.extend("    " + ", ".join(f"{k}={v}" for k, v in r.asDict().items()) for r in rows)
    return out
