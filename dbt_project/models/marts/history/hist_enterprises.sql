-- History of every enterprise (SCD type 2): one row per version, valid from its 更新时间 until
-- the next version's; valid_to is null for the current one.
{{ history_versions(known(source('registry', 'registry__enterprises')), ['uscc'],
                    ['enterprise_name', 'zone', 'industry_section', 'employees', 'tags', 'registered_on'],
                    'updated_at') }}
