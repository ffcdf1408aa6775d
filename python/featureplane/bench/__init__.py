"""Benchmarks that print side-by-side ratios and check their own output (never timed tests)."""
