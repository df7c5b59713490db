-- events.activities: one row per key (activity_id); latest delivery wins.
with source as (
    select * from {{ known(source('events', 'events__activities')) }}
),

latest as (
    {{ latest_version('source', ['activity_id'], '_delivery_date desc, _file_name desc, _row_number desc') }}
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
    from latest
)

select * from renamed
