-- finance.budget: one row per key (year, project_code); latest delivery wins.
with source as (
    select * from {{ source('finance', 'finance__budget') }}
),

ranked as (
    select
        *,
        row_number() over (partition by year, project_code order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        year,
        project_code,
        project_name,
        budget_yuan,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from ranked
    where version_rank = 1
)

select * from renamed
