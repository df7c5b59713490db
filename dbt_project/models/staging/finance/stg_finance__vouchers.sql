-- finance.vouchers: one row per key (voucher_no, line_no); latest delivery wins.
with source as (
    select * from {{ source('finance', 'finance__vouchers') }}
),

ranked as (
    select
        *,
        row_number() over (partition by voucher_no, line_no order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        voucher_no,
        line_no,
        posted_on,
        account_code,
        account_name,
        summary,
        debit_yuan,
        credit_yuan,
        project_code,
        payee_code,
        approval_no,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from ranked
    where version_rank = 1
)

select * from renamed
