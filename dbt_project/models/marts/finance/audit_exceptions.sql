-- Fund audit: one row per exception (each reconciliation gap among them), with its rule, a
-- reason in Chinese and English, the voucher line or ledger row it is about, and the amount. A
-- rule about a voucher line carries the line itself (voucher_no, line_no, posting_date, payee,
-- memo, approval_no) so an auditor can find it in the books; a relief rule carries the relief's
-- approval_no (never the recipient's 身份证号); the rest is null. The rules are stated in
-- config/figures.yaml (audit.exceptions): one CTE per rule below, each selecting the rule's name.
with postings as (
    select * from {{ ref('int_finance_postings') }}
),

lines as (
    -- each voucher line with its payee's registered name (an enterprise or a union; null if unknown)
    select
        postings.*,
        enterprises.uscc as enterprise_uscc,
        unions.union_code as known_union_code,
        unions.status as union_status,
        unions.revoked_on as union_revoked_on,
        coalesce(enterprises.enterprise_name, unions.union_name) as payee_name
    from postings
    left join {{ ref('stg_registry__enterprises') }} as enterprises on postings.payee_code = enterprises.uscc
    left join {{ ref('stg_registry__unions') }} as unions on postings.payee_code = unions.union_code
),

yearly as (
    select
        report_year,
        project_code,
        sum(net_yuan) as actual_yuan
    from postings
    group by report_year, project_code
),

budget_overrun as (
    select
        'budget_overrun' as rule,
        yearly.report_year,
        yearly.project_code,
        yearly.project_code || ':' || cast(yearly.report_year as varchar(4)) as reference,
        cast(null as date) as event_date,
        yearly.actual_yuan - coalesce(budget.budget_yuan, 0) as amount_yuan,
        '项目' || yearly.project_code || '全年支出超出预算' as reason_zh,
        'net postings on ' || yearly.project_code || ' exceed the year''s budget' as reason_en,
        {{ no_voucher_line() }}
        {{ dbt.cast('null', 'varchar') }} as approval_no,
        {{ dbt.cast('null', 'varchar') }} as source_file,
        cast(null as integer) as source_row
    from yearly
    left join {{ ref('stg_finance__budgets') }} as budget
        on yearly.report_year = budget.year and yearly.project_code = budget.project_code
    where yearly.actual_yuan > coalesce(budget.budget_yuan, 0)
),

unapproved_payment as (
    select
        'unapproved_payment' as rule,
        report_year,
        project_code,
        voucher_no || '/' || cast(line_no as varchar(10)) as reference,
        posted_on as event_date,
        net_yuan as amount_yuan,
        '凭证行缺少审批单号' as reason_zh,
        'voucher line without an approval number (审批单号)' as reason_en,
        {{ the_voucher_line() }}
        approval_no,
        _file_name as source_file,
        cast(_row_number as integer) as source_row
    from lines
    where project_code in ('XMBZ', 'LZJT', 'JZ') and approval_no is null
),

payee_status as (
    select * from lines
    where payee_code is not null
),

bad_payee as (
    select
        'unknown_or_revoked_payee' as rule,
        report_year,
        project_code,
        voucher_no || '/' || cast(line_no as varchar(10)) as reference,
        posted_on as event_date,
        net_yuan as amount_yuan,
        case
            when enterprise_uscc is null and known_union_code is null then '收款方编码不是已登记的企业或工会'
            else '收款方工会在记账日期前已撤销'
        end as reason_zh,
        case
            when enterprise_uscc is null and known_union_code is null
                then 'payee ' || payee_code || ' is no registered enterprise or union'
            else 'payee union ' || payee_code || ' was revoked before the posting date'
        end as reason_en,
        {{ the_voucher_line() }}
        approval_no,
        _file_name as source_file,
        cast(_row_number as integer) as source_row
    from payee_status
    where (enterprise_uscc is null and known_union_code is null)
        or (union_status = '撤销' and union_revoked_on < posted_on)
),

relief as (
    select
        *,
        lag(relief_date)
            over (partition by id_card_pseudonym order by relief_date, _file_name, _row_number)
            as previous_date
    from {{ ref('stg_welfare__reliefs') }}
),

duplicate_relief as (
    select
        'duplicate_relief' as rule,
        {{ year_of('relief_date') }} as report_year,
        'JZ' as project_code,
        _file_name || '#' || cast(_row_number as varchar(10)) as reference,
        relief_date as event_date,
        amount_yuan,
        '同一身份证号30天内重复救助（上次' || cast(previous_date as varchar(10)) || '）' as reason_zh,
        'the same resident ID was given relief within 30 days (before: '
        || cast(previous_date as varchar(10)) || ')' as reason_en,
        {{ no_voucher_line() }}
        approval_no,
        _file_name as source_file,
        cast(_row_number as integer) as source_row
    from relief
    where previous_date is not null and relief_date <= previous_date + 30
),

relief_without_voucher as (
    select
        'relief_without_voucher' as rule,
        {{ year_of('relief_date') }} as report_year,
        'JZ' as project_code,
        _file_name || '#' || cast(_row_number as varchar(10)) as reference,
        relief_date as event_date,
        amount_yuan,
        '救助审批单号' || approval_no || '没有对应的JZ凭证' as reason_zh,
        'relief approval ' || approval_no || ' is carried by no JZ voucher line' as reason_en,
        {{ no_voucher_line() }}
        approval_no,
        _file_name as source_file,
        cast(_row_number as integer) as source_row
    from relief
    where
        not exists (
            select 1 from postings
            where postings.project_code = 'JZ' and postings.approval_no = relief.approval_no
        )
),

reconciliation_gap as (
    select
        'reconciliation_gap' as rule,
        report_year,
        project_code,
        reconciliation_id as reference,
        cast(null as date) as event_date,
        difference_yuan as amount_yuan,
        '福利台账合计与项目' || project_code || '记账金额不符' as reason_zh,
        'welfare ledger total differs from the net postings on ' || project_code as reason_en,
        {{ no_voucher_line() }}
        {{ dbt.cast('null', 'varchar') }} as approval_no,
        {{ dbt.cast('null', 'varchar') }} as source_file,
        cast(null as integer) as source_row
    from {{ ref('audit_reconciliation') }}
    where is_gap
),

exceptions as (
    select * from budget_overrun
    union all
    select * from unapproved_payment
    union all
    select * from bad_payee
    union all
    select * from duplicate_relief
    union all
    select * from relief_without_voucher
    union all
    select * from reconciliation_gap
)

select
    rule || ':' || reference as exception_id,
    report_year,
    rule,
    project_code,
    reference,
    event_date,
    amount_yuan,
    reason_zh,
    reason_en,
    source_file,
    source_row,
    voucher_no,
    line_no,
    posting_date,
    payee_code,
    payee_name,
    memo,
    approval_no
from exceptions
