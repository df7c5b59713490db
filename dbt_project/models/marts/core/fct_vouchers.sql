-- Grain: one finance voucher line (latest delivery wins), with its net amount.
with final as (
    select
        voucher_no || '/' || cast(line_no as varchar(10)) as voucher_line_id,
        voucher_no,
        line_no,
        posted_on,
        account_code,
        account_name,
        summary,
        debit_yuan,
        credit_yuan,
        net_yuan,
        project_code,
        payee_code,
        approval_no
    from {{ ref('int_finance_postings') }}
)

{{ contract_select('final') }}
