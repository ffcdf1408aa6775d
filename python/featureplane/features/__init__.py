"""Feature families of the Python reference, and the feature sets built from them.

One module per family (`l1`, `ofi`, `rolling`) and one per set (`lob_shared_v1`, which
registers itself on import; `featureplane` imports it, so the default set is always known).
User-defined sets are declared (`declare`: TOML or dataclasses), checked against the family
catalogue (`catalogue`) and compiled into a plan (`plan`) that the generic reference evaluator
(`families`) and the Rust plan kernel compute. The contract the families implement is
`featureplane.schema`.
"""

from featureplane.features import lob_shared_v1

__all__ = ["lob_shared_v1"]
