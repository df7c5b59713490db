-- welfare.relief: the newest workbook of a station and month replaces every earlier one,
-- even for sheets where it now has fewer rows or none.
with source as (
    select * from {{ source('welfare', 'welfare__relief') }}
),

workbooks as (
    select * from {{ source('welfare', 'welfare__workbooks') }}
),

newest_workbooks as (
    select station_code, ledger_month, _file_name
    from (
        select
            station_code,
            ledger_month,
            _file_name,
            row_number() over (
                partition by station_code, ledger_month order by _delivery_date desc, _file_name desc
            ) as workbook_rank
        from workbooks
    ) ranked
    where workbook_rank = 1
),

renamed as (
    select
        source.station_code,
        source.ledger_month,
        source.relief_date,
        source.name,
        source.id_card,
        source.relief_category,
        source.amount_yuan,
        source.approval_no,
        source._load_id,
        source._file_name,
        source._delivery_date,
        source._row_number
    from source
    inner join newest_workbooks
        on source._file_name = newest_workbooks._file_name
)

select * from renamed
