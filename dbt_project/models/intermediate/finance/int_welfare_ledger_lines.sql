-- Every welfare ledger row that money was paid for, with the finance project that must carry
-- it (figures.yaml audit.reconciliation): 慰问 by program -> LJWW / XJYW / YQWZ,
-- 体检 -> TJ, 救助 -> JZ. Only the newest workbook of a station and month counts.
with condolence as (
    select
        case
            when program in ('两节慰问', '外来建设者慰问', '特殊慰问') then 'LJWW'
            when program = '新就业形态慰问' then 'XJYW'
            when program = '疫情防控慰问' then 'YQWZ'
        end as project_code,
        'condolence' as ledger,
        visit_date as ledger_date,
        amount_yuan,
        _file_name,
        _row_number
    from {{ ref('stg_welfare__condolences') }}
),

health_checks as (
    select
        'TJ' as project_code,
        'health_checks' as ledger,
        check_date as ledger_date,
        fee_yuan as amount_yuan,
        _file_name,
        _row_number
    from {{ ref('stg_welfare__health_checks') }}
),

relief as (
    select
        'JZ' as project_code,
        'relief' as ledger,
        relief_date as ledger_date,
        amount_yuan,
        _file_name,
        _row_number
    from {{ ref('stg_welfare__reliefs') }}
),

lines as (
    select * from condolence
    union all
    select * from health_checks
    union all
    select * from relief
)

select
    project_code,
    ledger,
    ledger_date,
    {{ year_of('ledger_date') }} as report_year,
    amount_yuan,
    _file_name,
    _row_number
from lines
