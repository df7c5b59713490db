{#- SQL that differs between engines. DuckDB and PostgreSQL share the default__ forms (the SQL
    the models always had); spark__ forms are for dbt-spark (Spark SQL 3.4+/4.x). -#}

{#- dbt.cast on Spark: a bare ``varchar`` (no length) is not a Spark type; cast to ``string``.
    Overrides dbt's cast for this project on Spark only; it is also what the model contract check
    (get_empty_schema_sql) uses for the YAML data_type ``varchar``. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ 'string' if type | trim | lower == 'varchar' else type }})
{%- endmacro %}

{#- One row per day from start to end (inclusive), as ``series`` with a timestamp column day_ts. -#}
{% macro calendar_days(start_date, end_date) -%}
    {{ return(adapter.dispatch('calendar_days')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__calendar_days(start_date, end_date) -%}
    generate_series(cast('{{ start_date }}' as timestamp), cast('{{ end_date }}' as timestamp), interval '1 day')
            as series (day_ts)
{%- endmacro %}

{% macro spark__calendar_days(start_date, end_date) -%}
    (select explode(sequence(cast('{{ start_date }}' as timestamp), cast('{{ end_date }}' as timestamp),
                             interval 1 day)) as day_ts) as series
{%- endmacro %}

{#- ISO day of the week (Monday 1 … Sunday 7) of a date, as an integer. -#}
{% macro iso_weekday(expr) -%}
    {{ return(adapter.dispatch('iso_weekday')(expr)) }}
{%- endmacro %}

{% macro default__iso_weekday(expr) -%}
    cast(extract(isodow from {{ expr }}) as integer)
{%- endmacro %}

{% macro spark__iso_weekday(expr) -%}
    cast(extract(dow_iso from {{ expr }}) as integer)
{%- endmacro %}

{#- The distinct values of a text expression, sorted, joined by ``delimiter`` (an aggregate). -#}
{% macro string_agg_distinct(expr, delimiter) -%}
    {{ return(adapter.dispatch('string_agg_distinct')(expr, delimiter)) }}
{%- endmacro %}

{% macro default__string_agg_distinct(expr, delimiter) -%}
    string_agg(distinct {{ expr }}, {{ delimiter }} order by {{ expr }})
{%- endmacro %}

{#- Not listagg(distinct …) within group (order by …): Spark 4.x fails to plan it beside another
    distinct aggregate (count(distinct …)) in the same select (ClassCastException in
    RewriteDistinctAggregates). Like string_agg, null values are left out and no values give null. -#}
{% macro spark__string_agg_distinct(expr, delimiter) -%}
    case when count({{ expr }}) > 0 then array_join(array_sort(collect_set({{ expr }})), {{ delimiter }}) end
{%- endmacro %}
