-- registry.enterprises: one row per key (uscc); latest updated_at wins.
with source as (
    select * from {{ known(source('registry', 'registry__enterprises')) }}
),

latest as (
    {{ latest_version('source', ['uscc'], 'updated_at desc, _delivery_date desc, _row_number desc') }}
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
    from latest
)

select * from renamed
