-- events.honours: one row per key (honour_id); latest delivery wins.
with source as (
    select * from {{ known(source('events', 'events__honours')) }}
),

latest as (
    {{ latest_version('source', ['honour_id'], '_delivery_date desc, _file_name desc, _row_number desc') }}
),

renamed as (
    select
        honour_id,
        year,
        honour,
        level,
        recipient_pseudonym,
        {{ mask_name('recipient') }} as recipient_masked,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
