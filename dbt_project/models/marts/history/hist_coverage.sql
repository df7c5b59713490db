-- History of every coverage row (SCD type 2; key union_code, uscc, start_on): one row per
-- version, valid from the delivery that brought it (latest delivery wins) until the next.
{{ history_versions(known(source('registry', 'registry__coverage')), ['union_code', 'uscc', 'start_on'],
                    ['end_on'], '_delivery_date') }}
