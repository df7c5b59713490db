-- welfare.* (ledger rows of the newest workbooks) and members.cards_issued_or_renewed.
with condolences as (
    select *, {{ year_of('visit_date') }} as report_year from {{ ref('stg_welfare__condolences') }}
),

health_checks as (
    select *, {{ year_of('check_date') }} as report_year from {{ ref('stg_welfare__health_checks') }}
),

reliefs as (
    select *, {{ year_of('relief_date') }} as report_year from {{ ref('stg_welfare__reliefs') }}
),

cards as (
    select *, {{ year_of('action_on') }} as report_year from {{ ref('stg_members__member_cards') }}
)

select 'welfare.festival_condolence' as figure_id, report_year, count(*) as value
from condolences where program in ('两节慰问', '外来建设者慰问', '特殊慰问') group by report_year
union all
select 'welfare.new_form_condolence', report_year, count(*)
from condolences where program = '新就业形态慰问' group by report_year
union all
select 'welfare.migrant_health_checks', report_year, count(distinct id_card_pseudonym)
from health_checks where recipient_category = '农民工' group by report_year
union all
select 'welfare.relief_cases', report_year, count(*)
from reliefs group by report_year
union all
select 'welfare.pandemic_supply_recipients', report_year, count(*)
from condolences where program = '疫情防控慰问' group by report_year
union all
select 'welfare.pandemic_supply_value_yuan', report_year, sum(amount_yuan)
from condolences where program = '疫情防控慰问' group by report_year
union all
select 'members.cards_issued_or_renewed', report_year, count(*)
from cards group by report_year
