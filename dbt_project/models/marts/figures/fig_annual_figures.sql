-- One row per figure of config/figures.yaml and report year; every value computed from the
-- staged data per its definition, zero where a year has no rows.
with catalogue as (
    select * from {{ ref('figure_catalogue') }}
),

years as (
    select report_year from {{ ref('int_report_years_listed') }}
),

computed as (
    select figure_id, report_year, value, source_rows, models_read from {{ ref('int_figures') }}
)

select
    cast(catalogue.figure_id as varchar) as figure_id,
    cast(years.report_year as integer) as report_year,
    cast(coalesce(computed.value, 0) as decimal(18, 2)) as value,
    cast(catalogue.unit as varchar) as unit,
    cast(catalogue.label_zh as varchar) as label_zh,
    cast(catalogue.label_en as varchar) as label_en,
    cast(catalogue.definition as varchar) as definition,
    cast(coalesce(computed.source_rows, 0) as bigint) as source_rows,
    cast(computed.models_read as varchar) as models_read,
    cast(catalogue.sort_order as integer) as sort_order,
    cast(catalogue.figure_id || ':' || cast(years.report_year as varchar(8)) as varchar) as figure_year_id
from catalogue
cross join years
left join computed
    on computed.figure_id = catalogue.figure_id
    and computed.report_year = years.report_year
