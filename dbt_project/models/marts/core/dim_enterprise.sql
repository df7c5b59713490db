-- One row per enterprise, its latest version (latest 更新时间 wins); history in hist_enterprises.
with final as (
    select
        uscc,
        enterprise_name,
        zone,
        industry_section,
        employees,
        tags,
        registered_on,
        updated_at
    from {{ ref('stg_registry__enterprises') }}
)

{{ contract_select('final') }}
