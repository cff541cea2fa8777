"""Settings of tags and segments (the ``tags`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from precis.settings import Section, config_file


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
    """Explain mode: print how one person's tag value came about instead of computing tags."""

    # A one_id, or id_type:value (PII values are hashed with the project's key; never printed).
    id: str | None = None
    tag: str | None = None
    # Input rows printed at most.
    rows: int = Field(20, ge=1, le=1000)

    @model_validator(mode="after")
    def _both(self) -> TagsExplainConfig:
        if (self.id is None) != (self.tag is None):
            raise ValueError("tags.explain needs both id and tag (or neither)")
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
    # Set id and tag to explain one person's value instead of computing tags.
    explain: TagsExplainConfig = TagsExplainConfig()

    def definitions_path(self) -> Path | Traversable:
        return config_file(self.definitions)

    def segments_path(self) -> Path | Traversable | None:
        return config_file(self.segments) if self.segments else None
