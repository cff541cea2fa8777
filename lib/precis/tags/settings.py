"""Settings of tags and segments (the ``tags`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

import re
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from precis.errors import ConfigError
from precis.settings import ONE_ID_FORM, Section, config_file

#: ``tags.explain.id`` that reads the person from standard input.
EXPLAIN_STDIN = "-"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TagsKMeansConfig(Section):
    """K-means cluster tags: k is chosen by silhouette among k_min..k_max."""

    k_min: int = Field(2, ge=2)
    k_max: int = Field(6, ge=2, le=50)
    seed: int = 11
    max_iter: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _range(self) -> TagsKMeansConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"tags.kmeans needs k_min <= k_max (got {self.k_min}, {self.k_max})")
        return self


class TagsExplainConfig(Section):
    """Explain mode: print how one person's tag value came about instead of computing tags.

    The person is a one_id, or an identifier ``id_type:value`` read from standard input
    (``id: "-"``) or from the environment variable named by ``id_env``: never written
    here, where it would sit in a command line (``ps``, shell history) or a file.
    """

    # The person: a one_id, or "-" to read a one_id or id_type:value from standard input.
    id: str | None = None
    # Or: the name of an environment variable holding a one_id or id_type:value.
    id_env: str | None = None
    tag: str | None = None
    # Input rows printed at most.
    rows: int = Field(20, ge=1, le=1000)

    @field_validator("id")
    @classmethod
    def _no_identifier(cls, value: str | None) -> str | None:
        if value is None or value == EXPLAIN_STDIN or ONE_ID_FORM.fullmatch(value):
            return value
        # A ConfigError, not a ValueError: pydantic's message would quote the value.
        raise ConfigError(
            "invalid config: tags.explain.id takes a one_id, or '-' to read the person from "
            "standard input; an identifier (id_type:value) comes from standard input or from "
            "the environment variable named by tags.explain.id_env, never from the command "
            "line or a file"
        )

    @field_validator("id_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError("must be the name of an environment variable (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _both(self) -> TagsExplainConfig:
        if self.id is not None and self.id_env is not None:
            raise ValueError("tags.explain takes the person from id or from id_env, not both")
        if (self.id is None and self.id_env is None) != (self.tag is None):
            raise ValueError(
                "tags.explain needs both id and tag (or neither); id_env may stand for id"
            )
        return self


class TagsConfig(Section):
    """Tag profiles and audience segments (the ``tags`` job)."""

    # Relative paths resolve against the working directory, then the packaged defaults
    # (where tags.yaml and segments.yaml ship).
    definitions: str = "tags.yaml"
    segments: str | None = "segments.yaml"  # null: no segments
    # Consented members of each segment to <root>/exports/segments/run_date=<date>/segment=<name>.
    export: bool = True
    export_format: Literal["csv", "parquet"] = "parquet"
    # Cluster tags: the k with the best silhouette in k_min..k_max.
    kmeans: TagsKMeansConfig = TagsKMeansConfig()
    # Set tag and the person (id or id_env) to explain a value instead of computing tags.
    explain: TagsExplainConfig = TagsExplainConfig()

    def definitions_path(self) -> Path | Traversable:
        return config_file(self.definitions)

    def segments_path(self) -> Path | Traversable | None:
        return config_file(self.segments) if self.segments else None
