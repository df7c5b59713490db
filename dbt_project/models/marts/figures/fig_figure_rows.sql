-- Drill-down: every source row behind every figure and year, with the model it comes from and
-- its reference there (case number, voucher line, workbook#row, …), the key it is counted by
-- for distinct counts, the amount it adds for sums and the date it counts on (event_on; null
-- where the figure has none: status at year end, 年度). Rows that are not counted in a figure
-- (another year, another category, quarantined) are not here.
-- The semantic layer (models/marts/figures/_semantic.yml) reads this mart: counted_on is the
-- date each row counts on for metric_time (event_on, else the last day of the report year),
-- uscc / union_code the enterprise and union the row concerns where the source names one (a
-- union's enterprise where only the union is named; a member card's member and the member's
-- union), category the source's own classification.
with figure_rows as (
    select * from {{ ref('int_figure_rows') }}
),

unions as (
    select
        union_code,
        uscc
    from {{ ref('dim_union') }}
),

card_members as (
    select
        cast(cards.card_event_id as varchar(20)) as source_ref,
        cards.member_id,
        members.union_code
    from {{ ref('fct_member_cards') }} as cards
    left join {{ ref('dim_member') }} as members
        on cards.member_id = members.member_id
),

final as (
    select
        figure_rows.figure_id || ':' || cast(figure_rows.report_year as varchar(8)) || ':'
        || figure_rows.source_model || ':' || figure_rows.source_ref as figure_row_id,
        figure_rows.figure_id || ':' || cast(figure_rows.report_year as varchar(8)) as figure_year_id,
        figure_rows.figure_id,
        figure_rows.report_year,
        figure_rows.source_model,
        figure_rows.source_ref,
        figure_rows.count_key,
        figure_rows.amount,
        figure_rows.measure,
        figure_rows.event_on,
        coalesce(figure_rows.event_on, make_date(figure_rows.report_year, 12, 31)) as counted_on,
        coalesce(figure_rows.uscc, unions.uscc) as uscc,
        coalesce(figure_rows.union_code, card_members.union_code) as union_code,
        figure_rows.category,
        card_members.member_id
    from figure_rows
    left join card_members
        on figure_rows.source_model = 'stg_members__member_cards'
        and figure_rows.source_ref = card_members.source_ref
    left join unions
        on coalesce(figure_rows.union_code, card_members.union_code) = unions.union_code
)

select * from final
