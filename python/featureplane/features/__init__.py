"""Feature families of the Python reference and the feature-set registry."""

from featureplane.features.registry import (
    DEFAULT_FEATURE_SET_ID,
    FeatureSet,
    FeatureSpec,
    get_feature_set,
    register_feature_set,
    registered_feature_sets,
)

__all__ = [
    "DEFAULT_FEATURE_SET_ID",
    "FeatureSet",
    "FeatureSpec",
    "get_feature_set",
    "register_feature_set",
    "registered_feature_sets",
]
