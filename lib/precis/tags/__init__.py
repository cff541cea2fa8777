"""Tag profiles and audience segments: declarative, point-in-time, versioned, explainable.

``definitions`` parses and validates ``tags.yaml`` / ``segments.yaml`` without Spark;
``sources`` resolves silver datasets to ``one_id``; ``compute`` turns definitions into
tag values; ``history`` diffs runs and summarises coverage; ``segments`` evaluates
audiences; ``explain`` gathers the inputs behind one person's value.
"""
