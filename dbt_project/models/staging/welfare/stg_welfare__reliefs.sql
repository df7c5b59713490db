-- welfare.relief: the newest workbook of a station and month replaces every earlier one.
with source as (
    select * from {{ known(source('welfare', 'welfare__relief')) }}
),

newest as (
    {{ newest_workbook_rows('source') }}
),

renamed as (
    select
        station_code,
        ledger_month,
        relief_date,
        name_pseudonym,
        {{ mask_name('name') }} as name_masked,
        id_card_pseudonym,
        {{ mask_resident_id('id_card') }} as id_card_masked,
        relief_category,
        amount_yuan,
        approval_no,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from newest
)

select * from renamed
