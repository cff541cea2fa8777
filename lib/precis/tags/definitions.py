"""Tag and segment definitions: typed templates, validated before any Spark work.

A definition names a template and its parameters. Everything a template refers to (a
dataset, a field, another tag) is checked against the catalogue below, expression tags
are ordered by their references (a cycle is an error naming the tags in it), and every
tag gets a *rule version*: a hash of its definition and of the versions of the tags it
reads, so changing a rule changes the version of everything downstream of it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from precis.config import read_yaml_mapping
from precis.errors import ConfigError

TagType = Literal["long", "double", "string", "boolean", "date", "timestamp"]
NUMERIC: frozenset[str] = frozenset({"long", "double"})


@dataclass(frozen=True)
class Dataset:
    """A per-person dataset tags can read: its time column and typed fields."""

    time: str | None
    fields: Mapping[str, str]
    needs: tuple[str, ...]  # silver tables it is built from
    description: str


_ITEM_FIELDS = {"item_id": "string", "category": "string", "brand": "string"}
#: Datasets resolved to ``one_id`` (see precis.tags.sources). Windows apply to ``time``.
DATASETS: dict[str, Dataset] = {
    "orders": Dataset(
        "order_time",
        {"order_id": "string", "amount": "double", "channel": "string", "currency": "string"},
        ("orders",),
        "paid orders (status refunded excluded; missing status means paid)",
    ),
    "refunds": Dataset(
        "order_time",
        {"order_id": "string", "amount": "double", "channel": "string", "currency": "string"},
        ("orders",),
        "refunded orders",
    ),
    "order_lines": Dataset(
        "order_time",
        {
            "order_id": "string",
            "quantity": "long",
            "unit_price": "double",
            "line_amount": "double",
            **_ITEM_FIELDS,
        },
        ("orders", "order_items"),
        "lines of paid orders with the item's category and brand (line_amount = quantity x unit_price)",
    ),
    "events": Dataset(
        "event_time",
        {
            "event_id": "string",
            "event_type": "string",
            "channel": "string",
            "source": "string",
            **_ITEM_FIELDS,
        },
        ("events",),
        "behaviour events with the item's category and brand when the event is on an item",
    ),
    "touchpoints": Dataset(
        "touch_time",
        {
            "touch_id": "string",
            "channel": "string",
            "campaign_id": "string",
            "interaction": "string",
            "cost": "double",
        },
        ("touchpoints",),
        "marketing touchpoints",
    ),
    "customers": Dataset(
        None,
        {
            "gender": "string",
            "city": "string",
            "birth_date": "date",
            "signup_time": "timestamp",
            "consent_marketing": "boolean",
        },
        ("customers",),
        "CRM customer rows (several rows of one person are combined by the tag's `combine`)",
    ),
}

#: Outputs of other jobs that ``model`` and ``kmeans`` tags copy, one row per one_id.
MODEL_SOURCES: dict[str, dict[str, str]] = {
    "customer_value": {
        "lifecycle_stage": "string",
        "rfm_segment": "string",
        "rfm_score": "string",
        "r_score": "long",
        "f_score": "long",
        "m_score": "long",
        "recency_days": "long",
        "frequency": "long",
        "orders": "long",
        "total_spend": "double",
        "monetary_value": "double",
        "p_alive": "double",
        "expected_purchases": "double",
        "expected_spend": "double",
        "clv": "double",
        "churn_risk": "double",
    },
}

WINDOWED = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "most_frequent",
    "first",
    "last",
    "unique_count",
    "days_since",
)
_NAME = r"^[a-z][a-z0-9_]*$"


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""


class WindowDef(_Def):
    """Aggregation of a dataset's rows in the ``window_days`` days ending on the run date."""

    template: Literal[WINDOWED]  # type: ignore[valid-type]
    dataset: str
    field: str | None = None
    # null: all history up to the run date; 30: the run date and the 29 days before it.
    window_days: int | None = None
    # Equality (a value) or membership (a list) on dataset fields, e.g. {event_type: view}.
    where: dict[str, str | int | float | bool | list[str | int | float | bool]] = Field(
        default_factory=dict
    )

    @field_validator("window_days")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(
                f"window_days must be a whole number of days >= 1 (or null for all history), got {value}"
            )
        return value


class AttributeDef(_Def):
    """A profile attribute from a dataset without time (customers), one value per person."""

    template: Literal["attribute"]
    dataset: str = "customers"
    field: str
    # How several rows of one person combine: all (true only if every row is true; a
    # missing value counts as false), any, min, max, most_frequent.
    combine: Literal["all", "any", "min", "max", "most_frequent"] = "most_frequent"


class ModelDef(_Def):
    """A column copied from another job's per-person output (gold/customer_value)."""

    template: Literal["model"]
    source: str = "customer_value"
    field: str


class KMeansDef(_Def):
    """K-means cluster of buyers on model-source features; k chosen by silhouette."""

    template: Literal["kmeans"]
    source: str = "customer_value"
    features: tuple[str, ...] = ("recency_days", "orders", "total_spend")
    # Skewed counts and amounts: cluster on log1p of these features (then standardized).
    log_features: tuple[str, ...] = ("orders", "total_spend")
    # Clusters are labelled c1..ck in increasing order of the centre's value of this feature,
    # so a label means the same thing on every run.
    order_by: str = "total_spend"


class ExpressionDef(_Def):
    """Spark SQL over other tags (by name), e.g. ``spend_365d / nullif(order_count_365d, 0)``."""

    template: Literal["expression"]
    expr: str = Field(min_length=1)
    type: TagType


class Bucket(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    min: float | None = None  # inclusive
    max: float | None = None  # exclusive


class BucketDef(_Def):
    """Ranges of a numeric tag mapped to labels: ``min <= value < max``, first match wins."""

    template: Literal["bucket"]
    source: str
    buckets: tuple[Bucket, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ranges(self) -> BucketDef:
        for b in self.buckets:
            if b.min is not None and b.max is not None and b.min >= b.max:
                raise ValueError(f"bucket '{b.label}': min {b.min} must be below max {b.max}")
        return self


TagDef = Annotated[
    WindowDef | AttributeDef | ModelDef | KMeansDef | ExpressionDef | BucketDef,
    Field(discriminator="template"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(TagDef)


class SegmentDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    # Spark SQL boolean over tags: and, or, not, comparisons, in, is null, between.
    where: str = Field(min_length=1)


@dataclass(frozen=True)
class Tag:
    name: str
    spec: Any  # one of the *Def models
    type: str
    depends: tuple[str, ...]  # tags read by expression and bucket tags
    version: str

    @property
    def template(self) -> str:
        return self.spec.template

    def as_dict(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", exclude_defaults=False)


@dataclass(frozen=True)
class Segment:
    name: str
    spec: SegmentDef
    depends: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class TagSet:
    """Validated tags in evaluation order (every tag after the tags it reads)."""

    tags: tuple[Tag, ...]
    source: str

    def __getitem__(self, name: str) -> Tag:
        for tag in self.tags:
            if tag.name == name:
                return tag
        raise ConfigError(
            f"unknown tag '{name}' (defined in {self.source}: {', '.join(self.names)})"
        )

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    def by_template(self, *templates: str) -> list[Tag]:
        return [t for t in self.tags if t.template in templates]


# --------------------------------------------------------------------------- parsing
_SQL_WORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "true",
        "false",
        "between",
        "like",
        "rlike",
        "ilike",
        "case",
        "when",
        "then",
        "else",
        "end",
        "as",
        "cast",
        "interval",
        "date",
        "timestamp",
        "distinct",
        "exists",
        "any",
        "all",
        "some",
        "div",
    ]
)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_IDENT = re.compile(r"`([^`]+)`|\b([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?")
_TYPE_WORDS = frozenset(
    [
        "string",
        "long",
        "int",
        "bigint",
        "double",
        "float",
        "boolean",
        "date",
        "timestamp",
        "decimal",
    ]
)


def references(expr: str) -> list[str]:
    """Column names an SQL expression reads (function names, keywords, literals left out)."""
    text = _STRING.sub("''", expr)
    found: list[str] = []
    for match in _IDENT.finditer(text):
        quoted, word, call = match.groups()
        if quoted:
            name = quoted
        elif (
            call
            or word.lower() in _SQL_WORDS
            or word.lower() in _TYPE_WORDS
            or re.match(r"\d", word)
        ):
            continue
        else:
            name = word
        if name not in found:
            found.append(name)
    return found


def _field_type(
    tag: str, spec: Any, field: str | None, fields: Mapping[str, str], where: str
) -> str:
    if field is None:
        raise ConfigError(f"tag '{tag}': template {spec.template} needs a field of {where}")
    if field not in fields:
        raise ConfigError(
            f"tag '{tag}': unknown field '{field}' of {where} (fields: {', '.join(sorted(fields))})"
        )
    return fields[field]


def _window_type(name: str, spec: WindowDef) -> str:
    if spec.dataset not in DATASETS:
        raise ConfigError(
            f"tag '{name}': unknown dataset '{spec.dataset}' (datasets: {', '.join(DATASETS)})"
        )
    ds = DATASETS[spec.dataset]
    where = f"dataset '{spec.dataset}'"
    if ds.time is None:
        raise ConfigError(
            f"tag '{name}': dataset '{spec.dataset}' has no time column; use template attribute"
        )
    for key in spec.where:
        if key not in ds.fields:
            raise ConfigError(
                f"tag '{name}': where on unknown field '{key}' of {where} (fields: {', '.join(sorted(ds.fields))})"
            )
    if spec.template in ("count", "days_since"):
        if spec.field is not None:
            raise ConfigError(f"tag '{name}': template {spec.template} takes no field")
        return "long"
    kind = _field_type(name, spec, spec.field, ds.fields, where)
    if spec.template in ("sum", "avg"):
        if kind not in NUMERIC:
            raise ConfigError(
                f"tag '{name}': {spec.template} needs a numeric field; '{spec.field}' is {kind}"
            )
        return "double" if spec.template == "avg" else kind
    if spec.template == "unique_count":
        return "long"
    if spec.template == "most_frequent":
        return "string"
    return kind  # min, max, first, last keep the field's type


def _base_type(name: str, spec: Any, kmeans_source_ok: bool = True) -> str:
    if isinstance(spec, WindowDef):
        return _window_type(name, spec)
    if isinstance(spec, AttributeDef):
        ds = DATASETS.get(spec.dataset)
        if ds is None or ds.time is not None:
            static = [d for d, v in DATASETS.items() if v.time is None]
            raise ConfigError(
                f"tag '{name}': attribute tags read a dataset without time ({', '.join(static)}), got '{spec.dataset}'"
            )
        kind = _field_type(name, spec, spec.field, ds.fields, f"dataset '{spec.dataset}'")
        if spec.combine in ("all", "any"):
            if kind != "boolean":
                raise ConfigError(
                    f"tag '{name}': combine {spec.combine} needs a boolean field; '{spec.field}' is {kind}"
                )
            return "boolean"
        return "string" if spec.combine == "most_frequent" else kind
    if isinstance(spec, (ModelDef, KMeansDef)):
        if spec.source not in MODEL_SOURCES:
            raise ConfigError(
                f"tag '{name}': unknown model source '{spec.source}' (sources: {', '.join(MODEL_SOURCES)})"
            )
        fields = MODEL_SOURCES[spec.source]
        where = f"model source '{spec.source}'"
        if isinstance(spec, ModelDef):
            return _field_type(name, spec, spec.field, fields, where)
        if not spec.features:
            raise ConfigError(f"tag '{name}': kmeans needs at least one feature")
        for feature in (*spec.features, *spec.log_features, spec.order_by):
            if _field_type(name, spec, feature, fields, where) not in NUMERIC:
                raise ConfigError(f"tag '{name}': kmeans feature '{feature}' is not numeric")
        for feature in (*spec.log_features, spec.order_by):
            if feature not in spec.features:
                raise ConfigError(
                    f"tag '{name}': '{feature}' is not one of the features {list(spec.features)}"
                )
        return "string"
    raise AssertionError(spec)


def _order(name_deps: Mapping[str, tuple[str, ...]], source: str) -> list[str]:
    """Depth-first topological order; a cycle is reported with the tags on it."""
    done: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :] + [name]
            raise ConfigError(
                f"tags in {source}: cycle between expression tags: {' -> '.join(cycle)}"
            )
        state[name] = 1
        for dep in name_deps[name]:
            visit(dep, path + [name])
        state[name] = 2
        done.append(name)

    for name in name_deps:
        visit(name, [])
    return done


def _hash(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def build_tags(
    raw: Mapping[str, Any], source: str = "tags.yaml", extra: Mapping[str, Any] | None = None
) -> TagSet:
    """Validate raw definitions (the ``tags`` mapping of tags.yaml) into a TagSet.

    ``extra`` is hashed into the version of kmeans tags (their k range and seed come from
    the job config, and changing them changes the rule).
    """
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{source}: 'tags' must be a non-empty mapping of tag name -> definition")
    specs: dict[str, Any] = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not re.match(_NAME, name):
            raise ConfigError(
                f"{source}: tag name {name!r} must be lower-case letters, digits and _, starting with a letter"
            )
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: tag '{name}' must be a mapping with a template")
        try:
            specs[name] = _ADAPTER.validate_python(dict(body))
        except ValidationError as exc:
            raise ConfigError(f"{source}: tag '{name}': {_describe(exc)}") from None
    types: dict[str, str] = {}
    deps: dict[str, tuple[str, ...]] = {}
    for name, spec in specs.items():
        if isinstance(spec, ExpressionDef):
            refs = tuple(references(spec.expr))
            unknown = [r for r in refs if r not in specs]
            if unknown:
                raise ConfigError(f"tag '{name}': expression reads unknown tag(s) {unknown}")
            if not refs:
                raise ConfigError(f"tag '{name}': expression reads no tag")
            deps[name] = refs
        elif isinstance(spec, BucketDef):
            if spec.source not in specs:
                raise ConfigError(f"tag '{name}': bucket source '{spec.source}' is not a tag")
            deps[name] = (spec.source,)
        else:
            deps[name] = ()
            types[name] = _base_type(name, spec)
    order = _order(deps, source)
    for name in order:
        spec = specs[name]
        if isinstance(spec, ExpressionDef):
            types[name] = spec.type
        elif isinstance(spec, BucketDef):
            if types[spec.source] not in NUMERIC:
                raise ConfigError(
                    f"tag '{name}': bucket source '{spec.source}' is {types[spec.source]}, not numeric"
                )
            types[name] = "string"
    versions: dict[str, str] = {}
    tags = []
    for name in order:
        spec = specs[name]
        payload: dict[str, Any] = {
            "definition": spec.model_dump(mode="json", exclude={"description"}),
            "depends": {d: versions[d] for d in deps[name]},
        }
        if isinstance(spec, KMeansDef) and extra:
            payload["settings"] = dict(extra)
        versions[name] = _hash(payload)
        tags.append(Tag(name, spec, types[name], deps[name], versions[name]))
    return TagSet(tuple(tags), source)


def build_segments(
    raw: Mapping[str, Any], tags: TagSet, source: str = "segments.yaml"
) -> tuple[Segment, ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: 'segments' must be a mapping of segment name -> definition")
    known = set(tags.names)
    out = []
    for name, body in raw.items():
        if not isinstance(name, str) or not re.match(_NAME, name):
            raise ConfigError(
                f"{source}: segment name {name!r} must be lower-case letters, digits and _"
            )
        try:
            spec = SegmentDef.model_validate(dict(body) if isinstance(body, Mapping) else body)
        except ValidationError as exc:
            raise ConfigError(f"{source}: segment '{name}': {_describe(exc)}") from None
        refs = tuple(references(spec.where))
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise ConfigError(f"segment '{name}': condition reads unknown tag(s) {unknown}")
        version = _hash({"where": spec.where, "depends": {r: tags[r].version for r in refs}})
        out.append(Segment(name, spec, refs, version))
    return tuple(out)


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(
            str(p)
            for p in err["loc"]
            if not str(p).endswith("Def")
            and p not in WINDOWED
            and p not in ("attribute", "model", "kmeans", "expression", "bucket")
        )
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        elif err["type"] == "missing":
            problems.append(f"missing key '{key}'")
        elif err["type"] == "union_tag_invalid":
            problems.append(
                f"unknown template {err.get('input', {}).get('template')!r} (templates: "
                f"{', '.join((*WINDOWED, 'attribute', 'model', 'kmeans', 'expression', 'bucket'))})"
            )
        elif err["type"] == "union_tag_not_found":
            problems.append("missing key 'template'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{key}: {msg} (got {err.get('input')!r})" if key else msg)
    return "; ".join(problems)


def read_yaml(path: Path | Traversable, key: str) -> Mapping[str, Any]:
    """The mapping under the file's single top-level ``key`` (``tags`` or ``segments``)."""
    loaded = read_yaml_mapping(path, key)
    if set(loaded) - {key}:
        raise ConfigError(
            f"{path}: expected one top-level key '{key}', got unknown key(s) {sorted(set(loaded) - {key})}"
        )
    return loaded.get(key) or {}


def load(
    tags_path: Path | Traversable,
    segments_path: Path | Traversable | None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[TagSet, tuple[Segment, ...]]:
    tags = build_tags(read_yaml(tags_path, "tags"), str(tags_path), extra)
    segments = (
        build_segments(read_yaml(segments_path, "segments"), tags, str(segments_path))
        if segments_path
        else ()
    )
    return tags, segments
