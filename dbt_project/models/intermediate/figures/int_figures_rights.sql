-- rights.* and bargain.*: cases by the year received; bargaining by 年度 and by entry date.
with cases as (
    select *, {{ year_of('received_on') }} as report_year from {{ ref('stg_rights__cases') }}
),

bargaining as (
    select * from {{ ref('stg_rights__bargainings') }}
)

select 'rights.consultations' as figure_id, report_year, count(*) as value
from cases where case_type = '咨询' group by report_year
union all
select 'rights.disputes_mediated', report_year, count(*)
from cases where case_type = '劳动争议' group by report_year
union all
select 'rights.disputes_resolved', report_year, count(*)
from cases where case_type = '劳动争议' and mediation_result = '成功' group by report_year
union all
select 'rights.amount_recovered_yuan', report_year, sum(recovered_yuan)
from cases where case_type = '劳动争议' and mediation_result = '成功' group by report_year
union all
select 'bargain.evaluated_enterprises', cast(year as integer), count(distinct uscc)
from bargaining where bargained and evaluated group by year
union all
select 'bargain.wage_agreements', cast(year as integer), count(distinct uscc)
from bargaining where wage_agreement_signed group by year
union all
select 'bargain.records_entered', {{ year_of('entered_on') }}, count(distinct uscc)
from bargaining group by {{ year_of('entered_on') }}
