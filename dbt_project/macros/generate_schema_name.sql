{#- Models land in the schema their folder names (staging, intermediate, marts) as-is,
    not prefixed with the target schema: analysts query marts.fig_annual_figures.
    A build "as known on" a date (--vars '{as_of: YYYY-MM-DD}') lands beside them, in
    schemas suffixed _asof_YYYYMMDD, and leaves the current ones alone. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set base = target.schema if custom_schema_name is none else custom_schema_name | trim -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of -%}{{ base }}_asof_{{ as_of | string | replace('-', '') }}{%- else -%}{{ base }}{%- endif -%}
{%- endmacro %}
