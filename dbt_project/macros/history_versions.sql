{#- SCD type 2 over an append-only raw table: every delivered version of a key, in the
    contract's "wins" order, valid from its own order value until the next version's.
    ``order_col`` is updated_at (latest updated_at wins) or _delivery_date (latest delivery
    wins). Re-deliveries of an identical version collapse into the first. -#}
{% macro history_versions(relation, key, attributes, order_col) %}
    {%- set state -%}
        {%- for a in attributes -%}
            coalesce({{ dbt.cast(a, 'varchar') }}, '~'){% if not loop.last %} || '|' || {% endif %}
        {%- endfor -%}
    {%- endset %}
    with versions as (
        select
            {{ key | join(', ') }},
            {{ attributes | join(', ') }},
            {{ order_col }} as valid_from,
            _delivery_date as delivered_on,
            _file_name,
            _row_number,
            row_number() over (
                partition by {{ key | join(', ') }}, {{ order_col }}
                order by _delivery_date desc, _file_name desc, _row_number desc
            ) as rank_at_instant
        from {{ relation }}
    ),

    one_per_instant as (
        select * from versions where rank_at_instant = 1
    ),

    changes as (
        select
            *,
            lag({{ state }}) over (partition by {{ key | join(', ') }} order by valid_from) as previous_state,
            {{ state }} as state
        from one_per_instant
    )

    select
        {{ key | join(', ') }},
        {{ attributes | join(', ') }},
        valid_from,
        lead(valid_from) over (partition by {{ key | join(', ') }} order by valid_from) as valid_to,
        delivered_on,
        _file_name,
        _row_number
    from changes
    where previous_state is null or previous_state <> state
{% endmacro %}
