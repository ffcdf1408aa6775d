"""Feature sets: versioned, hashed metadata that every frame and file refers to.

A consumer checks `feature_set_id` and `schema_hash` before it reads values by position, so a
reordered or rescaled feature set can never be misread silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

from featureplane.errors import SchemaMismatchError, UnknownSymbolError

__all__ = [
    "DEFAULT_FEATURE_SET_ID",
    "FLAG_EXACT",
    "FLAG_RESEARCH_ONLY",
    "FLAG_ROLLING",
    "FLAG_SCALED_INT",
    "NUMPY_DTYPES",
    "Dtype",
    "FeatureSet",
    "FeatureSpec",
    "SourceKind",
    "get_feature_set",
    "register_feature_set",
    "registered_feature_sets",
]

Dtype = Literal["i64", "f64", "u32"]
SourceKind = Literal["book", "trade", "tick", "mixed"]

NUMPY_DTYPES: dict[str, str] = {"i64": "<i8", "f64": "<f8", "u32": "<u4"}

# Feature behaviour bits (FeatureSpec.flags).
FLAG_SCALED_INT = 1
"""An integer on the instrument's tick or lot grid; `scale` says how to turn it into real units."""
FLAG_EXACT = 2
"""Computed with integer arithmetic only: every backend must agree bit for bit."""
FLAG_ROLLING = 4
"""Depends on state kept across frames; cleared by a reset."""
FLAG_RESEARCH_ONLY = 8
"""Computed by a user Python function after the kernel (`featureplane.features.research`):
research replay and backtests only; the live runtime refuses it until it is promoted."""


@dataclass(frozen=True)
class FeatureSpec:
    """Metadata of one feature.

    `unit` names the grid of a scaled integer: real value = value * tick_size / scale for
    "price", value * lot_size / scale for "size". f64 features are already in real units (or
    unitless) and have scale 0.
    """

    feature_id: int
    name: str
    dtype: Dtype
    scale: int
    unit: str
    warmup_min_events: int
    source_kind: SourceKind
    flags: int
    description: str

    @property
    def numpy_dtype(self) -> str:
        """The numpy dtype string of the values ("<i8", "<f8" or "<u4")."""
        return NUMPY_DTYPES[self.dtype]


@dataclass(frozen=True)
class FeatureSet:
    """A versioned, ordered list of features; the order is the schema order of every frame.

    `plan` is the canonical plan text of a declared set (`featureplane.features.plan`): the
    schema hash of a declared set is the sha256 of that text, so any change of an id, version,
    family, parameter or input gives a new hash. A set without a plan (the built-in
    `lob_shared_v1`, published before declarations) hashes its feature metadata.
    """

    feature_set_id: str
    feature_schema_version: int
    features: tuple[FeatureSpec, ...]
    plan: str | None = None
    research: str | None = None
    """The canonical text of the set's research-only features (`features.research`), after
    the plan's outputs in the frame; covered by the schema hash with the plan."""

    def __post_init__(self) -> None:
        for i, spec in enumerate(self.features):
            if spec.feature_id != i:
                raise ValueError(f"feature ids must be 0..n-1 in order, got {spec.feature_id}")
        if len({f.name for f in self.features}) != len(self.features):
            raise ValueError("feature names must be unique")
        if len(self.features) > 64:
            raise ValueError("masks are u64: at most 64 features a set")

    @cached_property
    def research_only(self) -> tuple[str, ...]:
        """The names of the research-only features (`FLAG_RESEARCH_ONLY`)."""
        return tuple(f.name for f in self.features if f.flags & FLAG_RESEARCH_ONLY)

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Feature names in schema order."""
        return tuple(f.name for f in self.features)

    @cached_property
    def _by_name(self) -> dict[str, int]:
        return {f.name: f.feature_id for f in self.features}

    def index(self, feature: int | str) -> int:
        """Schema position of a feature given by id or name."""
        if isinstance(feature, str):
            try:
                return self._by_name[feature]
            except KeyError:
                raise UnknownSymbolError(
                    f"feature {feature!r} is not in {self.feature_set_id}"
                ) from None
        if not 0 <= feature < len(self.features):
            raise UnknownSymbolError(f"feature id {feature} is not in {self.feature_set_id}")
        return feature

    def __len__(self) -> int:
        return len(self.features)

    def to_json(self) -> dict[str, Any]:
        """Canonical JSON form (what the schema hash covers, plus the hash itself); a declared
        set adds its plan text under "plan"."""
        body = self._canonical()
        if self.plan is not None:
            body["plan"] = self.plan
        if self.research is not None:
            body["research"] = self.research
        body["schema_hash"] = self.schema_hash
        return body

    def _canonical(self) -> dict[str, Any]:
        return {
            "feature_set_id": self.feature_set_id,
            "feature_schema_version": self.feature_schema_version,
            "features": [asdict(f) for f in self.features],
        }

    @cached_property
    def schema_hash(self) -> str:
        """sha256 of the plan text of a declared set, else of the canonical JSON of the
        metadata (sorted keys, no whitespace), as hex."""
        if self.plan is not None:
            text = self.plan if self.research is None else f"{self.plan}\n{self.research}"
            return hashlib.sha256(text.encode()).hexdigest()
        text = json.dumps(self._canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @cached_property
    def schema_hash64(self) -> int:
        """The first 8 bytes of `schema_hash` as an unsigned int (what binary frames carry)."""
        return int(self.schema_hash[:16], 16)

    def check(self, feature_set_id: str | None = None, schema_hash: str | None = None) -> None:
        """Raise `SchemaMismatchError` unless this set is what a consumer was built for."""
        if feature_set_id is not None and feature_set_id != self.feature_set_id:
            raise SchemaMismatchError(
                f"consumer expects feature set {feature_set_id!r}, "
                f"the producer runs {self.feature_set_id!r}"
            )
        if schema_hash is not None and schema_hash not in (
            self.schema_hash,
            f"{self.schema_hash64:016x}",
        ):
            raise SchemaMismatchError(
                f"consumer expects schema hash {schema_hash[:16]}, "
                f"{self.feature_set_id} has {self.schema_hash[:16]}"
            )

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FeatureSet:
        """A feature set from its `to_json` form. A declared set's metadata is checked
        against its plan by `featureplane.features.plan.feature_set_from_json`, which the
        readers of files and checkpoints use (the plan compiler lives right of this module).

        Raises
        ------
        SchemaMismatchError
            The stored `schema_hash` does not match the metadata it came with.
        ValueError
            Feature ids not 0..n-1 in order, repeated names, or more than 64 features.
        """
        plan = obj.get("plan")
        research = obj.get("research")
        fs = cls(
            obj["feature_set_id"],
            int(obj["feature_schema_version"]),
            tuple(FeatureSpec(**f) for f in obj["features"]),
            plan,
            research,
        )
        stored = obj.get("schema_hash")
        if stored is not None and stored != fs.schema_hash:
            raise SchemaMismatchError(
                f"stored schema hash {stored[:16]} does not match the metadata it came with "
                f"({fs.schema_hash[:16]})"
            )
        return fs


_REGISTRY: dict[str, FeatureSet] = {}
DEFAULT_FEATURE_SET_ID = "lob_shared_v1"


def register_feature_set(fs: FeatureSet) -> None:
    """Register a feature set; registering a different set under a taken id is an error."""
    known = _REGISTRY.get(fs.feature_set_id)
    if known is not None and known.schema_hash != fs.schema_hash:
        raise SchemaMismatchError(f"feature set {fs.feature_set_id!r} is already registered")
    _REGISTRY[fs.feature_set_id] = fs


def get_feature_set(feature_set_id: str = DEFAULT_FEATURE_SET_ID) -> FeatureSet:
    """The registered set `feature_set_id` (the default set registers when `featureplane` is
    imported, from `featureplane.features.lob_shared_v1`)."""
    try:
        return _REGISTRY[feature_set_id]
    except KeyError:
        raise SchemaMismatchError(
            f"unknown feature set {feature_set_id!r}; registered: {sorted(_REGISTRY)}"
        ) from None


def registered_feature_sets() -> tuple[str, ...]:
    """The ids of every registered feature set, sorted."""
    return tuple(sorted(_REGISTRY))
