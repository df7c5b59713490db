-- rights.bargaining: one row per key (uscc, year); latest delivery wins.
with source as (
    select * from {{ known(source('rights', 'rights__bargaining')) }}
),

latest as (
    {{ latest_version('source', ['uscc', 'year'], '_delivery_date desc, _file_name desc, _row_number desc') }}
),

renamed as (
    select
        uscc,
        year,
        bargained,
        evaluated,
        mechanism_established,
        wage_agreement_signed,
        agreement_signed_on,
        entered_on,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
