"""Multi-touch attribution: journeys, rule-based, Markov and Shapley models."""
