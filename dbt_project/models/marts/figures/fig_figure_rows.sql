-- Drill-down: every source row behind every figure and year, with the model it comes from and
-- its reference there (case number, voucher line, workbook#row, …), the key it is counted by
-- for distinct counts and the amount it adds for sums. Rows that are not counted in a figure
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
    measure
from {{ ref('int_figure_rows') }}
