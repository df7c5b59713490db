-- Grain: one member relief payment (救助) of the newest workbook of its station and month.
with final as (
    select
        _file_name || '#' || cast(_row_number as varchar(10)) as relief_id,
        station_code,
        ledger_month,
        relief_date,
        id_card_pseudonym,
        relief_category,
        amount_yuan,
        approval_no,
        _file_name as source_file,
        _row_number as source_row
    from {{ ref('stg_welfare__reliefs') }}
)

{{ contract_select('final') }}
