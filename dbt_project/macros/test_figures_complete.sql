{#- Every report year carries every figure of the catalogue (42 in figures.yaml v1). -#}
{% test figures_complete(model) %}
select report_year, count(distinct figure_id) as figures
from {{ model }}
group by report_year
having count(distinct figure_id) <> (select count(*) from {{ ref('figure_catalogue') }})
{% endtest %}
