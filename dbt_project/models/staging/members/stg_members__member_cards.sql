-- members.member_card: one row per key (card_event_id); latest updated_at wins.
with source as (
    select * from {{ known(source('members', 'members__member_card')) }}
),

latest as (
    {{ latest_version('source', ['card_event_id'], 'updated_at desc, _delivery_date desc, _row_number desc') }}
),

renamed as (
    select
        card_event_id,
        member_id,
        card_no,
        action,
        action_on,
        updated_at,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
