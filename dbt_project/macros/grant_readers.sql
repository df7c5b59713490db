{#-
  PostgreSQL: the reader roles' SELECT on a mart, granted by the post-hook in the transaction that
  builds it (dbt_project.yml), so the new table is readable the moment it replaces the old one: an
  analyst querying during a build gets the old table or the new one, never "permission denied"
  (tests/warehouse/test_snapshot.py). The lanes are those of flows/warehouse/roles.py, which
  grants them again after every build (and creates the roles before it): the fund-audit marts
  (audit_*) to the auditor only, every other mart to the analyst and the auditor. DuckDB has no
  roles: nothing.
-#}
{% macro grant_readers(relation) -%}
    {%- if target.type == 'postgres' -%}
        {%- set auditor_only = relation.identifier.startswith('audit_') -%}
        grant select on {{ relation }} to {{ 'unionwh_auditor' if auditor_only else 'unionwh_analyst, unionwh_auditor' }}
    {%- endif -%}
{%- endmacro %}
