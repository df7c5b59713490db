"""Roles of a shared PostgreSQL warehouse, and the grants the pipeline applies after each build.

- ``unionwh_loader``: owns the load; writes raw, ops, staging, intermediate and marts.
- ``unionwh_analyst``: reads the marts, except the fund-audit marts (``audit_*``).
- ``unionwh_auditor``: reads every mart (the audit marts included) and ops.quarantine, but not
  its ``original_values`` column, which holds the rejected rows as delivered.

None but the loader can read the raw schema (the restricted personal-data layer) or the
staging and intermediate views built on it. The three are group roles (NOLOGIN): a DBA
grants them to people's login roles. On DuckDB there are no roles; this module does nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

LOADER, ANALYST, AUDITOR = "unionwh_loader", "unionwh_analyst", "unionwh_auditor"
ROLES = (LOADER, ANALYST, AUDITOR)
LOADED_SCHEMAS = ("raw", "ops", "staging", "intermediate", "marts")
QUARANTINE_PUBLIC_COLUMNS = (
    "load_id",
    "source",
    "table_name",
    "file_name",
    "file_sha256",
    "delivery_date",
    "row_number",
    "row_key",
    "rules",
    "reasons",
    "quarantined_at",
)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def create_roles(engine: Engine) -> list[str]:
    """Create the group roles that do not exist yet; returns those it found missing.

    Roles belong to the whole server, not to one database, so two warehouses on one server set up
    at the same moment may both find a role missing: the CREATE that loses the race (duplicate_object,
    or unique_violation while the other's was in flight) is let go, and both go on."""
    if not is_postgres(engine):
        return []
    created = []
    with engine.begin() as conn:
        existing = set(
            conn.execute(sa.text("SELECT rolname FROM pg_roles WHERE rolname LIKE 'unionwh_%'")).scalars()
        )
        for role in ROLES:
            if role not in existing:
                conn.exec_driver_sql(
                    f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
                    "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                )
                created.append(role)
    return created


def _tables(conn: Connection, schema: str) -> list[str]:
    return list(
        conn.execute(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s ORDER BY 1"),
            {"s": schema},
        ).scalars()
    )


def apply_grants(engine: Engine) -> None:
    """Grant each role exactly its lane on what exists now (run after every build)."""
    if not is_postgres(engine):
        return
    create_roles(engine)
    with engine.begin() as conn:
        schemas = set(conn.execute(sa.text("SELECT schema_name FROM information_schema.schemata")).scalars())
        for schema in LOADED_SCHEMAS:
            if schema not in schemas:
                continue
            conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            conn.exec_driver_sql(f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {LOADER}")
            conn.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {LOADER}")
            conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {ANALYST}, {AUDITOR}")
        if "marts" in schemas:
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA marts TO {ANALYST}, {AUDITOR}")
            for table in _tables(conn, "marts"):
                readers = AUDITOR if table.startswith("audit_") else f"{ANALYST}, {AUDITOR}"
                conn.exec_driver_sql(f'GRANT SELECT ON marts."{table}" TO {readers}')
        if "ops" in schemas and "quarantine" in _tables(conn, "ops"):
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA ops TO {AUDITOR}")
            cols = ", ".join(QUARANTINE_PUBLIC_COLUMNS)
            conn.exec_driver_sql(f"GRANT SELECT ({cols}) ON ops.quarantine TO {AUDITOR}")
