-- funds.*, row by row: net postings (debit - credit) of the year; a reversed line nets to zero.
-- An enterprise counts as paid when its lines of the year net above zero. One row per (figure,
-- year, voucher line); see int_figures for the aggregation.
with lines as (
    select
        voucher_no || '/' || cast(line_no as varchar(10)) as source_ref,
        project_code,
        payee_code,
        posted_on,
        report_year,
        net_yuan,
        sum(net_yuan) over (partition by project_code, report_year, payee_code) as payee_net_yuan
    from {{ ref('int_finance_postings') }}
    where project_code in ('XMBZ', 'LZJT')
)

select
    {{ figure_row('figures.figure_id', 'lines.report_year', 'int_finance_postings', 'lines.source_ref',
                  count_key="case when figures.measure = 'distinct' then lines.payee_code end",
                  amount="case when figures.measure = 'sum' then lines.net_yuan end", measure='figures.measure',
                  event_on='lines.posted_on',
                  uscc="case when lines.payee_code not like 'GH%' then lines.payee_code end",
                  union_code="case when lines.payee_code like 'GH%' then lines.payee_code end",
                  category='lines.project_code') }}
from lines
inner join (
    values
    ('funds.project_subsidy_yuan', 'XMBZ', 'sum'),
    ('funds.project_subsidy_enterprises', 'XMBZ', 'distinct'),
    ('funds.cadre_allowance_yuan', 'LZJT', 'sum'),
    ('funds.cadre_allowance_enterprises', 'LZJT', 'distinct')
) as figures (figure_id, project_code, measure)
    on lines.project_code = figures.project_code
    and (figures.measure = 'sum' or (lines.payee_code is not null and lines.payee_net_yuan > 0))
