-- One row per member of the member platform (latest updated_at wins), pseudonymised: the
-- resident ID, name and phone appear only as keyed pseudonyms and masked display values.
-- Members soft-deleted on the platform stay, flagged is_deleted: their card events still join
-- (count current members with `where not is_deleted`).
with final as (
    select
        member_id,
        id_card_pseudonym,
        id_card_masked,
        name_masked,
        phone_masked,
        union_code,
        employment_form,
        is_migrant,
        is_veteran,
        joined_on,
        updated_at,
        deleted_at,
        deleted_at is not null as is_deleted
    from {{ ref('stg_members__members') }}
)

{{ contract_select('final') }}
