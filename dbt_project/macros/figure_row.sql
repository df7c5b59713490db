{#- The columns of a figure's source row (int_figure_rows_<domain>): which figure and year it
    counts for, where it comes from, and what it contributes: a row (measure 'rows'), a value
    counted once however often it appears ('distinct', count_key) or an amount ('sum'), and the
    date the row counts on (event_on: received, posted, held…; null where the figure has none,
    such as a status at year end or a 年度). What an analyst slices it by, where the source has
    it: the enterprise (uscc) and the union (union_code) it concerns, and the source's own
    category (case type, program, project, level…). -#}
{% macro figure_row(figure_id, report_year, source_model, source_ref, count_key='null', amount='null',
                    measure="'rows'", event_on='null', uscc='null', union_code='null', category='null') -%}
    {{ figure_id }} as figure_id,
    {{ report_year }} as report_year,
    '{{ source_model }}' as source_model,
    {{ source_ref }} as source_ref,
    {{ dbt.cast(count_key, 'varchar') }} as count_key,
    cast({{ amount }} as decimal(18, 2)) as amount,
    {{ measure }} as measure,
    cast({{ event_on }} as date) as event_on,
    {{ dbt.cast(uscc, 'varchar') }} as uscc,
    {{ dbt.cast(union_code, 'varchar') }} as union_code,
    {{ dbt.cast(category, 'varchar') }} as category
{%- endmacro %}
