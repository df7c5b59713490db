-- members.member: one row per key (member_id); latest updated_at wins. Soft-deleted members (deleted_at set)
-- stay, with their deletion: their card events are real history (figures.yaml counts every card), and a
-- fact must still join to its member (dim_member flags them is_deleted).
with source as (
    select * from {{ known(source('members', 'members__member')) }}
),

latest as (
    {{ latest_version('source', ['member_id'], 'updated_at desc, _delivery_date desc, _row_number desc') }}
),

renamed as (
    select
        member_id,
        id_card_pseudonym,
        {{ mask_resident_id('id_card') }} as id_card_masked,
        name_pseudonym,
        {{ mask_name('name') }} as name_masked,
        phone_pseudonym,
        {{ mask_phone('phone') }} as phone_masked,
        union_code,
        employment_form,
        is_migrant,
        is_veteran,
        joined_on,
        updated_at,
        deleted_at,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
