{#- The calendar month (1-12) of a date or timestamp, as an integer, on DuckDB and PostgreSQL. -#}
{% macro month_of(expr) -%}
    cast(extract(month from {{ expr }}) as integer)
{%- endmacro %}
