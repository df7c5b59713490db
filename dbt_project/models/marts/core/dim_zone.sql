-- The free-trade zone's three areas (所属片区), the contract's code list.
with final as (
    select
        zones.zone,
        zones.zone_en
    from (values ('海港', 'seaport'), ('空港', 'airport'), ('临港', 'lingang')) as zones (zone, zone_en)
)

{{ contract_select('final') }}
