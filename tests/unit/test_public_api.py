"""The public face of featureplane: what `import featureplane as fp` gives, that every exported
name resolves, that every import line of the README and the docs runs, and that every public
class, function, method and property has a docstring."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import featureplane as fp
from featureplane import errors

ROOT = Path(__file__).resolve().parents[2]

# The package faces: the modules users import names from. Each has an `__all__`.
FACES = (
    "featureplane",
    "featureplane.adapters.hftbacktest",
    "featureplane.book",
    "featureplane.engine",
    "featureplane.events",
    "featureplane.frames",
    "featureplane.instruments",
    "featureplane.replay",
    "featureplane.schema",
    "featureplane.sources",
    "featureplane.sources.binance",
    "featureplane.sources.databento",
    "featureplane.sources.hftbacktest",
    "featureplane.sources.lobster",
    "featureplane.sources.sim",
    "featureplane.sources.tardis",
    "featureplane.strategy",
    "featureplane.strategy.examples",
    "featureplane.checks.databento",
    "featureplane.checks.lobster",
)
# Faces without an `__all__`: every public name the module itself defines is exported.
MODULE_FACES = ("featureplane.errors",)
# Classes no face exports that users still hold: what `FeatureEngine.lob` gives, what
# `HftBacktestAdapter.session()` gives, and the feature feeds a backtest's context reads.
HANDED_OUT = (
    "featureplane.engine.config:BookView",
    "featureplane.adapters.hftbacktest.session:BacktestSession",
    "featureplane.adapters.hftbacktest.session:AccountState",
    "featureplane.adapters.hftbacktest.features:StreamingFeatures",
    "featureplane.adapters.hftbacktest.features:PrecomputedFeatures",
    "featureplane.adapters.hftbacktest.features:FeatureArrays",
    "featureplane.checks.parity:ParityReport",
)

# Imports a doc may show that need an extra (pyproject's optional dependencies).
OPTIONAL = frozenset(
    {"databento_dbn", "dask", "distributed", "hftbacktest", "matplotlib", "numba", "pandas"}
    | {"polars"}
)


# ----- import featureplane as fp ----------------------------------------------------------------


def test_common_path_by_name() -> None:
    from featureplane.engine.config import EngineConfig
    from featureplane.engine.facade import FeatureEngine
    from featureplane.frames.load import load_features
    from featureplane.instruments import InstrumentSpec, SymbolTable
    from featureplane.sources.binance.reader import read_binance
    from featureplane.sources.databento.reader import read_databento
    from featureplane.sources.hftbacktest.reader import read_hftbacktest_events
    from featureplane.sources.lobster.reader import read_lobster
    from featureplane.sources.registry import detect_format
    from featureplane.sources.tardis.reader import read_tardis

    assert fp.FeatureEngine is FeatureEngine
    assert fp.EngineConfig is EngineConfig
    assert fp.SymbolTable is SymbolTable
    assert fp.InstrumentSpec is InstrumentSpec
    assert fp.read_binance is read_binance
    assert fp.read_lobster is read_lobster
    assert fp.read_tardis is read_tardis
    assert fp.read_databento is read_databento
    assert fp.read_hftbacktest_events is read_hftbacktest_events
    assert fp.detect_format is detect_format
    assert fp.load_features is load_features


def test_errors_by_name() -> None:
    names = [
        "FeatureplaneError",
        "InvalidMessageError",
        "OffGridError",
        "UnknownSymbolError",
        "SchemaMismatchError",
        "InvalidStateError",
        "SourceFormatError",
        "SyncError",
        "BackendUnavailableError",
    ]
    for name in names:
        cls = getattr(fp, name)
        assert cls is getattr(errors, name), name
        assert issubclass(cls, fp.FeatureplaneError), name
        assert name in fp.__all__, name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = fp.no_such_name  # type: ignore[attr-defined]


# ----- every exported name resolves -------------------------------------------------------------


def _import_face(face: str) -> ModuleType | None:
    """The face, or None when it needs an optional package that is not installed."""
    try:
        return importlib.import_module(face)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL:
            return None
        raise


def _face(face: str) -> ModuleType:
    """The face, or skip the calling test when an optional package it needs is missing."""
    module = _import_face(face)
    if module is None:
        pytest.skip(f"{face} needs an optional package that is not installed here")
    return module


def _exports(face: str) -> list[str]:
    module = importlib.import_module(face)
    if face in MODULE_FACES:
        return [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_") and getattr(obj, "__module__", None) == face
        ]
    return list(module.__all__)


@pytest.mark.parametrize("face", FACES)
def test_face_exports_resolve(face: str) -> None:
    module = _face(face)
    names = module.__all__
    assert len(names) == len(set(names)), f"{face}.__all__ repeats a name"
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{face}.__all__ names that do not resolve: {missing}"


@pytest.mark.parametrize("face", FACES)
def test_face_exports_what_it_defines(face: str) -> None:
    """A public class or function a face module defines itself is in its `__all__`."""
    module = _face(face)
    left_out = [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == face
        and name not in module.__all__
    ]
    assert not left_out, f"{face} defines public names its __all__ leaves out: {left_out}"


@pytest.mark.parametrize("face", FACES + MODULE_FACES)
def test_face_exports_only_its_own(face: str) -> None:
    """A face exports featureplane's names, never a stdlib or typing helper it imports."""
    module = _face(face)
    foreign = [
        name
        for name in _exports(face)
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not obj.__module__.startswith("featureplane")
    ]
    assert not foreign, f"{face} exports names of other packages: {foreign}"


# ----- the import lines of the README and the docs -------------------------------------------


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _python_blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) of each ```python block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if fence.startswith("```"):
            lang = fence[3:].strip().lower()
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            if lang in ("python", "py"):
                yield i + 2, lines[i + 1 : end]
            i = end + 1
        else:
            i += 1


def _doc_imports() -> list[tuple[str, int, str]]:
    """(doc, line, statement) of every import statement in the docs' python blocks."""
    found = []
    for path in _doc_files():
        doc = str(path.relative_to(ROOT))
        for first, lines in _python_blocks(path.read_text(encoding="utf-8")):
            j = 0
            while j < len(lines):
                if re.match(r"(from\s+\S+\s+import\b|import\s+\S)", lines[j]):
                    statement = lines[j]
                    # A parenthesised import runs to its closing parenthesis.
                    while statement.count("(") > statement.count(")") and j + 1 < len(lines):
                        j += 1
                        statement += "\n" + lines[j]
                    found.append((doc, first + j - statement.count("\n"), statement))
                j += 1
    return found


DOC_IMPORTS = _doc_imports()


def test_docs_show_imports() -> None:
    # The parser must find the examples: the README and the docs show at least these.
    docs = {doc for doc, _, _ in DOC_IMPORTS}
    assert {"README.md", "docs/sources/binance.md", "docs/research-replay.md"} <= docs


@pytest.mark.parametrize(
    ("doc", "line", "statement"), DOC_IMPORTS, ids=[f"{d}:{n}" for d, n, _ in DOC_IMPORTS]
)
def test_doc_import_runs(doc: str, line: int, statement: str) -> None:
    try:
        tree = ast.parse(statement)
    except SyntaxError as exc:
        pytest.fail(f"{doc}:{line}: not a valid import: {statement!r} ({exc.msg})")
    node = tree.body[0]
    assert isinstance(node, ast.Import | ast.ImportFrom)
    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    for module in modules:
        top = module.split(".")[0]
        if top in OPTIONAL and importlib.util.find_spec(top) is None:
            pytest.skip(f"{doc}:{line} imports {top}, an optional package not installed here")
    try:
        exec(compile(tree, f"{doc}:{line}", "exec"), {})
    except ImportError as exc:
        pytest.fail(f"{doc}:{line}: {statement!r} fails: {exc}")


# ----- docstrings -----------------------------------------------------------------------------


def _has_doc(obj: object) -> bool:
    return bool((getattr(obj, "__doc__", None) or "").strip())


def _member_function(value: object) -> object | None:
    """The function behind a class attribute, or None when the attribute is not a callable
    member (a field, a constant, an enum member)."""
    if isinstance(value, property):
        return value.fget
    if isinstance(value, functools.cached_property):
        return value.func
    if isinstance(value, classmethod | staticmethod):
        return value.__func__
    if inspect.isfunction(value):
        return value
    return None


Checked = tuple[str, bool]
"""A public name the docstring check reached, and whether it has a docstring."""


def _public_members(cls: type, label: str, seen: set[tuple[int, str]]) -> Iterator[Checked]:
    # Members the class inherits from featureplane's own classes count too: a user reads them
    # on this class.
    for klass in inspect.getmro(cls):
        if not klass.__module__.startswith("featureplane"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or (id(klass), name) in seen:
                continue
            seen.add((id(klass), name))
            func = _member_function(value)
            if func is not None:
                yield f"{label}.{name}", _has_doc(func)


def _public_names() -> list[Checked]:
    """Every class and function the faces export (and those `HANDED_OUT`), with their public
    methods and properties; each object once, under the first name it is reached by."""
    reached: list[tuple[str, object]] = []
    for face in FACES + MODULE_FACES:
        module = _import_face(face)  # a face missing an optional package: skipped above
        if module is not None:
            reached += [(f"{face}.{n}", getattr(module, n)) for n in _exports(face)]
    for ref in HANDED_OUT:
        module_name, _, name = ref.partition(":")
        reached.append(
            (f"{module_name}.{name}", getattr(importlib.import_module(module_name), name))
        )
    checked: list[Checked] = []
    seen_objects: set[int] = set()
    seen_members: set[tuple[int, str]] = set()
    for label, obj in reached:
        if label.rpartition(".")[2].startswith("_"):
            continue
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen_objects:
            continue
        seen_objects.add(id(obj))
        checked.append((label, _has_doc(obj)))
        if inspect.isclass(obj):
            checked.extend(_public_members(obj, label, seen_members))
    return checked


def test_public_names_have_docstrings() -> None:
    missing = [label for label, documented in _public_names() if not documented]
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)


def test_docstring_check_reaches_members() -> None:
    # Methods, properties, class methods, protocol members, inherited and handed-out classes.
    labels = {label for label, _ in _public_names()}
    expected = {
        "featureplane.FeatureEngine.process_batch",
        "featureplane.FeatureEngine.counters",
        "featureplane.FeatureSet.names",
        "featureplane.SymbolTable.from_json",
        "featureplane.engine.Kernel.process",
        "featureplane.sources.BinanceStats.skipped_total",
        "featureplane.engine.config.BookView.top_n",
        "featureplane.adapters.hftbacktest.session.BacktestSession.submit_buy",
        "featureplane.errors.ChainReplayError",
    }
    assert expected <= labels, sorted(expected - labels)


def test_docstring_check_sees_every_member_kind() -> None:
    class Probe:
        @property
        def prop(self) -> int:
            return 1

        @functools.cached_property
        def cached(self) -> int:
            return 1

        @classmethod
        def build(cls) -> None:
            pass

        @staticmethod
        def make() -> None:
            pass

        def method(self) -> None:
            """Documented."""

        def _private(self) -> None:
            pass

    Probe.__module__ = "featureplane.probe"
    found = dict(_public_members(Probe, "Probe", set()))
    assert found == {
        "Probe.prop": False,
        "Probe.cached": False,
        "Probe.build": False,
        "Probe.make": False,
        "Probe.method": True,
    }
