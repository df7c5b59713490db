-- One row per grassroots union, its latest version; history in hist_unions.
with final as (
    select
        union_code,
        union_name,
        union_form,
        uscc,
        founded_on,
        has_party_org,
        status,
        revoked_on,
        status = '撤销' as is_revoked,
        updated_at
    from {{ ref('stg_registry__unions') }}
)

{{ contract_select('final') }}
