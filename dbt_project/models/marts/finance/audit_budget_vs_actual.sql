-- Fund audit: budget against actual net postings per project and month of a year, with the
-- year-to-date total. Every month 1-12 is listed for every project that has a budget or a
-- posting in the year; a project posted without any budget has a budget of null (overrun).
with months as (
    select m.month_no
    from (values (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12)) as m (month_no)
),

budget as (
    select
        year as report_year,
        project_code,
        project_name,
        budget_yuan
    from {{ ref('stg_finance__budgets') }}
),

monthly as (
    select
        report_year,
        report_month,
        project_code,
        sum(net_yuan) as actual_yuan
    from {{ ref('int_finance_postings') }}
    group by report_year, report_month, project_code
),

project_years as (
    select
        report_year,
        project_code
    from budget
    union
    select
        report_year,
        project_code
    from monthly
),

grid as (
    select
        project_years.report_year,
        project_years.project_code,
        months.month_no as report_month,
        budget.project_name,
        budget.budget_yuan,
        coalesce(monthly.actual_yuan, 0) as actual_yuan
    from project_years
    cross join months
    left join budget
        on project_years.report_year = budget.report_year and project_years.project_code = budget.project_code
    left join monthly
        on project_years.report_year = monthly.report_year
        and project_years.project_code = monthly.project_code
        and months.month_no = monthly.report_month
),

to_date as (
    select
        *,
        sum(actual_yuan) over (
            partition by report_year, project_code
            order by report_month rows between unbounded preceding and current row
        ) as actual_to_date_yuan
    from grid
)

select
    project_code || ':' || cast(report_year as varchar(4)) || '-' || lpad(cast(report_month as varchar(2)), 2, '0')
        as budget_month_id,
    report_year,
    report_month,
    project_code,
    project_name,
    budget_yuan,
    actual_yuan,
    actual_to_date_yuan,
    budget_yuan - actual_to_date_yuan as remaining_yuan,
    case
        when budget_yuan is null then actual_to_date_yuan > 0
        else actual_to_date_yuan > budget_yuan
    end as is_over_budget
from to_date
