-- One row per figure of config/figures.yaml and report year; every value computed from the
-- staged data per its definition, zero where a year has no rows.
with catalogue as (
    select * from {{ ref('figure_catalogue') }}
),

years as (
    select report_year from {{ ref('int_report_years_listed') }}
),

computed as (
    select figure_id, report_year, value from {{ ref('int_figures_organisation') }}
    union all
    select figure_id, report_year, value from {{ ref('int_figures_rights') }}
    union all
    select figure_id, report_year, value from {{ ref('int_figures_welfare') }}
    union all
    select figure_id, report_year, value from {{ ref('int_figures_funds') }}
    union all
    select figure_id, report_year, value from {{ ref('int_figures_training') }}
    union all
    select figure_id, report_year, value from {{ ref('int_figures_events') }}
)

select
    catalogue.figure_id,
    years.report_year,
    cast(coalesce(computed.value, 0) as decimal(18, 2)) as value,
    catalogue.unit,
    catalogue.label_zh,
    catalogue.label_en,
    catalogue.definition,
    catalogue.sort_order,
    catalogue.figure_id || ':' || cast(years.report_year as varchar(8)) as figure_year_id
from catalogue
cross join years
left join computed
    on computed.figure_id = catalogue.figure_id
    and computed.report_year = years.report_year
