-- Grain: one enterprise's collective-bargaining record for one year.
with final as (
    select
        uscc || ':' || cast(year as varchar(4)) as bargaining_id,
        uscc,
        year,
        bargained,
        evaluated,
        mechanism_established,
        wage_agreement_signed,
        agreement_signed_on,
        entered_on
    from {{ ref('stg_rights__bargainings') }}
)

{{ contract_select('final') }}
