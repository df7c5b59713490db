-- Rows the validation rejected, one per source row and load.
with source as (
    select * from {{ known(source('ops', 'quarantine'), column='delivery_date') }}
),

renamed as (
    select
        load_id,
        source as source_system,
        table_name,
        file_name,
        delivery_date,
        row_number,
        row_key,
        rules,
        reasons,
        quarantined_at
    from source
)

select * from renamed
