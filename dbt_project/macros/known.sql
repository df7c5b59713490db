{#- What was known on a date: with ``--vars '{as_of: YYYY-MM-DD}'`` a raw relation is read
    only up to the rows delivered on or before that date (the raw layer is append-only and
    every row carries its delivery date); without it, the relation itself. -#}
-- LT02: the whitespace control of these tags strips their indentation from what they render.
-- noqa: disable=LT02
{% macro known(relation, alias=none, column='_delivery_date') -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of | string) -%}
            {{ exceptions.raise_compiler_error("as_of must be a date YYYY-MM-DD, got " ~ as_of) }}
        {%- endif -%}
        (select * from {{ relation }} where {{ column }} <= cast('{{ as_of }}' as date)) as {{ alias or 'known_rows' }}
    {%- else -%}
        {{ relation }}{% if alias %} as {{ alias }}{% endif %}
    {%- endif -%}
{%- endmacro %}
