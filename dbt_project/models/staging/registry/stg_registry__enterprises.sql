-- registry.enterprises: one row per key (uscc); latest updated_at wins.
with source as (
    select * from {{ source('registry', 'registry__enterprises') }}
),

ranked as (
    select
        *,
        row_number() over (partition by uscc order by updated_at desc, _delivery_date desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        uscc,
        enterprise_name,
        zone,
        industry_section,
        employees,
        tags,
        registered_on,
        updated_at,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from ranked
    where version_rank = 1
)

select * from renamed
