-- Every loaded key of every source table with the delivery that brought it, for matching
-- quarantined rows to the later corrections that replace them. Welfare rows are keyed by
-- their workbook (station|month): a resubmitted workbook replaces the whole ledger.
-- A row is one raw row: its load, file, delivery and record number (null for a workbook,
-- listed once per sheet).
{%- set keyed = [
    ('registry', 'enterprises', ['uscc']),
    ('registry', 'unions', ['union_code']),
    ('registry', 'coverage', ['union_code', 'uscc', 'start_on']),
    ('members', 'member', ['member_id']),
    ('members', 'member_card', ['card_event_id']),
    ('training', 'sessions', ['session_id']),
    ('training', 'attendance', ['session_id', 'id_card_pseudonym', 'name_pseudonym']),
    ('training', 'competitions', ['competition_id']),
    ('rights', 'cases', ['case_no']),
    ('rights', 'bargaining', ['uscc', 'year']),
    ('finance', 'vouchers', ['voucher_no', 'line_no']),
    ('finance', 'budget', ['year', 'project_code']),
    ('events', 'activities', ['activity_id']),
    ('events', 'honours', ['honour_id']),
] %}
with sheets as (
    select 'condolence' as table_name
    union all
    select 'health_checks'
    union all
    select 'relief'
)

{% for source_name, table, key in keyed %}
    select
        '{{ source_name }}' as source_system,
        '{{ table }}' as table_name,
        {% for col in key -%}
            coalesce({{ dbt.cast(col, 'varchar') }}, ''){% if not loop.last %} || '|' || {% endif %}
        {%- endfor %} as row_key,
        _delivery_date as delivery_date,
        _file_name as file_name,
        _load_id as load_id,
        _row_number as row_number
    from {{ known(source(source_name, source_name ~ '__' ~ table)) }}
    union all
{% endfor %}
select
    'welfare' as source_system,
    sheets.table_name,
    workbooks.station_code || '|' || workbooks.ledger_month as row_key,
    workbooks._delivery_date as delivery_date,
    workbooks._file_name as file_name,
    workbooks._load_id as load_id,
    cast(null as {{ dbt.type_bigint() }}) as row_number
from {{ known(source('welfare', 'welfare__workbooks'), alias='workbooks') }}
cross join sheets
