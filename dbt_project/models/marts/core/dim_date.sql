-- One row per calendar day from 1949-01-01 (nothing before is accepted) to 2100-12-31.
with final as (
    with days as (
        select cast(day_ts as date) as date_day
        from {{ calendar_days('1949-01-01', '2100-12-31') }}
    )

    select
        date_day,
        {{ year_of('date_day') }} as year_no,
        cast(extract(quarter from date_day) as integer) as quarter_no,
        {{ month_of('date_day') }} as month_no,
        cast(extract(day from date_day) as integer) as day_of_month,
        {{ iso_weekday('date_day') }} as iso_weekday
    from days
)

{{ contract_select('final') }}
