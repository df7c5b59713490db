-- training.sessions: one row per key (session_id); latest delivery wins.
with source as (
    select * from {{ source('training', 'training__sessions') }}
),

ranked as (
    select
        *,
        row_number() over (partition by session_id order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
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
    from ranked
    where version_rank = 1
)

select * from renamed
