-- Drill-down: every source row behind every figure and year, with the model it comes from and
-- its reference there (case number, voucher line, workbook#row, …), the key it is counted by
-- for distinct counts, the amount it adds for sums and the date it counts on (event_on; null
-- where the figure has none: status at year end, 年度). Rows that are not counted in a figure
-- (another year, another category, quarantined) are not here.
select
    figure_id || ':' || cast(report_year as varchar(8)) || ':' || source_model || ':' || source_ref as figure_row_id,
    figure_id || ':' || cast(report_year as varchar(8)) as figure_year_id,
    figure_id,
    report_year,
    source_model,
    source_ref,
    count_key,
    amount,
    measure,
    event_on
from {{ ref('int_figure_rows') }}
