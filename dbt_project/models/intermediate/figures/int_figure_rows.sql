-- Every source row behind every figure and year: the union of int_figure_rows_<domain>.
-- AM04: the columns are those of the figure_row macro, which the linter cannot see through ref().
-- noqa: disable=AM04
{% for domain in ['organisation', 'rights', 'welfare', 'funds', 'training', 'events'] -%}
    select * from {{ ref('int_figure_rows_' ~ domain) }}
    {% if not loop.last %}union all
    {% endif %}
{%- endfor %}
