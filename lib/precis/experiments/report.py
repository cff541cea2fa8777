"""What the experiments job prints and logs: a table of lifts and a forest plot."""

from __future__ import annotations

from collections.abc import Sequence

from precis.experiments.results import ResultRow
from precis.metric_names import metric_name

METRIC_LABELS = {"conversion_rate": "conversion rate", "revenue_per_person": "revenue per person"}


def text(rows: Sequence[ResultRow]) -> str:
    """One line per row: the lift, its interval, the p-values and the flags."""
    if not rows:
        return "  (no experiment's window has closed)"
    lines = []
    for r in rows:
        flags = [
            f for f, on in (("CUPED", r.adjusted), ("SAMPLE RATIO MISMATCH", r.srm_failed)) if on
        ]
        lines.append(
            f"  {r.experiment_id} {r.arm} vs control, {METRIC_LABELS.get(r.metric, r.metric)}: "
            f"{r.value:.4g} vs {r.control_value:.4g}, lift {r.lift_abs:+.4g} "
            f"[{r.ci_low:+.4g}, {r.ci_high:+.4g}], p {r.p_value:.3g} (Holm {r.p_value_holm:.3g}), "
            f"n {r.n:,}/{r.n_control:,}" + (f"  {', '.join(flags)}" if flags else "")
        )
    return "\n".join(lines)


def metrics(rows: Sequence[ResultRow]) -> dict[str, float]:
    """Per row, the lift and its Holm p-value, named ``<experiment>.<arm>.<metric>``
    (characters MLflow rejects become ``_``)."""
    found: dict[str, float] = {}
    for r in rows:
        key = f"{metric_name(r.experiment_id)}.{metric_name(r.arm)}.{r.metric}"
        found[f"lift.{key}"] = r.lift_abs
        found[f"p_holm.{key}"] = r.p_value_holm
    return found


def forest_figure(rows: Sequence[ResultRow], title: str):
    """Each arm's lift with its 95% interval, one panel per metric; a failed sample-ratio
    test is drawn hollow and red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in METRIC_LABELS if any(r.metric == m for r in rows)]
    height = max(2.5, 0.35 * max((sum(r.metric == m for r in rows) for m in panels), default=1))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(11, height + 1), squeeze=False)
    for ax, metric in zip(axes[0], panels, strict=False):
        mine = [r for r in rows if r.metric == metric]
        for y, r in enumerate(reversed(mine)):
            color = "tab:red" if r.srm_failed else "tab:blue"
            ax.plot([r.ci_low, r.ci_high], [y, y], color=color)
            ax.plot([r.lift_abs], [y], "o", color=color, mfc="white" if r.srm_failed else color)
        ax.set_yticks(range(len(mine)), [f"{r.experiment_id} {r.arm}" for r in reversed(mine)])
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"lift in {METRIC_LABELS[metric]}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
