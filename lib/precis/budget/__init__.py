"""Budget plans: a response curve per channel, and next period's budget split by it.

``curves.fit`` fits a saturating (Hill) curve of a channel's daily attributed outcome
against its daily spend; ``plan.allocate`` splits a total budget across channels, within
per-channel bounds, to maximize the curves' summed outcome. Pure Python over a few
hundred rows (days x channels): the caller aggregates them on Spark.
"""
