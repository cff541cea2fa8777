"""Attribution against the generator's planted channel effects (``truth/channel_effects``).

The generator draws touches before purchases by exposure share times planted effect, and
background touches by exposure alone. A model recovers the effects when its credit per
unit of exposure ranks the channels as the effects do: ``<model>_rank_corr`` is that
Spearman correlation (1: same order). ``<model>_share_mae`` is the mean absolute gap
between the credited share and the channel mix of touches before purchases.
"""

from __future__ import annotations

import pandas as pd


def recovery(credits: pd.DataFrame, effects: pd.DataFrame) -> dict[str, float]:
    """``credits``: model, channel, share (channel granularity); ``effects``: the truth table."""
    joined = credits.merge(effects, on="channel")
    scores: dict[str, float] = {}
    for model, rows in joined.groupby("model", sort=True):
        per_exposure = rows["share"] / rows["exposure_share"]
        scores[f"{model}_rank_corr"] = float(per_exposure.rank().corr(rows["effect"].rank()))
        scores[f"{model}_share_mae"] = float(
            (rows["share"] - rows["pre_purchase_share"]).abs().mean()
        )
    return scores
