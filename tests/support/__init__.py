"""Helpers shared by the test suites: real-data paths, hypothesis strategies, sessions, the
hftbacktest synthetic feed, and `require_rust` (the one CI rule for the compiled extension)."""
