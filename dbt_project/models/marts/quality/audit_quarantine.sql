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
        on keys.source_system = quarantined.source_system
        and keys.table_name = quarantined.table_name
        and keys.row_key = quarantined.row_key
        and keys.delivery_date > quarantined.delivery_date
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
    on corrections.load_id = quarantined.load_id
    and corrections.row_number = quarantined.row_number
