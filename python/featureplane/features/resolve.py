"""The feature set an option names (`--feature-set FILE|ID`, `feature_set=` arguments).

Apart from the plan compiler on purpose: the usual answer, a registered id such as
`lob_shared_v1`, is a lookup, and loading the compiler and its catalogue costs a command
about 10 ms before its first byte of work. Only a declaration (a file or a `FeatureSetDecl`)
loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from featureplane.schema import FeatureSet, get_feature_set, registered_feature_sets

if TYPE_CHECKING:
    from featureplane.features.declare import FeatureSetDecl


def resolve_feature_set(arg: str | Path | FeatureSet | FeatureSetDecl) -> FeatureSet:
    """The feature set an option names: a `FeatureSet`, a declaration, a TOML file, or the id
    of a registered set (`--feature-set FILE|ID`).

    Raises
    ------
    FeatureSetDeclarationError
        A file that cannot be read or does not compile.
    SchemaMismatchError
        An id that no registered set has (and no such file exists).
    """
    if isinstance(arg, FeatureSet):
        return arg
    if isinstance(arg, str) and arg in registered_feature_sets():
        return get_feature_set(arg)
    from featureplane.features.declare import FeatureSetDecl, load_declaration
    from featureplane.features.plan import compile_set

    if isinstance(arg, FeatureSetDecl):
        return compile_set(arg)
    path = Path(str(arg))
    if isinstance(arg, Path) or path.suffix == ".toml" or path.exists():
        return compile_set(load_declaration(path), str(path))
    return get_feature_set(str(arg))
