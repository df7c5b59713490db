-- finance.budget: one row per key (year, project_code); latest delivery wins.
with source as (
    select * from {{ known(source('finance', 'finance__budget')) }}
),

latest as (
    {{ latest_version('source', ['year', 'project_code'], '_delivery_date desc, _file_name desc, _row_number desc') }}
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
    from latest
)

select * from renamed
