-- Grain: one card event (a new card or a renewal) of the member platform.
with final as (
    select
        card_event_id,
        member_id,
        card_no,
        action,
        action_on
    from {{ ref('stg_members__member_cards') }}
)

{{ contract_select('final') }}
