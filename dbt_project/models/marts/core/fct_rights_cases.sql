-- Grain: one rights-protection case (consultation or labour dispute), its latest state.
with final as (
    select
        case_no,
        case_type,
        received_on,
        uscc,
        worker_id_card_pseudonym,
        mediation_result,
        closed_on,
        recovered_yuan
    from {{ ref('stg_rights__cases') }}
)

{{ contract_select('final') }}
