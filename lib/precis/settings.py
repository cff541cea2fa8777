"""Settings machinery: YAML layers, dotted overrides and validation, for any schema.

The schema is a tree of frozen pydantic models (``Section``); each domain declares its
own section beside its code (``precis.<domain>.settings``) and ``precis.config`` composes
them into the run's ``Config``. Nothing here knows a domain.
"""

from __future__ import annotations

import copy
import importlib.resources
import types
import typing
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from precis.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """Base of every config section: strict about keys, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
        loaded = yaml.safe_load(path.read_text()) or {}
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
        return yaml.safe_load(raw) if raw.strip() else raw
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
            problems.append(f"config key '{key}': {err['msg']} (got {err.get('input')!r})")
    return f"invalid config ({source} + --set): " + "; ".join(problems)
