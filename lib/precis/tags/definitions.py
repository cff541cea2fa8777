"""Tag and segment definitions: typed templates, validated before any Spark work.

A definition names a template and its parameters. Everything a template refers to (a
dataset, a field, another tag) is checked against the catalogue in
precis.tags.templates, expression tags are ordered by their references (a cycle is an
error naming the tags in it), and every tag gets a *rule version*: a hash of its
definition and of the versions of the tags it reads, so changing a rule changes the
version of everything downstream of it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from precis.errors import ConfigError
from precis.settings import read_yaml_mapping
from precis.sqlcheck import check_expression
from precis.tags.settings import TagsConfig
from precis.tags.templates import (
    DATASETS,
    MODEL_SOURCES,
    NAME_PATTERN,
    NUMERIC,
    TAG_ADAPTER,
    WINDOWED,
    AttributeDef,
    Bucket,
    BucketDef,
    Dataset,
    ExpressionDef,
    KMeansDef,
    ModelDef,
    Segment,
    SegmentDef,
    Tag,
    TagDef,
    TagSet,
    TagType,
    WindowDef,
)

# The templates are re-exported: callers read definitions and their types from here.
__all__ = [
    "DATASETS",
    "MODEL_SOURCES",
    "NUMERIC",
    "WINDOWED",
    "AttributeDef",
    "Bucket",
    "BucketDef",
    "Dataset",
    "ExpressionDef",
    "KMeansDef",
    "ModelDef",
    "Segment",
    "SegmentDef",
    "Tag",
    "TagDef",
    "TagSet",
    "TagType",
    "WindowDef",
    "build_segments",
    "build_tags",
    "from_settings",
    "load",
    "read_yaml",
    "references",
]

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
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
            raise ConfigError(
                f"{source}: tag name {name!r} must be lower-case letters, digits and _, starting with a letter"
            )
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: tag '{name}' must be a mapping with a template")
        try:
            specs[name] = TAG_ADAPTER.validate_python(dict(body))
        except ValidationError as exc:
            raise ConfigError(f"{source}: tag '{name}': {_describe(exc)}") from None
        if isinstance(specs[name], ExpressionDef):
            _check_sql(specs[name].expr, f"tags.{name}.expr", source)
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
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
            raise ConfigError(
                f"{source}: segment name {name!r} must be lower-case letters, digits and _"
            )
        try:
            spec = SegmentDef.model_validate(dict(body) if isinstance(body, Mapping) else body)
        except ValidationError as exc:
            raise ConfigError(f"{source}: segment '{name}': {_describe(exc)}") from None
        _check_sql(spec.where, f"segments.{name}.where", source)
        refs = tuple(references(spec.where))
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise ConfigError(f"segment '{name}': condition reads unknown tag(s) {unknown}")
        version = _hash({"where": spec.where, "depends": {r: tags[r].version for r in refs}})
        out.append(Segment(name, spec, refs, version))
    return tuple(out)


def _check_sql(text: str, setting: str, source: str) -> None:
    # The text becomes code in F.expr: only allowed functions, no subquery (docs/privacy.md).
    try:
        check_expression(text, setting)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


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


def from_settings(settings: TagsConfig) -> tuple[TagSet, tuple[Segment, ...]]:
    """The tag set and segments the ``tags`` settings point at, validated."""
    return load(
        settings.definitions_path(),
        settings.segments_path(),
        extra=settings.kmeans.model_dump(),
    )
