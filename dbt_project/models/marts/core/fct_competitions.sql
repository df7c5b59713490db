-- Grain: one skills competition the federation hosted or co-hosted.
with final as (
    select
        competition_id,
        competition_name,
        level,
        role,
        start_date,
        participants
    from {{ ref('stg_training__competitions') }}
)

{{ contract_select('final') }}
