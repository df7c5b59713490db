{#- The calendar year of a date or timestamp, as an integer, on DuckDB and PostgreSQL. -#}
{% macro year_of(expr) -%}
    cast(extract(year from {{ expr }}) as integer)
{%- endmacro %}
