-- One row per voucher line (latest delivery wins), with its year, month and net amount:
-- debit - credit, so a reversing credit line cancels the line it reverses.
select
    voucher_no,
    line_no,
    posted_on,
    {{ year_of('posted_on') }} as report_year,
    {{ month_of('posted_on') }} as report_month,
    account_code,
    account_name,
    summary,
    project_code,
    payee_code,
    approval_no,
    debit_yuan,
    credit_yuan,
    debit_yuan - credit_yuan as net_yuan,
    _file_name,
    _row_number
from {{ ref('stg_finance__vouchers') }}
