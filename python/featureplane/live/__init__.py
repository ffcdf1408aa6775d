"""The live runtime plane: venue feed -> LOBEngine -> FeatureEngine -> strategies -> risk ->
order adapter, on one event loop (docs/live.md)."""
