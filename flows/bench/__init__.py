"""Benchmarks: scripts that print measurements (never timed unit tests). See README "Benchmarks"."""
