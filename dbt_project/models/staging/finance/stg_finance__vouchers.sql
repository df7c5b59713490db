-- finance.vouchers: one row per key (voucher_no, line_no); latest delivery wins.
with source as (
    select * from {{ known(source('finance', 'finance__vouchers')) }}
),

latest as (
    {{ latest_version('source', ['voucher_no', 'line_no'], '_delivery_date desc, _file_name desc, _row_number desc') }}
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
    from latest
)

select * from renamed
