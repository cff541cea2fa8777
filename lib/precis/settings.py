"""Settings machinery: YAML layers, dotted overrides and validation, for any schema.

The schema is a tree of frozen pydantic models (``Section``); each domain declares its
own section beside its code (``precis.<domain>.settings``) and ``precis.config`` composes
them into the run's ``Config``. Nothing here knows a domain.
"""

from __future__ import annotations

import copy
import importlib.resources
import inspect
import json
import re
import types
import typing
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote, urlparse

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from precis.errors import ConfigError
from precis.redact import redact_value

#: libyaml's parser where PyYAML was built with it (the wheels are): the same safe
#: constructor, about seven times faster per config than the pure-Python parser
#: (bench/bench_config.py). A job reads four to six YAML files (config, overlays, rules)
#: before Spark starts, and a test suite thousands.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_SAFE_LOADER)


M = TypeVar("M", bound=BaseModel)
MAX_LINE = 100
#: A one_id as a setting accepts it (explain modes). An identifier (id_type:value, an
#: email, a phone with its +) does not look like this, so none sits in a command line.
ONE_ID_FORM = re.compile(r"[A-Za-z0-9_-]+")


class Section(BaseModel):
    """Base of every config section: strict about keys, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields a section fills from a preset (chosen by another of its fields) when they are
    #: left out or null: the defaults file shows them as null, not as the filled value, or
    #: every run would set them explicitly and a preset chosen later would never apply.
    preset_fields: ClassVar[tuple[str, ...]] = ()


def defaults_dir() -> Traversable:
    """The default configuration: package data of an installed precis (``precis/conf``),
    or the project's ``conf/`` when precis runs from a checkout (an editable install)."""
    packaged = importlib.resources.files("precis") / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"


def config_file(path: str) -> Path | Traversable:
    """A file named in the config: absolute, or relative to the working directory, or
    one of the packaged defaults (which may live inside a zip on a cluster)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or (Path.cwd() / candidate).is_file():
        return candidate.resolve()
    packaged = defaults_dir().joinpath(*candidate.parts)
    return packaged if packaged.is_file() else candidate.resolve()


def absolute(path: str) -> str:
    if "://" in path or path.startswith("dbfs:"):
        return path.rstrip("/")
    return str(Path(path).expanduser().resolve())


def local_file_path(path: str) -> str | None:
    """Where ``path`` is on the file system of this process (``file:`` URIs, plain paths,
    ``dbfs:/`` through Databricks' ``/dbfs`` mount); None for object stores and the like."""
    url = urlparse(path)
    if url.scheme in ("", "file"):
        return unquote(url.path)
    if url.scheme == "dbfs":
        return "/dbfs" + unquote(url.path)
    return None


def environments(folder: Path | Traversable) -> list[str]:
    """Names of the environment overlays in ``folder/env``."""
    overlays = folder / "env"
    if not overlays.is_dir():
        return []
    return sorted(
        p.name.removesuffix(".yaml") for p in overlays.iterdir() if p.name.endswith(".yaml")
    )


def read_yaml_mapping(path: Path | Traversable, what: str = "config") -> dict[str, Any]:
    """A YAML file holding a mapping; ConfigError naming the ``what`` file otherwise."""
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    try:
        loaded = _safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} file {path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{what} file {path} must hold a mapping at the top level")
    return loaded


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects dotted.key=value, got '{item}'")
    return key.strip(), value


def apply_override(
    root: type[BaseModel], data: dict[str, Any], dotted: str, raw: str
) -> dict[str, Any]:
    """``data`` with ``dotted`` set to ``raw``, typed by the schema of ``root``."""
    path = _schema_path(root, dotted)
    if _is_string_field(root, path):
        # An optional string (mlflow.tracking_uri, landing.<ds>.path, ...) can be reset to
        # its default with null, as in YAML; any other text stays a string verbatim.
        value = None if raw.strip() in ("null", "~") and _is_optional_field(root, path) else raw
    else:
        value = _yaml_scalar(raw)
    merged = copy.deepcopy(data)
    node = merged
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value
    return merged


def _schema_path(root: type[BaseModel], dotted: str) -> list[str]:
    """Split a dotted key along the schema; a dict-typed field takes the rest as one key.

    ``spark.conf.spark.sql.shuffle.partitions`` is ``["spark", "conf",
    "spark.sql.shuffle.partitions"]`` because ``spark.conf`` is a free-form mapping.
    """
    parts = dotted.split(".")
    path: list[str] = []
    model: Any = root
    i = 0
    while i < len(parts):
        part = parts[i]
        path.append(part)
        i += 1
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            if fields is not None:
                known = ", ".join(sorted(fields))
                raise ConfigError(
                    f"unknown config key '{dotted}' ('{part}' is not one of: {known})"
                )
            break
        annotation = _unwrap_optional(fields[part].annotation)
        if typing.get_origin(annotation) is dict and i < len(parts):
            value_type = typing.get_args(annotation)[-1]
            if isinstance(value_type, type) and issubclass(value_type, BaseModel):
                # A mapping of sections (identity.types.phone.max_per_person): one part
                # is the entry's name, the rest continues inside the section.
                path.append(parts[i])
                i += 1
                model = value_type
                continue
            path.append(".".join(parts[i:]))
            break
        model = annotation
    return path


def _field_at(root: type[BaseModel], path: list[str]) -> tuple[Any, Any]:
    """(the schema field at ``path``, or None with the enclosing free-form mapping's type)."""
    model: Any = root
    annotation: Any = None
    field: Any = None
    for part in path:
        origin_args = typing.get_args(model) if typing.get_origin(model) is dict else ()
        if (
            origin_args
            and isinstance(origin_args[-1], type)
            and issubclass(origin_args[-1], BaseModel)
        ):
            model = origin_args[-1]  # the entry's name in a mapping of sections
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None, annotation
        field = fields[part]
        annotation = model = _unwrap_optional(field.annotation)
    return field, None


def _is_string_field(root: type[BaseModel], path: list[str]) -> bool:
    field, mapping = _field_at(root, path)
    if field is None:
        # Inside a free-form mapping: take dict[str, str] values verbatim.
        args = typing.get_args(mapping) if mapping is not None else ()
        return bool(args) and args[-1] is str
    return _unwrap_optional(field.annotation) is str


def _is_optional_field(root: type[BaseModel], path: list[str]) -> bool:
    field, _ = _field_at(root, path)
    return field is not None and type(None) in typing.get_args(field.annotation)


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _yaml_scalar(raw: str) -> Any:
    try:
        return _safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        return raw


def validate(root: type[M], data: dict[str, Any], source: str) -> M:
    """``root`` built from ``data``; ConfigError naming every bad key and ``source``."""
    try:
        return root.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown config key '{key}'")
        elif not key:
            # A check across sections: its message names the keys; the input is everything.
            problems.append(err["msg"].removeprefix("Value error, "))
        else:
            # A value that looks like a secret is not repeated in the message.
            shown = redact_value(key, err.get("input"))
            problems.append(f"config key '{key}': {err['msg']} (got {shown!r})")
    return f"invalid config ({source} + --set): " + "; ".join(problems)


# ------------------------------------------------------------ model registry names
_PLAIN_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


UC_MODEL_NAME = re.compile(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+")


def check_model_name(value: str | None) -> str | None:
    """A registered model name: plain (``precis-churn``) or Unity Catalog's ``catalog.schema.model``.

    Any other dotted name (``a.b``) reads as a partial Unity Catalog path to one registry and
    as a literal name to another: refused rather than guessed at.
    """
    if value is None or _PLAIN_MODEL_NAME.fullmatch(value) or UC_MODEL_NAME.fullmatch(value):
        return value
    raise ValueError(
        "a registered model name is a plain name (letters, digits, '_', '-') or catalog.schema.model "
        "(each part letters, digits, '_')"
    )


def is_unity_catalog(registry_uri: str | None) -> bool:
    return registry_uri is not None and (
        registry_uri == "databricks-uc" or registry_uri.startswith("databricks-uc://")
    )


# ------------------------------------------------------------------ defaults as YAML
def defaults_yaml(root: type[BaseModel], header: str = "", exclude: tuple[str, ...] = ()) -> str:
    """The defaults of ``root`` as commented YAML: the models are the one place a default
    is written; the packaged ``base.yaml`` is this text (a test keeps the two equal).

    Comments come from the models' source: the ``#`` lines just above a field go above its
    key, a comment at the end of the field's line goes beside its value.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    for name, field in root.model_fields.items():
        if name in exclude:
            continue
        lines.append("")
        lines.extend(_field_yaml(root, name, field.get_default(call_default_factory=True), 0))
    return "\n".join(lines).lstrip("\n") + "\n"


def _field_yaml(model: type[BaseModel], name: str, value: Any, indent: int) -> list[str]:
    above, beside = _field_comments(model, name)
    pad = " " * indent
    out = [f"{pad}# {c}".rstrip() for c in above]
    if isinstance(value, BaseModel) and not _is_flow(value):
        out.append(_with_comment(f"{pad}{name}:", beside))
        for child in type(value).model_fields:
            presets = getattr(type(value), "preset_fields", ())
            shown = None if child in presets else getattr(value, child)
            out.extend(_field_yaml(type(value), child, shown, indent + 2))
        return out
    if isinstance(value, Mapping) and any(isinstance(v, BaseModel) for v in value.values()):
        out.append(_with_comment(f"{pad}{name}:", beside))
        width = max(len(str(k)) for k in value) + 1
        for key, entry in value.items():
            out.append(f"{pad}  {f'{key}:':<{width}} {_flow(entry)}")
        return out
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], BaseModel):
        out.append(_with_comment(f"{pad}{name}:", beside))
        out.extend(f"{pad}  - {_flow(entry)}" for entry in value)
        return out
    line = f"{pad}{name}: {_flow(value)}"
    if isinstance(value, Mapping) and value and len(line) > MAX_LINE:
        # A long mapping reads better as one entry per line.
        out.append(_with_comment(f"{pad}{name}:", beside))
        out.extend(f"{pad}  {_scalar(k)}: {_flow(v)}" for k, v in value.items())
        return out
    out.append(_with_comment(line, beside))
    return out


def _with_comment(line: str, comment: str) -> str:
    # Beside-comments start at one column where the line allows, as a table reads.
    return f"{line:<29} # {comment}" if comment else line


def _is_flow(value: BaseModel) -> bool:
    """Small sections of plain values without comments read best on one line."""
    fields = type(value).model_fields
    return all(
        not isinstance(getattr(value, f), (BaseModel, Mapping, list, tuple))
        and _field_comments(type(value), f) == ([], "")
        for f in fields
    )


def _flow(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    text = text.removesuffix("\n...").removesuffix(" ...")
    # Inside [...] or {...} more characters are syntax; quote whatever would not read back.
    if isinstance(value, str) and not _reads_back(f"[{text}]", [value]):
        return json.dumps(value)
    return text


def _reads_back(text: str, value: Any) -> bool:
    try:
        return bool(_safe_load(text) == value)
    except yaml.YAMLError:
        return False


def _field_comments(model: type[BaseModel], name: str) -> tuple[list[str], str]:
    """(comment lines above the field, comment beside it) in the model's class body."""
    for klass in model.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return _class_comments(klass).get(name, ([], ""))
    return [], ""


_COMMENTS: dict[type, dict[str, tuple[list[str], str]]] = {}


def _class_comments(klass: type) -> dict[str, tuple[list[str], str]]:
    if klass not in _COMMENTS:
        source = inspect.getsource(klass).splitlines()
        found: dict[str, tuple[list[str], str]] = {}
        above: list[str] = []
        for line in source[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped[1:].strip())
                continue
            match = re.match(r"    (\w+)\s*:[^=]*(?:=.*)?$", line)
            if match and not line.startswith("     "):
                beside = line.split("  # ", 1)[1].strip() if "  # " in line else ""
                found[match.group(1)] = (above, beside)
            above = []
        _COMMENTS[klass] = found
    return _COMMENTS[klass]
