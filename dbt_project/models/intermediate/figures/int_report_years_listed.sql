-- Every calendar year in which any figure-relevant date or year of the staged data falls.
-- Figures are reported for each of these years (zero where a year has no rows).
with dated as (
    select {{ year_of('founded_on') }} as report_year from {{ ref('stg_registry__unions') }}
    union
    select {{ year_of('received_on') }} from {{ ref('stg_rights__cases') }}
    union
    select cast(year as integer) from {{ ref('stg_rights__bargainings') }}
    union
    select {{ year_of('entered_on') }} from {{ ref('stg_rights__bargainings') }}
    union
    select {{ year_of('start_date') }} from {{ ref('stg_training__competitions') }}
    union
    select {{ year_of('start_date') }} from {{ ref('stg_training__sessions') }}
    union
    select {{ year_of('visit_date') }} from {{ ref('stg_welfare__condolences') }}
    union
    select {{ year_of('check_date') }} from {{ ref('stg_welfare__health_checks') }}
    union
    select {{ year_of('relief_date') }} from {{ ref('stg_welfare__reliefs') }}
    union
    select {{ year_of('action_on') }} from {{ ref('stg_members__member_cards') }}
    union
    select {{ year_of('posted_on') }} from {{ ref('stg_finance__vouchers') }}
    union
    select {{ year_of('activity_date') }} from {{ ref('stg_events__activities') }}
    union
    select cast(year as integer) from {{ ref('stg_events__honours') }}
)

select distinct report_year from dated
where report_year is not null
