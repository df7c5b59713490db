{#- Display forms of personal values that cannot be joined back to them (the pseudonym
    columns are for joining and counting). A resident ID keeps its first 3 and last 4
    characters (120***********123X), a phone its first 3 and last 4 (138****5678), a name its
    first character (张**). -#}
{% macro mask_resident_id(expr) -%}
    case when {{ expr }} is null then null
         else substr({{ expr }}, 1, 3) || '***********' || substr({{ expr }}, 15, 4) end
{%- endmacro %}

{% macro mask_phone(expr) -%}
    case when {{ expr }} is null then null
         when length({{ expr }}) < 8 then '****'
         else substr({{ expr }}, 1, 3) || '****' || substr({{ expr }}, length({{ expr }}) - 3, 4) end
{%- endmacro %}

{% macro mask_name(expr) -%}
    case when {{ expr }} is null then null else substr({{ expr }}, 1, 1) || '**' end
{%- endmacro %}
