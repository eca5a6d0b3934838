"""Benchmarks (not shipped; run from the repository root)."""
