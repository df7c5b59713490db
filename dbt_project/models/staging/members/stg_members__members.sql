-- members.member: one row per key (member_id); latest updated_at wins. Soft-deleted members (deleted_at set) are left out.
with source as (
    select * from {{ source('members', 'members__member') }}
),

ranked as (
    select
        *,
        row_number() over (partition by member_id order by updated_at desc, _delivery_date desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        member_id,
        id_card,
        name,
        phone,
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
    from ranked
    where version_rank = 1
)

select * from renamed
    where deleted_at is null
