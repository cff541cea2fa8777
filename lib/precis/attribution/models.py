"""Every configured model's credits per channel, side by side, on the driver.

The rule-based models aggregate on Spark; Markov and Shapley collect their (small)
transition counts and channel sets, both from the journeys' distinct paths, and solve on
the driver. Each result is a few rows
per channel, so they meet in pandas.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.attribution import journeys, markov, rules, shapley
from precis.attribution.settings import AttributionConfig
from precis.frames import kept


def rule_settings(settings: AttributionConfig) -> rules.RuleSettings:
    """The rule-based models' weights as configured."""
    position = settings.position_based
    return rules.RuleSettings(
        settings.time_decay_half_life_days, position.first, position.middle, position.last
    )


def credits(
    journey_summaries: DataFrame, settings: AttributionConfig
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """(model, channel, conversions, revenue [, conversions_low, conversions_high] of every
    model in ``settings.models``; what Markov and Shapley found, by model; the channels
    of the journeys, sorted).

    ``journey_summaries``: one row per journey (``journeys.summaries``), read twice:
    once by the rule-based models together (their touches unfolded again), once into the
    distinct paths, which are few and kept; Markov's transitions, Shapley's channel sets
    and the channels come from those.
    """
    parts, found = [], {}
    rule_models = tuple(m for m in settings.models if m in rules.RULE_MODELS)
    if rule_models:
        rows = journeys.touch_rows_of(journey_summaries)
        parts.append(rules.rule_credits(rows, rule_models, rule_settings(settings)).toPandas())
    collapse = settings.markov.collapse_repeats
    with kept(journeys.paths_of(journey_summaries, collapse)) as (paths,):
        channels = sorted(
            r["channel"]
            for r in paths.select(F.explode("path").alias("channel")).distinct().collect()
        )
        if "markov" in settings.models:
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
            sets = shapley.sets_of_paths(paths).toPandas()
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
    return pd.concat(parts, ignore_index=True), found, channels
