-- training.competitions: one row per key (competition_id); latest delivery wins.
with source as (
    select * from {{ source('training', 'training__competitions') }}
),

ranked as (
    select
        *,
        row_number() over (partition by competition_id order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
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
    from ranked
    where version_rank = 1
)

select * from renamed
