-- One row per figure of config/figures.yaml and report year; every value computed from the
-- staged data per its definition, zero where a year has no rows.
with catalogue as (
    select * from {{ ref('figure_catalogue') }}
),

years as (
    select report_year from {{ ref('int_report_years_listed') }}
),

computed as (
    select
        figure_id,
        report_year,
        value,
        source_rows,
        models_read
    from {{ ref('int_figures') }}
),

final as (
    select
        catalogue.figure_id,
        years.report_year,
        coalesce(computed.value, 0) as value,
        catalogue.unit,
        catalogue.label_zh,
        catalogue.label_en,
        catalogue.definition,
        coalesce(computed.source_rows, 0) as source_rows,
        computed.models_read,
        catalogue.sort_order,
        catalogue.figure_id || ':' || cast(years.report_year as varchar(8)) as figure_year_id
    from catalogue
    cross join years
    left join computed
        on catalogue.figure_id = computed.figure_id
        and years.report_year = computed.report_year
)

{{ contract_select('final') }}
