-- registry.unions: one row per key (union_code); latest updated_at wins.
with source as (
    select * from {{ known(source('registry', 'registry__unions')) }}
),

latest as (
    {{ latest_version('source', ['union_code'], 'updated_at desc, _delivery_date desc, _row_number desc') }}
),

renamed as (
    select
        union_code,
        union_name,
        union_form,
        uscc,
        founded_on,
        has_party_org,
        status,
        revoked_on,
        updated_at,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
