{#- The contract's "latest wins": of all delivered versions of a key, the one first in
    ``order_by`` (e.g. newest updated_at, then newest delivery, then last row in the file). -#}
{% macro latest_version(relation, key, order_by) %}
    select *
    from (
        select
            *,
            row_number() over (partition by {{ key | join(', ') }} order by {{ order_by }}) as version_rank
        from {{ relation }}
    ) as versions
    where version_rank = 1
{% endmacro %}


{#- The contract's "workbook replaces": only the rows of the newest workbook delivered for
    their station and month, even when that workbook has fewer rows (or none) on a sheet. -#}
{% macro newest_workbook_rows(relation) %}
    select sheet_rows.*
    from {{ relation }} as sheet_rows
    inner join (
        {{ latest_version(known(source('welfare', 'welfare__workbooks')), ['station_code', 'ledger_month'],
                          '_delivery_date desc, _file_name desc') }}
    ) as newest
        on sheet_rows._file_name = newest._file_name
{% endmacro %}
