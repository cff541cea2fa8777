"""The whole report of a run date: every section, in the page's order."""

from __future__ import annotations

from typing import Any

from precis.report import products, sections
from precis.report.inputs import Inputs
from precis.report.page import Section
from precis.report.settings import ReportConfig


def build(inputs: Inputs, settings: ReportConfig, datasets: tuple[str, ...]) -> list[Section]:
    """Each section from its tables; ``datasets`` are the landing datasets the contract
    names (the ingest section says which were never landed)."""
    return [
        sections.ingest(inputs, settings, datasets),
        sections.identity(inputs, settings),
        sections.lifecycle(inputs, settings),
        products.tags(inputs, settings),
        products.recommendations(inputs),
        products.attribution(inputs),
        products.experiments(inputs),
        products.runs(inputs, settings),
    ]


def headline(built: list[Section]) -> dict[str, Any]:
    """The page's first numbers, each read from a figure of a section (never computed
    apart from them): rows in, quarantined, people, identity precision and recall (when
    evaluated), valued customers, churn AUC, ALS and popularity NDCG, experiments judged.
    A section without data gives no number."""
    figures = {s.key: s.figures for s in built if s.missing is None}
    found: dict[str, Any] = {}
    if datasets := figures.get("ingest", {}).get("datasets"):
        found["rows in"] = sum(r["rows_in"] for r in datasets)
        found["quarantined"] = sum(r["quarantined"] for r in datasets)
    if run := figures.get("identity", {}).get("run"):
        found["people (one_ids)"] = run[0]["one_ids"]
    quality = {r["metric"]: r["value"] for r in figures.get("identity", {}).get("quality", [])}
    found.update({f"identity {k}": quality[k] for k in ("precision", "recall") if k in quality})
    if stages := figures.get("lifecycle", {}).get("stages"):
        found["valued customers"] = sum(r["people"] for r in stages)
    model = {r["metric"]: r["value"] for r in figures.get("lifecycle", {}).get("model", [])}
    if "churn_auc" in model:
        found["churn AUC"] = model["churn_auc"]
    for row in figures.get("recommendations", {}).get("validation", []):
        if row["metric"].startswith("ndcg_at_"):
            k = row["metric"].removeprefix("ndcg_at_")
            found[f"NDCG@{k} {row['model']}"] = row["value"]
    if rates := figures.get("experiments", {}).get(products.EXPERIMENT_METRICS[0]):
        found["experiments judged"] = len({r["experiment_id"] for r in rates})
    return found
