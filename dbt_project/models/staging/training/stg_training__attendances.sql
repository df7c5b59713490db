-- training.attendance: one row per key (session_id, id_card, name); latest delivery wins.
with source as (
    select * from {{ known(source('training', 'training__attendance')) }}
),

latest as (
    {{ latest_version('source', ['session_id', 'id_card_pseudonym', 'name_pseudonym'],
                      '_delivery_date desc, _file_name desc, _row_number desc') }}
),

renamed as (
    select
        session_id,
        id_card_pseudonym,
        {{ mask_resident_id('id_card') }} as id_card_masked,
        name_pseudonym,
        {{ mask_name('name') }} as name_masked,
        union_code,
        registered,
        attended,
        replay_views,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
