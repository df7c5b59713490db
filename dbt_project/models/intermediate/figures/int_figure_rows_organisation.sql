-- org.*, row by row: unions and covered enterprises, evaluated at the end of each report year.
-- "active at end of Y": started on or before Y-12-31 and not ended/revoked on or before it.
-- One row per (figure, year, source row); see int_figures for the aggregation.
with years as (
    select report_year from {{ ref('int_report_years_listed') }}
),

unions_by_year as (
    select
        years.report_year,
        unions.union_code,
        unions.uscc,
        unions.union_form,
        unions.has_party_org,
        unions.founded_on,
        {{ year_of('unions.founded_on') }} as founded_year,
        (
            {{ year_of('unions.founded_on') }} <= years.report_year
            and (unions.revoked_on is null or {{ year_of('unions.revoked_on') }} > years.report_year)
        ) as is_active_at_year_end,
        (unions.revoked_on is not null and {{ year_of('unions.revoked_on') }} <= years.report_year)
            as is_revoked_by_year_end
    from years
    cross join {{ ref('stg_registry__unions') }} as unions
),

union_rows as (
    select
        {{ figure_row('figures.figure_id', 'unions_by_year.report_year', 'stg_registry__unions',
                      'unions_by_year.union_code',
                      event_on="case when figures.figure_id = 'org.new_independent_unions'
                                then unions_by_year.founded_on end",
                      uscc='unions_by_year.uscc', union_code='unions_by_year.union_code',
                      category='unions_by_year.union_form') }}
    from unions_by_year
    inner join (
        values
        ('org.new_independent_unions'),
        ('org.independent_unions_total'),
        ('org.unions_with_party_org')
    ) as figures (figure_id)
        on (
            figures.figure_id = 'org.new_independent_unions' and unions_by_year.union_form = '独立建会'
            and unions_by_year.founded_year = unions_by_year.report_year
            and not unions_by_year.is_revoked_by_year_end
        )
        or (
            figures.figure_id = 'org.independent_unions_total' and unions_by_year.union_form = '独立建会'
            and unions_by_year.is_active_at_year_end
        )
        or (
            figures.figure_id = 'org.unions_with_party_org' and unions_by_year.has_party_org
            and unions_by_year.is_active_at_year_end
        )
),

coverage_rows as (
    select
        {{ figure_row("'org.union_units_total'", 'unions_by_year.report_year', 'stg_registry__coverages',
                      "coverage.union_code || '|' || coverage.uscc || '|' || cast(coverage.start_on as varchar(10))",
                      count_key='coverage.uscc', measure="'distinct'", uscc='coverage.uscc',
                      union_code='coverage.union_code') }}
    from unions_by_year
    inner join {{ ref('stg_registry__coverages') }} as coverage
        on unions_by_year.union_code = coverage.union_code
    where unions_by_year.is_active_at_year_end
        and {{ year_of('coverage.start_on') }} <= unions_by_year.report_year
        and (coverage.end_on is null or {{ year_of('coverage.end_on') }} > unions_by_year.report_year)
)

select * from union_rows
union all
select * from coverage_rows
