-- rights.cases: one row per key (case_no); latest delivery wins.
with source as (
    select * from {{ known(source('rights', 'rights__cases')) }}
),

latest as (
    {{ latest_version('source', ['case_no'], '_delivery_date desc, _file_name desc, _row_number desc') }}
),

renamed as (
    select
        case_no,
        case_type,
        received_on,
        uscc,
        worker_id_card_pseudonym,
        {{ mask_resident_id('worker_id_card') }} as worker_id_card_masked,
        mediation_result,
        closed_on,
        recovered_yuan,
        _load_id,
        _file_name,
        _delivery_date,
        _row_number
    from latest
)

select * from renamed
