-- Grain: one honour awarded (the recipient appears only masked and pseudonymised).
with final as (
    select
        honour_id,
        year,
        honour,
        level,
        recipient_pseudonym,
        recipient_masked
    from {{ ref('stg_events__honours') }}
)

{{ contract_select('final') }}
