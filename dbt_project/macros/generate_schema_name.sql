{#- Models land in the schema their folder names (staging, intermediate, marts) as-is,
    not prefixed with the target schema: analysts query marts.fig_annual_figures. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
