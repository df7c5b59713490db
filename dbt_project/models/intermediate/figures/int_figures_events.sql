-- events.* by activity date; honours.* by 年度.
with activities as (
    select *, {{ year_of('activity_date') }} as report_year from {{ ref('stg_events__activities') }}
),

honours as (
    select *, cast(year as integer) as report_year from {{ ref('stg_events__honours') }}
),

honour_figures as (
    select * from (values
        ('honours.mayday_certificates', '五一劳动奖状', '区级'),
        ('honours.mayday_medals', '五一劳动奖章', '区级'),
        ('honours.worker_pioneers', '工人先锋号', '区级'),
        ('honours.city_individuals', '市级先进个人', null),
        ('honours.city_collectives', '市级先进集体', null),
        ('honours.excellent_volunteers', '优秀志愿者', null),
        ('honours.volunteer_models', '志愿者标兵', null),
        ('honours.volunteer_teams', '优秀志愿服务团队', null),
        ('honours.ankang_units', '安康杯优胜单位', null),
        ('honours.ankang_teams', '安康杯优胜班组', null),
        ('honours.ankang_org_units', '安康杯优秀组织单位', null),
        ('honours.ankang_org_individuals', '安康杯优秀组织个人', null)
    ) as t (figure_id, honour, required_level)
)

select 'events.culture_activities' as figure_id, report_year, count(*) as value
from activities where category in ('文体', '宣传') group by report_year
union all
select 'events.safety_participants', report_year, sum(participants)
from activities where category = '安全' group by report_year
union all
select 'events.vaccination_volunteers', report_year, sum(participants)
from activities where category = '疫情防控' group by report_year
union all
select honour_figures.figure_id, honours.report_year, count(*)
from honours
inner join honour_figures
    on honours.honour = honour_figures.honour
    and (honour_figures.required_level is null or honours.level = honour_figures.required_level)
group by honour_figures.figure_id, honours.report_year
