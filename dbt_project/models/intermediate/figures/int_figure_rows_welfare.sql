-- welfare.* (ledger rows of the newest workbooks) and members.cards_issued_or_renewed, row by
-- row. One row per (figure, year, source row); see int_figures for the aggregation.
{%- set ledger_ref = "_file_name || '#' || cast(_row_number as varchar(10))" %}
with condolence_rows as (
    select
        {{ figure_row('figures.figure_id', year_of('visit_date'), 'stg_welfare__condolences', ledger_ref,
                      amount="case when figures.measure = 'sum' then amount_yuan end", measure='figures.measure',
                      event_on='visit_date', union_code='condolences.union_code', category='condolences.program') }}
    from {{ ref('stg_welfare__condolences') }} as condolences
    inner join (
        values
        ('welfare.festival_condolence', '两节慰问', 'rows'),
        ('welfare.festival_condolence', '外来建设者慰问', 'rows'),
        ('welfare.festival_condolence', '特殊慰问', 'rows'),
        ('welfare.new_form_condolence', '新就业形态慰问', 'rows'),
        ('welfare.pandemic_supply_recipients', '疫情防控慰问', 'rows'),
        ('welfare.pandemic_supply_value_yuan', '疫情防控慰问', 'sum')
    ) as figures (figure_id, program, measure)
        on condolences.program = figures.program
),

health_check_rows as (
    select
        {{ figure_row("'welfare.migrant_health_checks'", year_of('check_date'), 'stg_welfare__health_checks',
                      ledger_ref, count_key='id_card_pseudonym', measure="'distinct'", event_on='check_date',
                      category='recipient_category') }}
    from {{ ref('stg_welfare__health_checks') }}
    where recipient_category = '农民工'
),

relief_rows as (
    select
        {{ figure_row("'welfare.relief_cases'", year_of('relief_date'), 'stg_welfare__reliefs', ledger_ref,
                      event_on='relief_date', category='relief_category') }}
    from {{ ref('stg_welfare__reliefs') }}
),

card_rows as (
    select
        {{ figure_row("'members.cards_issued_or_renewed'", year_of('action_on'), 'stg_members__member_cards',
                      'cast(card_event_id as varchar(20))', event_on='action_on',
                      category='action') }}
    from {{ ref('stg_members__member_cards') }}
)

select * from condolence_rows
union all
select * from health_check_rows
union all
select * from relief_rows
union all
select * from card_rows
