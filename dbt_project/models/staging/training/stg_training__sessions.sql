-- training.sessions: one row per key (session_id); latest delivery wins.
with source as (
    select * from {{ known(source('training', 'training__sessions')) }}
),

latest as (
    {{ latest_version('source', ['session_id'], '_delivery_date desc, _file_name desc, _row_number desc') }}
),

renamed as (
    select
        session_id,
        title,
        mode,
        start_date,
        end_date,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
