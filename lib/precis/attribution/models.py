"""Every configured model's credits per channel, side by side, on the driver.

The rule-based models aggregate on Spark; Markov and Shapley collect their (small)
transition counts and channel sets and solve on the driver. Each result is a few rows
per channel, so they meet in pandas.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pyspark.sql import DataFrame

from precis.attribution import journeys, markov, rules, shapley
from precis.attribution.settings import AttributionConfig


def credits(rows: DataFrame, settings: AttributionConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(model, channel, conversions, revenue [, conversions_low, conversions_high] of every
    model in ``settings.models``; what Markov and Shapley found, by model).

    ``rows``: journey touch rows (``journeys.TOUCH_COLUMNS``), read once per model.
    """
    parts, found = [], {}
    rule_models = tuple(m for m in settings.models if m in rules.RULE_MODELS)
    if rule_models:
        position = settings.position_based
        weights = rules.RuleSettings(
            settings.time_decay_half_life_days, position.first, position.middle, position.last
        )
        parts.append(rules.rule_credits(rows, rule_models, weights).toPandas())
    if "markov" in settings.models:
        paths = journeys.paths(rows, settings.markov.collapse_repeats)
        result = markov.solve(markov.transitions(paths, settings.markov.order).toPandas())
        credited = markov.credits(result)
        credited["model"] = "markov"
        parts.append(credited)
        found["markov"] = {
            "order": settings.markov.order,
            "states": result.states,
            "conversion_probability": result.conversion_probability,
            "removal_effects": result.removal_effects,
        }
    if "shapley" in settings.models:
        sets = shapley.channel_sets(rows).toPandas()
        sh = settings.shapley
        game = shapley.solve(sets, sh.worth, sh.max_exact_channels, sh.samples, sh.seed)
        credited = pd.DataFrame(
            {
                "model": "shapley",
                "channel": game.channels,
                "conversions": [game.conversions[c] for c in game.channels],
                "revenue": [game.revenue[c] for c in game.channels],
            }
        )
        if game.low is not None and game.high is not None:
            credited["conversions_low"] = [game.low[c] for c in game.channels]
            credited["conversions_high"] = [game.high[c] for c in game.channels]
        parts.append(credited)
        found["shapley"] = {
            "worth": sh.worth,
            "exact": game.exact,
            "samples": game.samples,
            "channel_sets": len(sets),
        }
    return pd.concat(parts, ignore_index=True), found
