"""The run report's figures computed again, apart from precis.report: pandas over the
tables each figure names (docs/report.md), to compare with the JSON a page embeds.

Only the figures of sections with data; the trends and the charts are not recomputed.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
from pyspark.sql import functions as F

from precis import tables as T
from precis.report.sections import INGEST_COUNTS


def _pdf(lake, table: T.Table, day: dt.date | None = None) -> pd.DataFrame:
    df = lake.read(table)
    if day is not None:
        df = df.filter(F.col("run_date") == F.lit(day))
    return df.toPandas()


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in df.to_dict("records")
    ]


def _counted(df: pd.DataFrame, by: list[str], name: str) -> list[dict[str, Any]]:
    counts = df.groupby(by, dropna=False).size().rename(name).reset_index()
    return _records(counts.sort_values(by))


def expected(lake, day: dt.date, max_identifiers: int = 20) -> dict[str, dict[str, list]]:
    """section -> figure -> rows, for the run date ``day``."""
    out: dict[str, dict[str, list]] = {}
    runs = _pdf(lake, T.INGEST_RUNS, day)
    counts = list(INGEST_COUNTS)  # the columns the page sums (names, not how)
    per_dataset = runs[["dataset", *counts]].fillna(0).groupby("dataset").sum().reset_index()
    out["ingest"] = {"datasets": _records(per_dataset.astype(dict.fromkeys(counts, "int64")))}
    if lake.exists(T.QUARANTINE):  # none before a row is quarantined
        quarantine = _pdf(lake, T.QUARANTINE)
        quarantine = quarantine[quarantine["_run_id"].isin(set(runs["run_id"]))]
        reasons = quarantine.assign(reason=quarantine["reason"].str.split(";")).explode("reason")
        reasons["reason"] = reasons["reason"].str.strip()
        out["ingest"]["quarantine_reasons"] = _counted(reasons, ["dataset", "reason"], "rows")
    identity_runs = _pdf(lake, T.IDENTITY_RUNS, day).sort_values("finished_at")
    sizes = _pdf(lake, T.IDENTITY_MAP).groupby("one_id").size().clip(upper=max_identifiers)
    guards = _pdf(lake, T.IDENTITY_GUARDS, day)
    out["identity"] = {
        "run": _records(
            identity_runs.tail(1)[["identifiers", "records", "links", "one_ids", "largest_one_id"]]
        ),
        "identifiers_per_person": _counted(
            sizes.rename("identifiers").reset_index(), ["identifiers"], "people"
        ),
        "guards": _records(
            guards.groupby("guard")
            .agg(
                identifiers=("guard", "size"),
                # null when no row of the guard counts records, as SQL's sum
                records=("records", lambda r: r.sum(min_count=1)),
            )
            .reset_index()
        ),
        "changes": _counted(_pdf(lake, T.IDENTITY_CHANGES, day), ["change"], "one_ids"),
    }
    value = _pdf(lake, T.CUSTOMER_VALUE, day)
    out["lifecycle"] = {"stages": _counted(value, ["lifecycle_stage"], "people")}
    stats = _pdf(lake, T.TAG_STATS, day).sort_values("tag")
    out["tags"] = {
        "tags": _records(
            stats[["tag", "type", "people", "covered", "coverage", "distinct_values", "changes"]]
        )
    }
    lists = _pdf(lake, T.RECOMMENDATIONS, day)
    out["recommendations"] = {
        "coverage": [
            {
                "items_recommended": lists["item_id"].nunique(),
                "people": lists["one_id"].nunique(),
                "items_in_catalogue": _pdf(lake, T.ITEMS)["item_id"].nunique(),
            }
        ],
        "sources": _records(
            lists.groupby("source")["one_id"].nunique().rename("people").reset_index()
        ),
    }
    attribution = _pdf(lake, T.ATTRIBUTION, day)
    attribution = attribution[attribution["granularity"] == "channel"]
    columns = ["model", "channel", "conversions", "revenue", "share", "spend", "roi"]
    out["attribution"] = {
        "models": _records(attribution.sort_values(["model", "channel"])[columns])
    }
    if lake.exists(T.EXPERIMENT_RESULTS):
        results = _pdf(lake, T.EXPERIMENT_RESULTS, day)
        for metric in ("conversion_rate", "revenue_per_person"):
            mine = results[results["metric"] == metric].sort_values(["experiment_id", "arm"])
            out.setdefault("experiments", {})[metric] = _records(
                mine.drop(
                    columns=[
                        "metric",
                        "srm_p_value",
                        "ci_low_sequential",
                        "ci_high_sequential",
                        "run_date",
                        "run_id",
                    ]
                )
            )
    return out


def same(found: Any, want: Any) -> bool:
    """Equal, floats to a relative 1e-9 and NaN equal to None (JSON has no NaN)."""
    if isinstance(want, float) and math.isnan(want):
        return found is None
    if isinstance(want, float) or isinstance(found, float):
        return found is not None and math.isclose(found, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, dict):
        return (
            isinstance(found, dict)
            and found.keys() == want.keys()
            and all(same(found[k], want[k]) for k in want)
        )
    if isinstance(want, list):
        return (
            isinstance(found, list)
            and len(found) == len(want)
            and all(same(f, w) for f, w in zip(found, want))
        )
    return found == want
