"""Benchmarks: scripts that print measurements (never timed unit tests). See docs/performance.md."""
