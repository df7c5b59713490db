-- The quarantine as data engineers and auditors follow it: each rejected row, and whether a
-- later delivery has since brought a valid row with the same key (then it is resolved).
with quarantined as (
    select * from {{ ref('stg_ops__quarantined_rows') }}
),

keys as (
    select * from {{ ref('int_source_keys_listed') }}
),

corrections as (
    select
        quarantined.load_id,
        quarantined.row_number,
        min(keys.delivery_date) as resolved_on,
        min(keys.file_name) as resolved_by_file
    from quarantined
    inner join keys
        on quarantined.source_system = keys.source_system
        and quarantined.table_name = keys.table_name
        and quarantined.row_key = keys.row_key
        and quarantined.delivery_date < keys.delivery_date
    group by quarantined.load_id, quarantined.row_number
)

select
    quarantined.load_id || ':' || cast(quarantined.row_number as varchar(20)) as quarantine_row_id,
    quarantined.source_system,
    quarantined.table_name,
    quarantined.file_name,
    quarantined.delivery_date,
    quarantined.row_number,
    quarantined.rules,
    quarantined.reasons,
    corrections.resolved_on is not null as is_resolved,
    corrections.resolved_on,
    corrections.resolved_by_file
from quarantined
left join corrections
    on quarantined.load_id = corrections.load_id
    and quarantined.row_number = corrections.row_number
