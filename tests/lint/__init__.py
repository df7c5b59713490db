"""Linters run over the project's sources (the Python, the dbt SQL, the docs)."""
