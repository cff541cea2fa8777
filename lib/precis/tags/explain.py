"""How one person's tag value came about: the rule, its version, the stored and the
recomputed value, and the rows or tags the rule read.

``explain_person`` is the tags job's explain mode: it recomputes the tag and the tags it
reads for that person only and returns the lines the job prints; nothing is written.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import privacy
from precis import tables as T
from precis.columns import ID_KEY, ID_TYPE, ONE_ID, RUN_DATE
from precis.errors import ConfigError
from precis.frames import cut
from precis.ingest import identifiers as ids
from precis.redact import mask_identifier
from precis.session import launched_by_spark_submit
from precis.tags import compute
from precis.tags.assemble import Inputs, datasets, tag_values, usable_customer_value
from precis.tags.compute import in_window
from precis.tags.settings import EXPLAIN_STDIN, TagsExplainConfig
from precis.tags.templates import DATASETS, WINDOWED, AttributeDef, Tag, TagSet, WindowDef


@dataclass(frozen=True)
class PersonLookup:
    """How ``id_type:value`` finds its ``id_key``: ingest's normalization, the keyed hash."""

    id_rules: Mapping[str, str]  # ingest.id_rules
    country_code: str  # ingest.default_country_code
    pii_types: tuple[str, ...]  # privacy.pii_types: hashed with ``key``
    key: bytes  # the keyed hash's key (precis.privacy.resolve_key)


@dataclass(frozen=True)
class Explained:
    lines: list[str]  # what the job prints
    result: dict[str, Any]  # one_id, tag, version, value, stored, inputs


def closure(tags: TagSet, name: str) -> list[Tag]:
    """The tag and every tag it reads, in evaluation order."""
    wanted = {name}
    for tag in reversed(tags.tags):
        if tag.name in wanted:
            wanted.update(tag.depends)
    return [t for t in tags.tags if t.name in wanted]


def chain(tags: TagSet, settings: TagsExplainConfig) -> TagSet:
    """The explained tag and the tags it reads: what explain reads inputs for."""
    if settings.tag is None or (settings.id is None and settings.id_env is None):
        raise ConfigError("tags.explain needs both id and tag")  # explain runs only then
    return TagSet(tuple(closure(tags, tags[settings.tag].name)), tags.source)


def input_rows(tag: Tag, data: DataFrame, as_of: dt.date) -> DataFrame:
    """The person's rows the tag read (``data`` already holds only that person's rows)."""
    spec = tag.spec
    if isinstance(spec, WindowDef):
        rows = in_window(data, spec, as_of)
        ds = DATASETS[spec.dataset]
        if ds.time is None:  # pragma: no cover - window tags only read datasets with a time
            raise AssertionError(f"tag '{tag.name}': dataset {spec.dataset} has no time")
        shown = [c for c in (*spec.where, spec.field) if c]
        key = [c for c in ds.fields if c.endswith("_id") and c not in shown][:1]
        return rows.select(F.col("_ts").alias(ds.time), *key, *dict.fromkeys(shown)).orderBy(
            ds.time, *key
        )
    if isinstance(spec, AttributeDef):
        # Identifier type only: the key of a PII identifier is a hash, but it says nothing here.
        return data.select(ID_TYPE, spec.field).orderBy(ID_TYPE, spec.field)
    raise AssertionError(tag.template)


def resolve_person(identity_map: DataFrame, given: str, lookup: PersonLookup) -> tuple[str, str]:
    """(one_id, how it was found); an identifier's plain value is never returned or printed."""
    id_type, sep, raw = given.partition(":")
    if sep and id_type in lookup.id_rules:
        # The value and the key enter Spark as data, never as literals of a query plan.
        frame = identity_map.sparkSession.createDataFrame([(raw,)], "v string")
        key_col = ids.normalize(F.col("v"), lookup.id_rules[id_type], lookup.country_code)
        pii = id_type in lookup.pii_types
        if pii:
            frame, key_col = privacy.with_key(frame, lookup.key), privacy.hmac_hex(key_col)
        id_key = frame.select(key_col.alias("k")).collect()[0]["k"]
        # Never the value: the keyed hash of a PII identifier, the shape of any other.
        shown = (
            f"{id_type}:<keyed hash {id_key[:12]}...>"
            if pii and id_key
            else f"{id_type}:{mask_identifier(id_key or raw)}"
        )
        found = (
            identity_map.filter((F.col(ID_TYPE) == id_type) & (F.col(ID_KEY) == F.lit(id_key)))
            .select(ONE_ID)
            .first()
        )
        if id_key is None or found is None:
            raise ConfigError(
                f"tags.explain.id: no person has identifier {shown if id_key else id_type + ' (not a valid value)'}"
            )
        return found[ONE_ID], f"from {shown}"
    # As data, not a literal: what was given may be a mistyped identifier.
    asked = identity_map.sparkSession.createDataFrame([(given,)], f"{ONE_ID} string")
    if identity_map.join(asked, ONE_ID, how="left_semi").limit(1).count() == 0:
        raise ConfigError(
            f"tags.explain: the person given is not a one_id in {T.IDENTITY_MAP.ref} "
            f"(identifiers are written id_type:value, types: {', '.join(sorted(lookup.id_rules))})"
        )
    return given, ONE_ID


def read_person(
    settings: TagsExplainConfig,
    stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The person to explain: ``settings.id`` (a one_id), one line of standard input
    (``id: "-"``; typed without echo at a terminal) or the variable ``settings.id_env``."""
    if settings.id_env is not None:
        value = (os.environ if environ is None else environ).get(settings.id_env, "").strip()
        if not value:
            raise ConfigError(
                f"tags.explain.id_env: environment variable {settings.id_env} is not set"
            )
        return value
    if settings.id != EXPLAIN_STDIN:
        return str(settings.id)
    if launched_by_spark_submit():
        # spark-submit gives the Python driver no standard input: reading would wait forever.
        raise ConfigError(
            "tags.explain.id=-: a driver started by spark-submit has no standard input; "
            "spark-submit.sh reads it for the job, or use tags.explain.id_env"
        )
    stream = sys.stdin if stdin is None else stdin
    if stream.isatty():
        value = getpass.getpass("person to explain (one_id or id_type:value): ")
    else:
        value = stream.readline()
    if not value.strip():
        raise ConfigError("tags.explain.id=-: standard input held no person (one line expected)")
    return value.strip()


def explain_person(
    inputs: Inputs,
    tags: TagSet,
    settings: TagsExplainConfig,
    lookup: PersonLookup,
    *,
    run_date: dt.date,
    person: str | None = None,
) -> Explained:
    """The rule behind ``settings.tag``, and the stored and recomputed value of ``person``
    (a one_id or id_type:value, from ``read_person``; default ``settings.id``)."""
    sub = chain(tags, settings)
    tag = tags[str(settings.tag)]
    given = str(settings.id) if person is None else person
    one_id, how = resolve_person(inputs.identity_map, given, lookup)
    mine = cut(inputs.identity_map.filter(F.col(ONE_ID) == F.lit(one_id)))
    data = datasets(inputs, sub.tags, mine, consent=False)
    cv = usable_customer_value(inputs.customer_value, sub.tags, run_date)
    mine_cv = cv.filter(F.col(ONE_ID) == F.lit(one_id)) if cv is not None else None
    computed = [t for t in sub.tags if t.template != "kmeans"]
    values, _ = tag_values(computed, data, mine_cv, run_date, kmeans=None)
    wide = compute.profile(mine.select(ONE_ID), values, computed or sub.tags)
    now = {
        k: v for k, v in (wide.collect()[0].asDict() if wide.columns else {}).items() if k != ONE_ID
    }
    stored = (
        inputs.previous.filter((F.col(ONE_ID) == one_id) & (F.col("tag") == tag.name)).first()
        if inputs.previous is not None
        else None
    )

    lines = [f"tag {tag.name}: {tag.template} -> {tag.type}, rule version {tag.version}"]
    if tag.spec.description:
        lines.append(f"  meaning: {tag.spec.description}")
    rule = {k: v for k, v in tag.as_dict().items() if k != "description"}
    lines.append(
        "  rule:    "
        + yaml.safe_dump(rule, default_flow_style=True, sort_keys=False, width=10_000).strip()
    )
    lines.append(f"person {one_id} ({how}), run date {run_date}")
    if stored is None:
        lines.append(f"  stored:  no value in {T.PROFILE_TAGS.ref}")
    else:
        current = (
            "current rule"
            if stored["rule_version"] == tag.version
            else f"OUTDATED rule (now {tag.version})"
        )
        lines.append(
            f"  stored:  {stored['value']} (computed {stored['computed_at']}, run date {stored['run_date']}, "
            f"rule version {stored['rule_version']}: {current})"
        )
    if tag.template != "kmeans":
        lines.append(f"  recomputed for {run_date}: {now.get(tag.name)}")
    inputs_shown = _inputs(tag, data, mine_cv, now, run_date, settings.rows, lines)
    lines.extend("    " + "  ".join(f"{k}={v}" for k, v in row.items()) for row in inputs_shown)
    return Explained(
        lines,
        {
            ONE_ID: one_id,
            "tag": tag.name,
            "version": tag.version,
            "value": now.get(tag.name),
            "stored": stored["value"] if stored is not None else None,
            "inputs": inputs_shown,
        },
    )


def _inputs(
    tag: Tag,
    data: Mapping[str, DataFrame],
    mine_cv: DataFrame | None,
    now: Mapping[str, Any],
    run_date: dt.date,
    most: int,
    lines: list[str],
) -> list[dict[str, Any]]:
    """The inputs the rule read (at most ``most`` rows); their description goes to ``lines``."""
    spec = tag.spec
    if tag.template in WINDOWED:
        start, end = compute.window_bounds(run_date, spec.window_days)
        lines.append(
            f"  window:  {start or 'all history'} .. {end} (inclusive), dataset {spec.dataset}: "
            f"{DATASETS[spec.dataset].description}"
            + (f", where {spec.where}" if spec.where else "")
        )
        rows = input_rows(tag, data[spec.dataset], run_date)
        # The total is what explain reports: how many rows the value was computed from.
        total = rows.count()
        lines.append(f"  inputs:  {total} row(s)" + (f", first {most}" if total > most else ""))
        return [r.asDict() for r in rows.limit(most).collect()]
    if tag.template == "attribute":
        found = input_rows(tag, data[spec.dataset], run_date) if spec.dataset in data else None
        shown = [r.asDict() for r in found.limit(most).collect()] if found is not None else []
        lines.append(f"  inputs:  {len(shown)} {spec.dataset} row(s), combined by {spec.combine}")
        return shown
    if tag.template in ("model", "kmeans"):
        fields = [spec.field] if tag.template == "model" else list(spec.features)
        if mine_cv is None:
            lines.append(f"  inputs:  gold/{spec.source} for {run_date} not available")
            return []
        lines.append(f"  inputs:  gold/{spec.source} row of the person")
        return [r.asDict() for r in mine_cv.select(RUN_DATE, *fields).collect()]
    if tag.template == "bucket":
        lines.append(
            "  buckets: " + ", ".join(f"{b.label} [{b.min}, {b.max})" for b in spec.buckets)
        )
    lines.append("  inputs:  tags " + ", ".join(tag.depends))
    return [{d: now.get(d) for d in tag.depends}]
