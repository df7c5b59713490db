-- comp.* and training.*, row by row, by the year a competition or session starts. One row per
-- (figure, year, source row); see int_figures for the aggregation.
with sessions as (
    select
        *,
        {{ year_of('start_date') }} as report_year
    from {{ ref('stg_training__sessions') }}
),

attendance as (
    select
        sessions.report_year,
        sessions.start_date,
        sessions.mode,
        attendances.session_id || '|' || coalesce(attendances.id_card_pseudonym, '') || '|'
        || attendances.name_pseudonym as attendance_ref,
        attendances.union_code,
        attendances.registered,
        attendances.attended,
        attendances.replay_views
    from {{ ref('stg_training__attendances') }} as attendances
    inner join sessions
        on attendances.session_id = sessions.session_id
),

competition_rows as (
    select
        {{ figure_row('figures.figure_id', year_of('start_date'), 'stg_training__competitions', 'competition_id',
                      amount="case when figures.measure = 'sum' then participants end", measure='figures.measure',
                      event_on='start_date', category='level') }}
    from {{ ref('stg_training__competitions') }}
    cross join (values ('comp.competitions', 'rows'), ('comp.participants', 'sum')) as figures (figure_id, measure)
),

session_rows as (
    select
        {{ figure_row("'training.offline_sessions'", 'report_year', 'stg_training__sessions', 'session_id',
                      event_on='start_date', category='mode') }}
    from sessions
    where mode = 'offline'
),

online_view_rows as (
    -- each live attendance and each replay view is a view
    select
        {{ figure_row("'training.online_views'", 'report_year', 'stg_training__attendances', 'attendance_ref',
                      amount='(case when attended then 1 else 0 end) + replay_views', measure="'sum'",
                      event_on='start_date', union_code='union_code', category='mode') }}
    from attendance
    where mode = 'online'
),

registration_rows as (
    select
        {{ figure_row("'training.offline_registrations'", 'report_year', 'stg_training__attendances',
                      'attendance_ref', event_on='start_date', union_code='union_code', category='mode') }}
    from attendance
    where mode = 'offline' and registered
)

select * from competition_rows
union all
select * from session_rows
union all
select * from online_view_rows
union all
select * from registration_rows
