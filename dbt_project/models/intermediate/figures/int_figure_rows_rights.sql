-- rights.* and bargain.*, row by row: cases by the year received; bargaining by 年度 and by
-- entry date. One row per (figure, year, source row); see int_figures for the aggregation.
with case_rows as (
    select
        {{ figure_row('figures.figure_id', year_of('cases.received_on'), 'stg_rights__cases', 'cases.case_no',
                      amount="case when figures.measure = 'sum' then cases.recovered_yuan end",
                      measure='figures.measure', event_on='cases.received_on',
                      uscc='cases.uscc', category='cases.case_type') }}
    from {{ ref('stg_rights__cases') }} as cases
    inner join (
        values
        ('rights.consultations', '咨询', false, 'rows'),
        ('rights.disputes_mediated', '劳动争议', false, 'rows'),
        ('rights.disputes_resolved', '劳动争议', true, 'rows'),
        ('rights.amount_recovered_yuan', '劳动争议', true, 'sum')
    ) as figures (figure_id, wanted_type, successful_only, measure)
        on cases.case_type = figures.wanted_type
        and (not figures.successful_only or cases.mediation_result = '成功')
),

bargaining_rows as (
    select
        {{ figure_row('figures.figure_id',
                      "case when figures.by_entry then " ~ year_of('bargaining.entered_on')
                      ~ " else cast(bargaining.year as integer) end",
                      'stg_rights__bargainings', "bargaining.uscc || ':' || cast(bargaining.year as varchar(4))",
                      count_key='bargaining.uscc', measure="'distinct'",
                      event_on='case when figures.by_entry then bargaining.entered_on end',
                      uscc='bargaining.uscc') }}
    from {{ ref('stg_rights__bargainings') }} as bargaining
    inner join (
        values
        ('bargain.evaluated_enterprises', 'evaluated', false),
        ('bargain.wage_agreements', 'wage', false),
        ('bargain.records_entered', 'entered', true)
    ) as figures (figure_id, kind, by_entry)
        on (figures.kind = 'evaluated' and bargaining.bargained and bargaining.evaluated)
        or (figures.kind = 'wage' and bargaining.wage_agreement_signed)
        or figures.kind = 'entered'
)

select * from case_rows
union all
select * from bargaining_rows
