-- Grain: one person's registration for one training session (latest delivery wins), with the
-- session's mode and dates.
with final as (
    select
        attendance.session_id || '|' || coalesce(attendance.id_card_pseudonym, '') || '|' || attendance.name_pseudonym
            as attendance_id,
        attendance.session_id,
        sessions.mode,
        sessions.start_date,
        sessions.end_date,
        attendance.id_card_pseudonym,
        attendance.union_code,
        attendance.registered,
        attendance.attended,
        attendance.replay_views
    from {{ ref('stg_training__attendances') }} as attendance
    left join {{ ref('stg_training__sessions') }} as sessions on attendance.session_id = sessions.session_id
)

{{ contract_select('final') }}
