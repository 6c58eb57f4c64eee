-- load_demo: fills every table, is deterministic, refuses to overwrite data
-- unless asked, and checks its arguments.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(14);

-- row count and hash of every table of user data (those a dump keeps),
-- less the row-security setting, the stage mapping and the import log,
-- which a demo load empties and leaves empty
CREATE FUNCTION pg_temp.fingerprint() RETURNS TABLE (tbl text, n bigint, h text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.relname FROM pg_extension x, unnest(x.extconfig) k(relid)
               JOIN pg_class c ON c.oid = k.relid
              WHERE x.extname = 'sales_kpi' AND c.relkind = 'r' AND c.relname NOT IN ('row_security', 'stage_mapping', 'import_run', 'import_error')
              ORDER BY c.relname
    LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM sales_kpi.%I t',
            r.relname, r.relname);
    END LOOP;
END;
$$;

CREATE TEMP TABLE loaded AS SELECT * FROM sales_kpi.load_demo(1500, 3, '2026-10-31', replace => true);
CREATE TEMP TABLE first_load AS SELECT * FROM pg_temp.fingerprint();

SELECT is((SELECT count(*) FROM first_load WHERE n = 0), 0::bigint, 'every table has rows');
SELECT is((SELECT n FROM first_load WHERE tbl = 'opportunity'), 1500::bigint, 'n_opportunities deals');
SELECT set_eq('SELECT table_name, row_count FROM loaded',
              'SELECT tbl, n FROM first_load WHERE tbl <> ''price_term''',
              'load_demo reports the row count of each table it fills');
SELECT ok((SELECT max(entered_at) FROM sales_kpi.stage_event) < '2026-11-01',
          'no stage event after until');
SELECT is((SELECT count(*) FROM sales_kpi.opportunity o
            WHERE o.stage_id IS DISTINCT FROM
                  (SELECT e.stage_id FROM sales_kpi.stage_event e WHERE e.opportunity_id = o.opportunity_id
                    ORDER BY e.entered_at DESC, e.stage_event_id DESC LIMIT 1)),
          0::bigint, 'every deal''s stage is its newest event''s');

-- same arguments, same rows (ids included)
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(1500, 3, '2026-10-31', replace => true)$$,
                'load_demo replaces the data when asked');
SELECT set_eq('SELECT * FROM pg_temp.fingerprint()', 'SELECT * FROM first_load',
              'the same seed gives the same rows in every table');
-- A superuser loads in bulk (foreign keys checked set-wise at the end); any
-- other owner of the tables loads through the row-by-row triggers.  Both
-- must give the same rows.
CREATE ROLE sales_kpi_test_owner;
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT oid::regclass FROM pg_class
              WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'r'
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO sales_kpi_test_owner', t);
    END LOOP;
END;
$$;
GRANT USAGE ON SCHEMA sales_kpi TO sales_kpi_test_owner;
GRANT EXECUTE ON FUNCTION sales_kpi.load_demo(integer, integer, date, boolean) TO sales_kpi_test_owner;
SET ROLE sales_kpi_test_owner;
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(1500, 3, '2026-10-31', replace => true)$$,
                'a non-superuser owner loads through the triggers');
RESET ROLE;
SELECT set_eq('SELECT * FROM pg_temp.fingerprint()', 'SELECT * FROM first_load',
              'loading through the triggers gives the same rows as the bulk load');

SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(1500, 4, '2026-10-31', replace => true)$$,
                'another seed loads');
SELECT is((SELECT count(*) FROM pg_temp.fingerprint() f JOIN first_load l USING (tbl)
            WHERE f.h <> l.h AND tbl NOT IN ('pipeline', 'stage', 'milestone', 'price_term')),
          (SELECT count(*) FROM first_load WHERE tbl NOT IN ('pipeline', 'stage', 'milestone', 'price_term')),
          'another seed gives other rows in every data table');

SELECT throws_ok($$SELECT * FROM sales_kpi.load_demo(100, 1, '2026-10-31')$$, '55000', NULL,
                 'load_demo refuses to write into tables that have rows');
SELECT throws_ok($$SELECT * FROM sales_kpi.load_demo(0, 1, '2026-10-31', replace => true)$$, '22023', NULL,
                 'n_opportunities must be positive');
SELECT throws_ok($$SELECT * FROM sales_kpi.load_demo(100, NULL, '2026-10-31', replace => true)$$, '22023', NULL,
                 'seed must not be null');

SELECT * FROM finish();
ROLLBACK;
