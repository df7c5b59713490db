-- registry.coverage: one row per key (union_code, uscc, start_on); latest delivery wins.
with source as (
    select * from {{ source('registry', 'registry__coverage') }}
),

ranked as (
    select
        *,
        row_number() over (partition by union_code, uscc, start_on order by _delivery_date desc, _file_name desc, _row_number desc) as version_rank
    from source
),

renamed as (
    select
        union_code,
        uscc,
        start_on,
        end_on,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from ranked
    where version_rank = 1
)

select * from renamed
