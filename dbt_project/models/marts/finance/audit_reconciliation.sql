-- Fund audit: each welfare programme's ledger total against the net postings on its finance
-- project, per year (figures.yaml audit.reconciliation). A non-zero difference is an exception.
with ledger as (
    select
        project_code,
        report_year,
        sum(amount_yuan) as ledger_total_yuan,
        count(*) as ledger_rows
    from {{ ref('int_welfare_ledger_lines') }}
    group by project_code, report_year
),

postings as (
    select
        project_code,
        report_year,
        sum(net_yuan) as postings_yuan,
        count(*) as posting_lines
    from {{ ref('int_finance_postings') }}
    where project_code in ('LJWW', 'XJYW', 'YQWZ', 'TJ', 'JZ')
    group by project_code, report_year
),

joined as (
    select
        coalesce(ledger.project_code, postings.project_code) as project_code,
        coalesce(ledger.report_year, postings.report_year) as report_year,
        coalesce(ledger.ledger_total_yuan, 0) as ledger_total_yuan,
        coalesce(ledger.ledger_rows, 0) as ledger_rows,
        coalesce(postings.postings_yuan, 0) as postings_yuan,
        coalesce(postings.posting_lines, 0) as posting_lines
    from ledger
    full outer join postings
        on ledger.project_code = postings.project_code and ledger.report_year = postings.report_year
)

select
    project_code || ':' || cast(report_year as varchar(4)) as reconciliation_id,
    report_year,
    project_code,
    ledger_total_yuan,
    ledger_rows,
    postings_yuan,
    posting_lines,
    postings_yuan - ledger_total_yuan as difference_yuan,
    postings_yuan <> ledger_total_yuan as is_gap
from joined
