-- History of every union (SCD type 2): one row per version, valid from its 更新时间 until the
-- next version's; valid_to is null for the current one. Built from the append-only raw layer,
-- so it is complete and can be rebuilt at any time.
{{ history_versions(known(source('registry', 'registry__unions')), ['union_code'],
                    ['union_name', 'union_form', 'uscc', 'founded_on', 'has_party_org', 'status', 'revoked_on'],
                    'updated_at') }}
