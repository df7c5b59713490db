-- events.honours: one row per key (honour_id); latest delivery wins.
with source as (
    select * from {{ source('events', 'events__honours') }}
),

ranked as (
    select
        *,
        row_number() over (partition by honour_id order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        honour_id,
        year,
        honour,
        level,
        recipient,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from ranked
    where version_rank = 1
)

select * from renamed
