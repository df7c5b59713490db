-- training.competitions: one row per key (competition_id); latest delivery wins.
with source as (
    select * from {{ known(source('training', 'training__competitions')) }}
),

latest as (
    {{ latest_version('source', ['competition_id'], '_delivery_date desc, _file_name desc, _row_number desc') }}
),

renamed as (
    select
        competition_id,
        competition_name,
        level,
        role,
        start_date,
        participants,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
