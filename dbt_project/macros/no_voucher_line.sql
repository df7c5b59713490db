{#- The voucher-line columns of marts.audit_exceptions, null: for a rule that is about a project's
    year, a ledger row or a reconciliation rather than one voucher line. -#}
{% macro no_voucher_line() -%}
        {{ dbt.cast('null', 'varchar') }} as voucher_no,
        cast(null as integer) as line_no,
        cast(null as date) as posting_date,
        {{ dbt.cast('null', 'varchar') }} as payee_code,
        {{ dbt.cast('null', 'varchar') }} as payee_name,
        {{ dbt.cast('null', 'varchar') }} as memo,
{%- endmacro %}
