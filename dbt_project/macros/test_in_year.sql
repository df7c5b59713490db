{#- Every value of a date column falls in the calendar year that ``year_column`` names. -#}
{% test in_year(model, column_name, year_column) %}
select {{ column_name }}, {{ year_column }}
from {{ model }}
where {{ year_of(column_name) }} <> {{ year_column }}
{% endtest %}
