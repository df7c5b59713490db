-- registry.coverage: one row per key (union_code, uscc, start_on); latest delivery wins.
with source as (
    select * from {{ known(source('registry', 'registry__coverage')) }}
),

latest as (
    {{ latest_version('source', ['union_code', 'uscc', 'start_on'],
                      '_delivery_date desc, _file_name desc, _row_number desc') }}
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
    from latest
)

select * from renamed
