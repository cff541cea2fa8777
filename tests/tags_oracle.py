"""An independent computation of the default tag set: pandas over the silver tables.

Written apart from precis.tags (no shared code but reading the tables), so a bug in
the Spark templates shows up as a disagreement. Used by the end-to-end test and, on a
real lakehouse, as a script:

    python tests/tags_oracle.py <storage.root> <run date>
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from typing import Any

import numpy as np
import pandas as pd

from precis import tables as T

ISOLATING = ("over_linked", "rule_block")


def _pdf(lake, table: T.Table, columns: list[str]) -> pd.DataFrame:
    return lake.read(table).select(*columns).toPandas()


def load(lake) -> dict[str, pd.DataFrame]:
    frames = {
        "identity_map": _pdf(lake, T.IDENTITY_MAP, ["id_type", "id_key", "one_id"]),
        "orders": _pdf(
            lake,
            T.ORDERS,
            ["order_id", "order_time", "id_type", "id_key", "amount", "channel", "status"],
        ),
        "order_items": _pdf(lake, T.ORDER_ITEMS, ["order_id", "item_id", "quantity", "unit_price"]),
        "items": _pdf(lake, T.ITEMS, ["item_id", "category"]),
        "events": _pdf(lake, T.EVENTS, ["event_time", "id_type", "id_key", "event_type"]),
        "customers": _pdf(
            lake,
            T.CUSTOMERS,
            ["id_type", "id_key", "consent_marketing", "gender", "city"],
        ),
        "customer_value": _pdf(
            lake,
            T.CUSTOMER_VALUE,
            ["one_id", "lifecycle_stage", "rfm_segment", "churn_risk", "clv", "run_date"],
        ),
    }
    if lake.exists(T.IDENTITY_GUARDS):
        frames["guards"] = _pdf(
            lake, T.IDENTITY_GUARDS, ["id_type", "id_key", "guard", "other_key", "run_date"]
        )
    return frames


def _people(frame: pd.DataFrame, im: pd.DataFrame, isolated: set[tuple[str, str]]) -> pd.DataFrame:
    keyed = frame[frame["id_key"].notna()]
    if isolated:
        pairs = list(zip(keyed["id_type"], keyed["id_key"]))
        keyed = keyed[[p not in isolated for p in pairs]]
    return keyed.merge(im, on=["id_type", "id_key"], how="inner")


def _mode(values: pd.Series) -> Any:
    counts = values.dropna().astype(str).value_counts()
    if counts.empty:
        return None
    top = counts.max()
    return sorted(counts[counts == top].index)[0]


def expected(frames: dict[str, pd.DataFrame], run_date: dt.date) -> dict[str, dict[str, Any]]:
    """tag -> {one_id: value} for every default tag except the k-means cluster."""
    im = frames["identity_map"]
    isolated: set[tuple[str, str]] = set()
    if "guards" in frames and not frames["guards"].empty:
        g = frames["guards"]
        latest = g["run_date"].max()
        g = g[(g["run_date"] == latest) & g["guard"].isin(ISOLATING) & g["other_key"].isna()]
        isolated = set(zip(g["id_type"], g["id_key"]))
    day = pd.Timestamp(run_date)

    orders = _people(frames["orders"], im, isolated)
    orders = orders[orders["status"].fillna("paid").str.lower() != "refunded"].copy()
    orders["day"] = orders["order_time"].dt.normalize()
    orders = orders[orders["day"] <= day]
    lines = orders.merge(frames["order_items"], on="order_id").merge(
        frames["items"], on="item_id", how="left"
    )
    events = _people(frames["events"], im, isolated)
    events["day"] = events["event_time"].dt.normalize()
    events = events[events["day"] <= day]

    def window(df: pd.DataFrame, days: int) -> pd.DataFrame:
        return df[df["day"] >= day - pd.Timedelta(days=days - 1)]

    out: dict[str, dict[str, Any]] = {}
    for n in (30, 90, 365):
        out[f"order_count_{n}d"] = window(orders, n).groupby("one_id").size().to_dict()
    for n in (90, 365):
        out[f"spend_{n}d"] = window(orders, n).groupby("one_id")["amount"].sum().to_dict()
    w365 = window(orders, 365)
    out["avg_order_value_365d"] = w365.groupby("one_id")["amount"].mean().to_dict()
    out["max_order_value_365d"] = w365.groupby("one_id")["amount"].max().to_dict()
    out["days_since_last_order"] = {
        k: (day - v).days for k, v in orders.groupby("one_id")["day"].max().items()
    }
    with_channel = orders[orders["channel"].notna()]
    first = with_channel.sort_values(["order_time", "channel"]).groupby("one_id").head(1)
    last = with_channel.sort_values(["order_time", "channel"]).groupby("one_id").tail(1)
    out["first_order_channel"] = dict(zip(first["one_id"], first["channel"]))
    out["last_order_channel"] = dict(zip(last["one_id"], last["channel"]))
    out["top_category_90d"] = {
        k: v
        for k, v in window(lines, 90).groupby("one_id")["category"].agg(_mode).items()
        if v is not None
    }
    l365 = window(lines, 365)
    out["unique_items_365d"] = l365.groupby("one_id")["item_id"].nunique().to_dict()
    out["avg_unit_price_365d"] = l365.groupby("one_id")["unit_price"].mean().to_dict()
    for name, kind in (("view_count_30d", "view"), ("cart_count_30d", "add_to_cart")):
        out[name] = (
            window(events[events["event_type"] == kind], 30).groupby("one_id").size().to_dict()
        )

    customers = frames["customers"][frames["customers"]["id_key"].notna()].merge(
        im, on=["id_type", "id_key"]
    )
    out["consent_marketing"] = (
        customers.groupby("one_id")["consent_marketing"]
        .agg(lambda s: bool(s.fillna(False).astype(bool).all()))
        .to_dict()
    )
    for attr in ("gender", "city"):
        out[attr] = {
            k: v for k, v in customers.groupby("one_id")[attr].agg(_mode).items() if v is not None
        }

    cv = frames["customer_value"]
    cv = cv[cv["run_date"] == run_date]
    for field in ("lifecycle_stage", "rfm_segment", "churn_risk", "clv"):
        present = cv[cv[field].notna()]
        out[field] = dict(zip(present["one_id"], present[field]))

    def bucket(
        values: dict[str, float], cuts: list[tuple[str, float | None, float | None]]
    ) -> dict[str, str]:
        found = {}
        for k, v in values.items():
            for label, lo, hi in cuts:
                if (lo is None or v >= lo) and (hi is None or v < hi):
                    found[k] = label
                    break
        return found

    out["clv_tier"] = bucket(
        out["clv"], [("low", None, 300), ("medium", 300, 1000), ("high", 1000, None)]
    )
    out["price_sensitivity"] = bucket(
        out["avg_unit_price_365d"], [("high", None, 150), ("medium", 150, 300), ("low", 300, None)]
    )
    everyone = im["one_id"].unique()
    spend = out["spend_365d"]
    out["high_value"] = {p: bool(spend.get(p, 0) >= 2000) for p in everyone}
    views, carts = out["view_count_30d"], out["cart_count_30d"]
    out["cart_per_view_30d"] = {p: carts[p] / views[p] for p in carts if views.get(p)}
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1.5e-6)
    return a == b


def compare(lake, run_date: dt.date) -> dict[str, dict[str, int]]:
    """Per tag: people with a value on either side and disagreements (missing, extra, different)."""
    want = expected(load(lake), run_date)
    tall = lake.read(T.PROFILE_TAGS).select("one_id", "tag", "value", "type").toPandas()
    report = {}
    for tag, values in want.items():
        rows = tall[tall["tag"] == tag]
        kind = rows["type"].iloc[0] if len(rows) else "string"
        cast = {"long": int, "double": float, "boolean": lambda v: v == "true"}.get(kind, str)
        got = {p: cast(v) for p, v in zip(rows["one_id"], rows["value"])}
        expected_values = {p: (bool(v) if kind == "boolean" else v) for p, v in values.items()}
        missing = len(set(expected_values) - set(got))
        extra = len(set(got) - set(expected_values))
        different = sum(
            1 for p in set(got) & set(expected_values) if not _same(got[p], expected_values[p])
        )
        report[tag] = {
            "people": len(expected_values),
            "missing": missing,
            "extra": extra,
            "different": different,
        }
    return report


if __name__ == "__main__":  # pragma: no cover - a tool for real lakehouses
    from precis.config import load_config
    from precis.session import get_spark
    from precis.storage import Lakehouse

    root, date = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
    cfg = load_config(None, [f"storage.root={root}", "mlflow.enabled=false"], run_date=date)
    result = compare(Lakehouse.from_config(get_spark(cfg), cfg), date)
    bad = 0
    for tag, r in result.items():
        bad += r["missing"] + r["extra"] + r["different"]
        print(
            f"{tag:24s} people {r['people']:>7,}  missing {r['missing']}  extra {r['extra']}  different {r['different']}"
        )
    print("all default tags agree" if bad == 0 else f"{bad} disagreements")
    sys.exit(1 if bad else 0)
