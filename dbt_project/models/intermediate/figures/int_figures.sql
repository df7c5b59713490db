-- Every figure's value per year, from its source rows (int_figure_rows): each
-- figure counts its rows, counts the distinct count_key values, or sums amount (measure), and
-- keeps how many source rows are behind it and which models they come from.
select
    figure_id,
    report_year,
    case max(measure)
        when 'sum' then sum(amount)
        when 'distinct' then count(distinct count_key)
        else count(*)
    end as value,
    count(*) as source_rows,
    {{ string_agg_distinct('source_model', "', '") }} as models_read
from {{ ref('int_figure_rows') }}
group by figure_id, report_year
