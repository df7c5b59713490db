-- training.attendance: one row per key (session_id, id_card, name); latest delivery wins.
with source as (
    select * from {{ source('training', 'training__attendance') }}
),

ranked as (
    select
        *,
        row_number() over (partition by session_id, id_card, name order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        session_id,
        id_card,
        name,
        union_code,
        registered,
        attended,
        replay_views,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from ranked
    where version_rank = 1
)

select * from renamed
