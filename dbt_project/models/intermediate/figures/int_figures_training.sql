-- comp.* and training.*: by the year a competition or session starts.
with competitions as (
    select *, {{ year_of('start_date') }} as report_year from {{ ref('stg_training__competitions') }}
),

sessions as (
    select *, {{ year_of('start_date') }} as report_year from {{ ref('stg_training__sessions') }}
),

attendance as (
    select
        sessions.report_year,
        sessions.mode,
        attendances.registered,
        attendances.attended,
        attendances.replay_views
    from {{ ref('stg_training__attendances') }} as attendances
    inner join sessions
        on attendances.session_id = sessions.session_id
)

select 'comp.competitions' as figure_id, report_year, count(*) as value
from competitions group by report_year
union all
select 'comp.participants', report_year, sum(participants)
from competitions group by report_year
union all
select 'training.online_views', report_year,
    sum(case when attended then 1 else 0 end) + sum(replay_views)
from attendance where mode = 'online' group by report_year
union all
select 'training.offline_sessions', report_year, count(*)
from sessions where mode = 'offline' group by report_year
union all
select 'training.offline_registrations', report_year, sum(case when registered then 1 else 0 end)
from attendance where mode = 'offline' group by report_year
