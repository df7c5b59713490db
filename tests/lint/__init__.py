"""Linters run over the project's non-Python sources (the dbt SQL, the docs)."""
