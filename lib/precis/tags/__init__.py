"""Tag profiles and audience segments: declarative, point-in-time, versioned, explainable.

``build`` (in ``assemble``) is the pure entry the tags job calls. ``templates`` declares
the templates and what they may name; ``definitions`` parses and validates
``tags.yaml`` / ``segments.yaml`` without Spark; ``sources`` resolves silver datasets to
``one_id``; ``compute`` turns definitions into tag values; ``history`` diffs runs and
summarises coverage; ``segments`` evaluates audiences; ``explain`` tells how one
person's value came about.
"""

from precis.tags.assemble import (
    Inputs,
    SegmentOutputs,
    TagsOutputs,
    build,
    check_sql,
    reads_customer_value,
)

__all__ = [
    "Inputs",
    "SegmentOutputs",
    "TagsOutputs",
    "build",
    "check_sql",
    "reads_customer_value",
]
