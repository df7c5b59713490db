-- Grain: one condolence visit (慰问, one person-time) of the newest workbook of its station and month.
with final as (
    select
        _file_name || '#' || cast(_row_number as varchar(10)) as visit_id,
        station_code,
        ledger_month,
        visit_date,
        program,
        recipient_category,
        id_card_pseudonym,
        union_code,
        form,
        amount_yuan,
        _file_name as source_file,
        _row_number as source_row
    from {{ ref('stg_welfare__condolences') }}
)

{{ contract_select('final') }}
