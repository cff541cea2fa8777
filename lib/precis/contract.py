"""The data contract's landing datasets (see docs/tables.md and the contract spec)."""

#: Every landing dataset of the data contract, in the order the jobs consume them.
DATASETS: tuple[str, ...] = (
    "id_observations",
    "events",
    "orders",
    "order_items",
    "touchpoints",
    "items",
    "customers",
    "campaign_spend",
    "forget_requests",
    "experiment_assignments",
    "experiments",
)
