"""Type stubs of the Rust extension `featureplane._core`."""

__version__: str
BUILD_PROFILE: str
