{#- The final select of a contracted model: every column the model's YAML declares, in that
    order, cast to its declared data_type, so the contract holds on DuckDB and PostgreSQL alike. -#}
{% macro contract_select(relation) -%}
    select
    {%- for name, col in model.columns.items() %}
        {{ dbt.cast(name, col.data_type) }} as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ relation }}
{%- endmacro %}
