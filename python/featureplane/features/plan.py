"""Compiled plans: a checked declaration in the form every backend evaluates.

`compile_plan` checks a `FeatureSetDecl` against the catalogue and orders its nodes
topologically (declaration order where the inputs allow). The plan's canonical JSON text
(sorted keys, no whitespace, floats as Python `repr`) is what the Rust kernel receives and
what the schema hash of a declared set covers::

    {"depth":5,"id":"lob_shared_v1","nodes":[{"family":"bid_px","id":"bid_px","input":null,
     "output":true,"params":{}}, ...],"version":1}

`input` is the index of an earlier node; `depth` the most levels per side any node reads. The
output features are the `output` nodes in plan order; a feature's frame index is its rank
among them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from featureplane.errors import (
    FeatureSetDeclarationError,
    ResearchOnlyError,
    SchemaMismatchError,
)
from featureplane.features.builtin import BUILTIN_DECLARATION
from featureplane.features.catalogue import CATALOGUE, NodeMeta, ParamValue
from featureplane.features.declare import FeatureDecl, FeatureSetDecl
from featureplane.features.research import ResearchDecl, load_function, research_json
from featureplane.schema import FeatureSet, FeatureSpec

__all__ = [
    "MAX_OUTPUTS",
    "FeaturePlan",
    "PlanNode",
    "compile_plan",
    "compile_set",
    "kernel_feature_set",
    "plan_of",
    "refuse_research_only",
    "research_of",
]

MAX_OUTPUTS = 64
"""Output features a frame can carry: `changed_mask` and `warmup_ready_mask` are u64."""


@dataclass(frozen=True)
class PlanNode:
    """One node of a plan; `input` is the index of an earlier node."""

    id: str
    family: str
    input: int | None
    params: Mapping[str, ParamValue]
    output: bool
    meta: NodeMeta
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "id": self.id,
            "input": self.input,
            "output": self.output,
            "params": dict(sorted(self.params.items())),
        }


@dataclass(frozen=True)
class FeaturePlan:
    """A compiled feature set: nodes in evaluation order."""

    id: str
    version: int
    nodes: tuple[PlanNode, ...]

    @property
    def depth(self) -> int:
        """The most levels per side any node reads (0 for a trades-only set)."""
        return max((n.meta.depth for n in self.nodes), default=0)

    @property
    def outputs(self) -> tuple[int, ...]:
        """Plan indices of the output nodes, in frame order."""
        return tuple(i for i, n in enumerate(self.nodes) if n.output)

    def to_json(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "id": self.id,
            "nodes": [n.to_json() for n in self.nodes],
            "version": self.version,
        }

    def canonical_json(self) -> str:
        """The canonical text: sorted keys, no whitespace, floats as Python `repr`."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def plan_hash(self) -> str:
        """sha256 of the canonical text, as hex."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def feature_specs(self) -> tuple[FeatureSpec, ...]:
        """The output nodes' metadata, in frame order."""
        specs = []
        for rank, i in enumerate(self.outputs):
            n = self.nodes[i]
            m = n.meta
            specs.append(
                FeatureSpec(
                    rank,
                    n.id,
                    m.dtype,
                    m.scale,
                    m.unit,
                    m.warmup,
                    m.source_kind,  # type: ignore[arg-type]
                    m.flags,
                    n.description,
                )
            )
        return tuple(specs)

    def feature_set(self) -> FeatureSet:
        """The `FeatureSet` of this plan; the built-in plan gives the built-in set itself.

        The built-in `lob_shared_v1` keeps the schema hash it was published with (frames,
        files and rings in use carry it), so a plan equal to its plan is that set; every
        other plan's set hashes its canonical text (`FeatureSet.plan`).
        """
        text = self.canonical_json()
        if text == builtin_plan_text():
            return builtin_set()
        return FeatureSet(self.id, self.version, self.feature_specs(), plan=text)

    # ----- parsing ------------------------------------------------------------------------

    def to_declaration(self) -> FeatureSetDecl:
        """A declaration that compiles back to this plan (descriptions kept)."""
        feats = []
        for n in self.nodes:
            fam = CATALOGUE[n.family]
            inp = None if n.input is None else self.nodes[n.input].id
            default = fam.describe(n.params, inp)
            desc = None if n.description == default else n.description
            feats.append(FeatureDecl(n.id, n.family, inp, dict(n.params), n.output, desc))
        return FeatureSetDecl(self.id, self.version, tuple(feats))

    @classmethod
    def from_json(cls, text: str, source: str = "<plan>") -> FeaturePlan:
        """A plan from its canonical text (as metadata carries it), checked again.

        Raises
        ------
        FeatureSetDeclarationError
            The text is not a plan, or its plan does not compile.
        """
        try:
            obj = json.loads(text)
            nodes = obj["nodes"]
            feats = tuple(
                FeatureDecl(
                    n["id"],
                    n["family"],
                    None if n["input"] is None else nodes[n["input"]]["id"],
                    n["params"],
                    n["output"],
                )
                for n in nodes
            )
            decl = FeatureSetDecl(obj["id"], obj["version"], feats)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise FeatureSetDeclarationError(source, [f"not a plan: {exc!r}"]) from None
        plan = compile_plan(decl, source)
        if plan.canonical_json() != text:
            raise SchemaMismatchError(f"{source}: the plan text is not in canonical form")
        return plan


def _check_node(
    feat: FeatureDecl, by_id: Mapping[str, FeatureDecl], problems: list[str]
) -> Mapping[str, ParamValue] | None:
    """The node's parameters normalised (ints given for floats become floats), or None."""
    where = f"feature {feat.id!r}"
    fam = CATALOGUE.get(feat.family)
    if fam is None:
        problems.append(f"{where}: unknown family {feat.family!r}; known: {sorted(CATALOGUE)}")
        return None
    before = len(problems)
    params: dict[str, ParamValue] = {}
    known = sorted(fam.params) or "none"
    problems.extend(
        f"{where}: unknown parameter {name!r} of {fam.name} (parameters: {known})"
        for name in sorted(set(feat.params) - set(fam.params))
    )
    for name, spec in fam.params.items():
        if name not in feat.params:
            problems.append(f"{where}: missing parameter {name!r} of {fam.name}")
            continue
        value = feat.params[name]
        why = spec.check(name, value)
        if why is not None:
            problems.append(f"{where}: {why}")
        else:
            params[name] = float(value) if spec.kind is float else int(value)
    if fam.trigger == "input" or fam.input_family is not None:
        if feat.input is None:
            problems.append(f"{where}: family {fam.name} needs an input feature")
        elif feat.input not in by_id:
            problems.append(f"{where}: unknown input {feat.input!r}")
    elif feat.input is not None:
        problems.append(f"{where}: family {fam.name} takes no input (got {feat.input!r})")
    return params if len(problems) == before else None


def _order(decl: FeatureSetDecl, problems: list[str]) -> list[int]:
    """Declaration indices in a topological order, declaration order where possible."""
    index = {f.id: i for i, f in enumerate(decl.features)}
    placed: list[int] = []
    done: set[int] = set()
    pending = list(range(len(decl.features)))
    while pending:
        for k, i in enumerate(pending):
            inp = decl.features[i].input
            if inp is None or index[inp] in done:
                placed.append(i)
                done.add(i)
                del pending[k]
                break
        else:
            ids = [decl.features[i].id for i in pending]
            problems.append(f"the inputs of {ids} form a cycle")
            return placed
    return placed


def compile_plan(decl: FeatureSetDecl, source: str | None = None) -> FeaturePlan:
    """Check a declaration against the catalogue and compile its plan.

    Raises
    ------
    FeatureSetDeclarationError
        Every problem at once: unknown family, unknown/missing/ill-typed/out-of-range
        parameter, unknown input, input of the wrong kind, cycle, duplicate id, empty set,
        more output features than a frame carries.
    """
    where = source or f"feature set {decl.id!r}"
    problems: list[str] = []
    if not decl.features:
        raise FeatureSetDeclarationError(where, ["the set declares no features"])
    by_id: dict[str, FeatureDecl] = {}
    for f in decl.features:
        if f.id in by_id:
            problems.append(f"duplicate feature id {f.id!r}")
        by_id[f.id] = f
    params = [_check_node(f, by_id, problems) for f in decl.features]
    n_out = sum(f.output for f in decl.features)
    if n_out == 0:
        problems.append("no output feature (every feature has output = false)")
    if n_out > MAX_OUTPUTS:
        problems.append(f"{n_out} output features: a frame carries at most {MAX_OUTPUTS}")
    if problems:
        raise FeatureSetDeclarationError(where, problems)
    order = _order(decl, problems)
    if problems:
        raise FeatureSetDeclarationError(where, problems)

    position = {decl.features[i].id: k for k, i in enumerate(order)}
    nodes: list[PlanNode] = []
    for i in order:
        f = decl.features[i]
        fam = CATALOGUE[f.family]
        p = params[i]
        assert p is not None
        inp = None if f.input is None else position[f.input]
        inp_node = None if inp is None else nodes[inp]
        if inp_node is not None and not _input_fits(f, inp_node, nodes, problems):
            continue
        meta = fam.meta(p, None if inp_node is None else inp_node.meta)
        desc = f.description if f.description is not None else fam.describe(p, f.input)
        nodes.append(PlanNode(f.id, f.family, inp, p, f.output, meta, desc))
    if problems:
        raise FeatureSetDeclarationError(where, problems)
    return FeaturePlan(decl.id, decl.version, tuple(nodes))


def _input_fits(f: FeatureDecl, inp: PlanNode, nodes: list[PlanNode], problems: list[str]) -> bool:
    fam = CATALOGUE[f.family]
    where = f"feature {f.id!r}"
    if fam.inputs and inp.meta.dtype not in fam.inputs:
        problems.append(
            f"{where}: {fam.name} takes an input of dtype {' or '.join(fam.inputs)}, "
            f"{inp.id!r} is {inp.meta.dtype}"
        )
        return False
    if fam.input_units and inp.meta.unit not in fam.input_units:
        problems.append(
            f"{where}: {fam.name} takes a {' or '.join(fam.input_units)} input, "
            f"{inp.id!r} is in {inp.meta.unit}"
        )
        return False
    if fam.input_family is not None and inp.family != fam.input_family:
        problems.append(f"{where}: {fam.name} takes an {fam.input_family} node, {inp.id!r} is "
                        f"{inp.family}")  # fmt: skip
        return False
    if f.family == "book_regime" and (inp.input is None or nodes[inp.input].family != "spread"):
        problems.append(f"{where}: book_regime takes an EMA of a spread node, {inp.id!r} is not")
        return False
    return True


def compile_set(decl: FeatureSetDecl, source: str | None = None) -> FeatureSet:
    """The `FeatureSet` of a declaration: its plan's outputs, then its research-only features.

    Raises
    ------
    FeatureSetDeclarationError
        What `compile_plan` raises, and for research features: an id taken by a plan node or
        another research feature, a function that cannot be imported, more than 64 outputs.
    """
    plan = compile_plan(decl, source)
    if not decl.research:
        return plan.feature_set()
    where = source or f"feature set {decl.id!r}"
    problems: list[str] = []
    taken = {n.id for n in plan.nodes}
    for r in decl.research:
        if r.id in taken:
            problems.append(f"research feature {r.id!r}: the id is taken")
        taken.add(r.id)
        try:
            load_function(r.function)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            problems.append(f"research feature {r.id!r}: cannot load {r.function}: {exc}")
    n_out = len(plan.outputs) + len(decl.research)
    if n_out > MAX_OUTPUTS:
        problems.append(f"{n_out} output features: a frame carries at most {MAX_OUTPUTS}")
    if problems:
        raise FeatureSetDeclarationError(where, problems)
    return _with_research(plan, decl.research)


def _with_research(plan: FeaturePlan, research: tuple[ResearchDecl, ...]) -> FeatureSet:
    specs = plan.feature_specs()
    extra = tuple(r.spec(len(specs) + i) for i, r in enumerate(research))
    return FeatureSet(
        plan.id, plan.version, specs + extra, plan.canonical_json(), research_json(research)
    )


def research_of(fs: FeatureSet) -> tuple[ResearchDecl, ...]:
    """The research-only features of a set, in frame order (none for most sets)."""
    if fs.research is None:
        return ()
    items = json.loads(fs.research)
    by_name = {f.name: f for f in fs.features}
    return tuple(
        ResearchDecl(r["id"], r["function"], int(r["depth"]), by_name[r["id"]].description)
        for r in items
    )


def refuse_research_only(fs: FeatureSet) -> None:
    """The live runtime's gate (design section 4's placement policy): a set holding
    research-only features does not run live.

    Raises
    ------
    ResearchOnlyError
        Naming the features and how to promote them.
    """
    if fs.research_only:
        raise ResearchOnlyError(
            f"feature set {fs.feature_set_id!r} holds research-only features "
            f"{list(fs.research_only)}: they run in research replay and backtests only; promote "
            "each to a catalogue family with a Rust kernel (docs/features/adding-a-feature.md) "
            "or drop its [[research]] table to run live"
        )


def kernel_feature_set(fs: FeatureSet) -> FeatureSet:
    """The part of a set the kernels compute: the set itself, or without its research-only
    features (the built-in set when the plan is the built-in plan)."""
    if fs.research is None:
        return fs
    assert fs.plan is not None
    return FeaturePlan.from_json(fs.plan, f"plan of {fs.feature_set_id}").feature_set()


def derived_feature_set(plan_text: str, research: str | None, source: str) -> FeatureSet:
    """The set a plan text (and research text) compiles to: what carried metadata must be."""
    plan = FeaturePlan.from_json(plan_text, source)
    if research is None:
        return plan.feature_set()
    try:
        decls = tuple(
            ResearchDecl(r["id"], r["function"], int(r["depth"])) for r in json.loads(research)
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise FeatureSetDeclarationError(source, [f"not a research list: {exc!r}"]) from None
    return _with_research(plan, decls)


def feature_set_from_json(obj: dict[str, Any]) -> FeatureSet:
    """`FeatureSet.from_json`, and for a declared set the check that its metadata follows from
    its plan: the plan decides the metadata, and metadata that does not follow is refused.

    Raises
    ------
    SchemaMismatchError
        The stored hash does not match, or the metadata does not follow from the plan.
    """
    fs = FeatureSet.from_json(obj)
    if fs.plan is not None:
        derived = derived_feature_set(fs.plan, fs.research, f"plan of {fs.feature_set_id}")
        if (derived.feature_set_id, derived.feature_schema_version) != (
            fs.feature_set_id,
            fs.feature_schema_version,
        ) or [_shape(f) for f in derived.features] != [_shape(f) for f in fs.features]:
            raise SchemaMismatchError(
                f"the metadata of {fs.feature_set_id} does not follow from its plan"
            )
    return fs


def _shape(f: FeatureSpec) -> tuple[object, ...]:
    """A spec without its description (a declaration may word that freely)."""
    return (f.feature_id, f.name, f.dtype, f.scale, f.unit, f.warmup_min_events, f.flags)


def plan_of(fs: FeatureSet) -> FeaturePlan:
    """The plan a feature set computes: its own, or the built-in plan for `lob_shared_v1`.

    Raises
    ------
    SchemaMismatchError
        A set that neither carries a plan nor is the built-in set.
    """
    if fs.plan is not None:
        return FeaturePlan.from_json(fs.plan, f"plan of {fs.feature_set_id}")
    if fs.schema_hash == builtin_set().schema_hash:
        return builtin_plan()
    raise SchemaMismatchError(
        f"feature set {fs.feature_set_id!r} carries no plan: declare it "
        "(featureplane.features.declare) to compute it"
    )


@cache
def builtin_plan() -> FeaturePlan:
    """The compiled plan of the built-in declaration (`features.builtin`)."""
    return compile_plan(FeatureSetDecl.from_dict(BUILTIN_DECLARATION, "lob_shared_v1 (built-in)"))


@cache
def builtin_plan_text() -> str:
    """The canonical text of the built-in plan."""
    text: str = builtin_plan().canonical_json()
    return text


def builtin_set() -> FeatureSet:
    """The registered built-in set (`featureplane.features.lob_shared_v1.LOB_SHARED_V1`)."""
    from featureplane.features.lob_shared_v1 import LOB_SHARED_V1

    return LOB_SHARED_V1
