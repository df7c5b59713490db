-- events.* by activity date and honours.* by 年度, row by row. One row per (figure, year,
-- source row); see int_figures for the aggregation.
with activity_rows as (
    select
        {{ figure_row('figures.figure_id', year_of('activity_date'), 'stg_events__activities', 'activity_id',
                      amount="case when figures.measure = 'sum' then participants end", measure='figures.measure',
                      event_on='activity_date', category='activities.category') }}
    from {{ ref('stg_events__activities') }} as activities
    inner join (
        values
        ('events.culture_activities', '文体', 'rows'),
        ('events.culture_activities', '宣传', 'rows'),
        ('events.safety_participants', '安全', 'sum'),
        ('events.vaccination_volunteers', '疫情防控', 'sum')
    ) as figures (figure_id, category, measure)
        on activities.category = figures.category
),

honour_rows as (
    select
        {{ figure_row('figures.figure_id', 'cast(honours.year as integer)', 'stg_events__honours',
                      'honours.honour_id', category='honours.level') }}
    from {{ ref('stg_events__honours') }} as honours
    inner join (
        values
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
    ) as figures (figure_id, honour, required_level)
        on honours.honour = figures.honour
        and (figures.required_level is null or honours.level = figures.required_level)
)

select * from activity_rows
union all
select * from honour_rows
