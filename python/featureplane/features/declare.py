"""Feature-set declarations: what a user writes (TOML or dicts), checked as plain data.

A declaration names a set (`id`, `version`) and its features, each an instance of a catalogue
family (`featureplane.features.catalogue`) with parameters and, for a transform, one input
feature. `featureplane.features.plan.compile_plan` checks it against the catalogue and compiles
it into the plan every backend evaluates. Every problem is reported at once, in one
`FeatureSetDeclarationError`::

    [feature_set]
    id = "my_set_v1"
    version = 1
    [[features]]
    id = "ofi_l1"
    family = "ofi"
    params = { levels = 1 }
    [[features]]
    id = "ofi_l1_ema8"
    family = "ema"
    input = "ofi_l1"
    params = { span = 8 }
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featureplane.errors import FeatureSetDeclarationError
from featureplane.features.research import ResearchDecl

__all__ = ["FeatureDecl", "FeatureSetDecl", "load_declaration"]

ParamValue = int | float
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""Set and feature ids: lower-case identifiers (they become column names and Parquet keys)."""
_SET_KEYS = {"id", "version", "description"}
_FEATURE_KEYS = {"id", "family", "input", "params", "output", "description"}


@dataclass(frozen=True)
class FeatureDecl:
    """One declared feature (a node of the plan).

    Parameters
    ----------
    id
        The feature's name: its frame column when `output`, else an internal node.
    family
        A catalogue family (`featureplane.features.catalogue.CATALOGUE`).
    input
        The id of the feature a transform reads; None for book and trade families.
    params
        The family's parameters.
    output
        Whether the feature is a frame column; internal nodes feed other nodes only.
    description
        Overrides the family's generated description in the metadata (not part of the plan).
    """

    id: str
    family: str
    input: str | None = None
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    output: bool = True
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The TOML/JSON table of this feature (defaults left out)."""
        out: dict[str, Any] = {"id": self.id, "family": self.family}
        if self.input is not None:
            out["input"] = self.input
        if self.params:
            out["params"] = dict(self.params)
        if not self.output:
            out["output"] = False
        if self.description is not None:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class FeatureSetDecl:
    """A declared feature set: id, version and the features in declaration order."""

    id: str
    version: int
    features: tuple[FeatureDecl, ...]
    description: str | None = None
    research: tuple[ResearchDecl, ...] = ()
    """Research-only features (`featureplane.features.research`), after the plan's outputs."""

    def to_dict(self) -> dict[str, Any]:
        """The declaration as the TOML document's tables (`from_dict` reads it back)."""
        head: dict[str, Any] = {"id": self.id, "version": self.version}
        if self.description is not None:
            head["description"] = self.description
        out = {"feature_set": head, "features": [f.to_dict() for f in self.features]}
        if self.research:
            out["research"] = [r.to_dict() for r in self.research]
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "<declaration>") -> FeatureSetDecl:
        """A declaration from its TOML tables (`[feature_set]`, `[[features]]`).

        Raises
        ------
        FeatureSetDeclarationError
            Every shape problem at once: missing or unknown keys, wrong types, bad ids.
            (What the catalogue decides, families and parameters, is checked by
            `compile_plan`.)
        """
        problems: list[str] = []
        head = doc.get("feature_set")
        unknown_top = sorted(set(doc) - {"feature_set", "features", "research"})
        if unknown_top:
            problems.append(f"unknown top-level keys {unknown_top}")
        if not isinstance(head, Mapping):
            problems.append("missing [feature_set] table (id, version)")
            head = {}
        set_id = head.get("id")
        version = head.get("version")
        set_desc = head.get("description")
        problems.extend(f"[feature_set]: unknown key {k!r}" for k in sorted(set(head) - _SET_KEYS))
        if not isinstance(set_id, str) or not NAME_RE.match(set_id):
            problems.append(f"[feature_set].id must be a lower-case identifier, got {set_id!r}")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            problems.append(f"[feature_set].version must be an int >= 1, got {version!r}")
        if set_desc is not None and not isinstance(set_desc, str):
            problems.append("[feature_set].description must be a string")
        raw = doc.get("features", [])
        if not isinstance(raw, list):
            problems.append("features must be an array of tables ([[features]])")
            raw = []
        features = []
        for i, item in enumerate(raw):
            feat = _feature(i, item, problems)
            if feat is not None:
                features.append(feat)
        if not raw:
            problems.append("the set declares no features")
        research = _research(doc.get("research", []), problems)
        if problems:
            raise FeatureSetDeclarationError(source, problems)
        assert isinstance(set_id, str) and isinstance(version, int)
        return cls(set_id, version, tuple(features), set_desc, research)

    @classmethod
    def from_toml(cls, text: str, source: str = "<toml>") -> FeatureSetDecl:
        """A declaration from TOML text."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FeatureSetDeclarationError(source, [f"not valid TOML: {exc}"]) from None
        return cls.from_dict(doc, source)


def _feature(i: int, item: object, problems: list[str]) -> FeatureDecl | None:
    where = f"features[{i}]"
    if not isinstance(item, Mapping):
        problems.append(f"{where} must be a table")
        return None
    fid = item.get("id")
    if isinstance(fid, str):
        where = f"features[{i}] ({fid})"
    before = len(problems)
    problems.extend(f"{where}: unknown key {k!r}" for k in sorted(set(item) - _FEATURE_KEYS))
    if not isinstance(fid, str) or not NAME_RE.match(fid):
        problems.append(f"{where}: id must be a lower-case identifier, got {fid!r}")
    fam = item.get("family")
    if not isinstance(fam, str):
        problems.append(f"{where}: family must be a string, got {fam!r}")
    inp = item.get("input")
    if inp is not None and not isinstance(inp, str):
        problems.append(f"{where}: input must be a feature id, got {inp!r}")
    params = item.get("params", {})
    if not isinstance(params, Mapping):
        problems.append(f"{where}: params must be a table")
        params = {}
    output = item.get("output", True)
    if not isinstance(output, bool):
        problems.append(f"{where}: output must be true or false, got {output!r}")
    desc = item.get("description")
    if desc is not None and not isinstance(desc, str):
        problems.append(f"{where}: description must be a string")
    if len(problems) > before:
        return None
    assert isinstance(fid, str) and isinstance(fam, str) and isinstance(output, bool)
    return FeatureDecl(fid, fam, inp, dict(params), output, desc)


def _research(raw: object, problems: list[str]) -> tuple[ResearchDecl, ...]:
    if not isinstance(raw, list):
        problems.append("research must be an array of tables ([[research]])")
        return ()
    out = []
    for i, item in enumerate(raw):
        where = f"research[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} must be a table")
            continue
        problems.extend(
            f"{where}: unknown key {k!r}"
            for k in sorted(set(item) - {"id", "function", "depth", "description"})
        )
        rid, fn = item.get("id"), item.get("function")
        depth = item.get("depth", 1)
        desc = item.get("description")
        ok = True
        if not isinstance(rid, str) or not NAME_RE.match(rid):
            problems.append(f"{where}: id must be a lower-case identifier, got {rid!r}")
            ok = False
        if not isinstance(fn, str) or ":" not in fn:
            problems.append(f"{where}: function must be 'module:name', got {fn!r}")
            ok = False
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 64:
            problems.append(f"{where}: depth must be an int in [0, 64], got {depth!r}")
            ok = False
        if desc is not None and not isinstance(desc, str):
            problems.append(f"{where}: description must be a string")
            ok = False
        if ok:
            assert isinstance(rid, str) and isinstance(fn, str) and isinstance(depth, int)
            out.append(ResearchDecl(rid, fn, depth, desc))
    return tuple(out)


def load_declaration(path: str | Path) -> FeatureSetDecl:
    """Read a declaration from a TOML file.

    Raises
    ------
    FeatureSetDeclarationError
        The file cannot be read, is not TOML, or is not a declaration.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeatureSetDeclarationError(str(p), [f"cannot read: {exc}"]) from None
    return FeatureSetDecl.from_toml(text, str(p))
