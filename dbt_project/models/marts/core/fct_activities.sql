-- Grain: one activity the federation held or took part in.
with final as (
    select
        activity_id,
        activity_name,
        category,
        activity_date,
        participation,
        participants
    from {{ ref('stg_events__activities') }}
)

{{ contract_select('final') }}
