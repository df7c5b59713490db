-- org.*: unions and covered enterprises, evaluated at the end of each report year.
-- "active at end of Y": started on or before Y-12-31 and not ended/revoked on or before it.
with years as (
    select report_year from {{ ref('int_report_years_listed') }}
),

unions as (
    select * from {{ ref('stg_registry__unions') }}
),

coverage as (
    select * from {{ ref('stg_registry__coverages') }}
),

unions_by_year as (
    select
        years.report_year,
        unions.union_code,
        unions.union_form,
        unions.has_party_org,
        {{ year_of('unions.founded_on') }} as founded_year,
        (
            {{ year_of('unions.founded_on') }} <= years.report_year
            and (unions.revoked_on is null or {{ year_of('unions.revoked_on') }} > years.report_year)
        ) as is_active_at_year_end,
        (unions.revoked_on is not null and {{ year_of('unions.revoked_on') }} <= years.report_year)
            as is_revoked_by_year_end
    from years
    cross join unions
),

covered as (
    select
        unions_by_year.report_year,
        count(distinct coverage.uscc) as value
    from unions_by_year
    inner join coverage
        on coverage.union_code = unions_by_year.union_code
    where unions_by_year.is_active_at_year_end
        and {{ year_of('coverage.start_on') }} <= unions_by_year.report_year
        and (coverage.end_on is null or {{ year_of('coverage.end_on') }} > unions_by_year.report_year)
    group by unions_by_year.report_year
),

union_counts as (
    select
        report_year,
        sum(case when union_form = '独立建会' and founded_year = report_year and not is_revoked_by_year_end
            then 1 else 0 end) as new_independent,
        sum(case when union_form = '独立建会' and is_active_at_year_end then 1 else 0 end) as independent_total,
        sum(case when has_party_org and is_active_at_year_end then 1 else 0 end) as with_party_org
    from unions_by_year
    group by report_year
)

select 'org.new_independent_unions' as figure_id, report_year, new_independent as value from union_counts
union all
select 'org.independent_unions_total', report_year, independent_total from union_counts
union all
select 'org.union_units_total', report_year, value from covered
union all
select 'org.unions_with_party_org', report_year, with_party_org from union_counts
