-- Grain: one health check (体检) of the newest workbook of its station and month.
with final as (
    select
        _file_name || '#' || cast(_row_number as varchar(10)) as health_check_id,
        station_code,
        ledger_month,
        check_date,
        id_card_pseudonym,
        recipient_category,
        provider,
        fee_yuan,
        _file_name as source_file,
        _row_number as source_row
    from {{ ref('stg_welfare__health_checks') }}
)

{{ contract_select('final') }}
