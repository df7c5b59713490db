-- funds.*: net postings (debit - credit) of the year; a reversed line nets to zero.
with lines as (
    select
        project_code,
        payee_code,
        {{ year_of('posted_on') }} as report_year,
        debit_yuan - credit_yuan as net_yuan
    from {{ ref('stg_finance__vouchers') }}
    where project_code in ('XMBZ', 'LZJT')
),

by_payee as (
    select project_code, report_year, payee_code, sum(net_yuan) as net_yuan
    from lines
    where payee_code is not null
    group by project_code, report_year, payee_code
),

totals as (
    select project_code, report_year, sum(net_yuan) as net_yuan
    from lines
    group by project_code, report_year
),

payees as (
    select project_code, report_year, count(*) as paid_payees
    from by_payee
    where net_yuan > 0
    group by project_code, report_year
)

select 'funds.project_subsidy_enterprises' as figure_id, report_year, paid_payees as value
from payees where project_code = 'XMBZ'
union all
select 'funds.project_subsidy_yuan', report_year, net_yuan from totals where project_code = 'XMBZ'
union all
select 'funds.cadre_allowance_yuan', report_year, net_yuan from totals where project_code = 'LZJT'
union all
select 'funds.cadre_allowance_enterprises', report_year, paid_payees from payees where project_code = 'LZJT'
