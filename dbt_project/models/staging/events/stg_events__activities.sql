-- events.activities: one row per key (activity_id); latest delivery wins.
with source as (
    select * from {{ source('events', 'events__activities') }}
),

ranked as (
    select
        *,
        row_number() over (partition by activity_id order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        activity_id,
        activity_name,
        category,
        activity_date,
        participation,
        participants,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from ranked
    where version_rank = 1
)

select * from renamed
