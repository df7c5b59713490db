{#- The voucher-line columns of marts.audit_exceptions, null: for a rule that is about a project's
    year, a ledger row or a reconciliation rather than one voucher line. -#}
-- LT02: both macros' columns are indented as they land in audit_exceptions' selects (the first line's
-- indentation is stripped by the macro tag's whitespace control).
-- noqa: disable=LT02
{% macro no_voucher_line() -%}
        {{ dbt.cast('null', 'varchar') }} as voucher_no,
        cast(null as integer) as line_no,
        cast(null as date) as posting_date,
        {{ dbt.cast('null', 'varchar') }} as payee_code,
        {{ dbt.cast('null', 'varchar') }} as payee_name,
        {{ dbt.cast('null', 'varchar') }} as memo,
{%- endmacro %}

{#- The same columns for a rule about one voucher line (`lines`: staged voucher lines with their payee). -#}
{% macro the_voucher_line() -%}
        voucher_no,
        cast(line_no as integer) as line_no,
        posted_on as posting_date,
        payee_code,
        payee_name,
        summary as memo,
{%- endmacro %}
