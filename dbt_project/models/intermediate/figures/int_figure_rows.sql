-- Every source row behind every figure and year: the union of int_figure_rows_<domain>.
{% for domain in ['organisation', 'rights', 'welfare', 'funds', 'training', 'events'] -%}
select * from {{ ref('int_figure_rows_' ~ domain) }}
{% if not loop.last %}union all
{% endif %}
{%- endfor %}
