\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

-- Install, DROP EXTENSION and re-install are clean.  Everything happens in
-- one transaction that is rolled back, so the database keeps its extension.
-- Run with pg_prove in a database where pgtap and sales_kpi exist.

BEGIN;
SELECT plan(48);

SELECT has_extension('sales_kpi'::name, 'sales_kpi'::name, 'sales_kpi is installed in schema sales_kpi');

-- the installed state, to compare a re-install with
SELECT e.oid AS ext_oid_before,
       (SELECT count(*) FROM pg_catalog.pg_depend d
         WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = e.oid AND d.deptype = 'e') AS members_before,
       coalesce(array_length(e.extconfig, 1), 0) AS config_before,
       (SELECT count(*) FROM sales_kpi.price_term WHERE builtin) AS builtin_terms_before
  FROM pg_catalog.pg_extension e
 WHERE e.extname = 'sales_kpi' \gset
SELECT cmp_ok(:members_before::bigint, '>', 0::bigint, 'the extension has member objects');
SELECT cmp_ok(:builtin_terms_before::bigint, '>', 0::bigint, 'the extension ships price terms');

-------------------------------------------------------------------------------
-- 1. DROP EXTENSION leaves nothing behind
-------------------------------------------------------------------------------
SELECT lives_ok('DROP EXTENSION sales_kpi CASCADE', 'DROP EXTENSION sales_kpi CASCADE works');
SELECT hasnt_extension('sales_kpi'::name, 'sales_kpi is gone from pg_extension');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'sales_kpi_internal'),
          'schema sales_kpi_internal is gone');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'sales_kpi')
          OR (NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'sales_kpi')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                               WHERE n.nspname = 'sales_kpi')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                               WHERE n.nspname = 'sales_kpi')),
          'schema sales_kpi is gone or empty');
SELECT is_empty($$
    SELECT c.oid::regclass::text || ' (' || c.relkind::text || ')'
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'sales_kpi'
$$, 'no table, view, index or sequence of sales_kpi is left');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('sales_kpi', 'sales_kpi_internal') OR p.oid::regprocedure::text LIKE 'sales\_kpi%.%'
$$, 'no function named sales_kpi.* is left');
SELECT is_empty($$
    SELECT t.oid::regtype::text
      FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = 'sales_kpi'
$$, 'no type of sales_kpi is left');
SELECT is_empty(format($$
    SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
      FROM pg_catalog.pg_depend d
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = %s
$$, :ext_oid_before), 'no object still depends on the dropped extension');
SELECT is_empty($$
    SELECT tgname::text FROM pg_catalog.pg_trigger
     WHERE tgname IN ('opportunity_after_insert', 'opportunity_after_update',
                      'opportunity_history_before_insert', 'opportunity_history_after_insert',
                      'opportunity_history_after_update', 'opportunity_history_after_delete',
                      'stage_event_after_insert',
                      'stage_event_after_update', 'stage_event_after_delete')
$$, 'no trigger of sales_kpi is left');

-------------------------------------------------------------------------------
-- 2. CREATE EXTENSION again: the same objects, empty tables, shipped rows
-------------------------------------------------------------------------------
-- default privileges that would grant CREATE on every new schema to a role
CREATE ROLE sales_kpi_install_test_role NOLOGIN;
ALTER DEFAULT PRIVILEGES GRANT CREATE, USAGE ON SCHEMAS TO sales_kpi_install_test_role;
SELECT lives_ok('CREATE EXTENSION sales_kpi', 'CREATE EXTENSION sales_kpi works again after DROP');
SELECT ok(NOT pg_catalog.has_schema_privilege('sales_kpi_install_test_role', 'sales_kpi_internal', 'CREATE'),
          'default privileges do not let another role create in sales_kpi_internal');
ALTER DEFAULT PRIVILEGES REVOKE CREATE, USAGE ON SCHEMAS FROM sales_kpi_install_test_role;
SELECT has_extension('sales_kpi'::name, 'sales_kpi'::name, 'sales_kpi is back in schema sales_kpi');
SELECT is((SELECT count(*) FROM pg_catalog.pg_depend d
            WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
              AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi')
              AND d.deptype = 'e'),
          :members_before::bigint, 'the re-installed extension has as many member objects as before');
SELECT is((SELECT coalesce(array_length(extconfig, 1), 0) FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi'),
          :config_before, 'the re-installed extension registers as many tables and sequences for pg_dump as before');
SELECT is_empty($$
    SELECT t FROM unnest(ARRAY['pipeline', 'stage', 'milestone', 'rep', 'account', 'contact',
                               'lead', 'opportunity', 'opportunity_contact', 'stage_event',
                               'opportunity_history', 'milestone_event', 'activity', 'utterance',
                               'price_term', 'quota', 'forecast_submission', 'recurring_revenue',
                               'collection', 'fx_rate']) AS t
     WHERE pg_catalog.to_regclass('sales_kpi.' || t) IS NULL
$$, 'every table of the data model is back');
SELECT is_empty($$
    SELECT c.oid::regclass::text
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'sales_kpi'::regnamespace
       AND c.relkind = 'r'
       AND (xpath('/row/n/text()',
                  query_to_xml(format('SELECT count(*) AS n FROM %s%s', c.oid::regclass,
                                      CASE WHEN c.oid = 'sales_kpi.price_term'::regclass
                                           THEN ' WHERE NOT builtin' END),
                               false, true, '')))[1]::text::bigint > 0
$$, 'every table is empty (price_term: apart from the shipped terms)');
SELECT set_has('SELECT term FROM sales_kpi.price_term WHERE builtin',
               $$VALUES ('price'), ('pricing'), ('discount'), ('价格'), ('报价'), ('折扣')$$,
               'the shipped English and Chinese price terms are present');
SELECT is((SELECT count(*) FROM sales_kpi.price_term WHERE builtin), :builtin_terms_before::bigint,
          'as many shipped price terms as before');
SELECT is(sales_kpi.base_currency(), 'USD', 'the settings accessors work after re-install');
SELECT throws_ok('CREATE EXTENSION sales_kpi', '42710', NULL,
                 'a second CREATE EXTENSION sales_kpi is refused (duplicate_object)');
SET LOCAL client_min_messages = warning;  -- its "already exists, skipping" notice
SELECT lives_ok('CREATE EXTENSION IF NOT EXISTS sales_kpi', 'CREATE EXTENSION IF NOT EXISTS is a no-op');
RESET client_min_messages;

-------------------------------------------------------------------------------
-- 3. With data: DROP takes the rows along, CREATE starts clean
-------------------------------------------------------------------------------
INSERT INTO sales_kpi.pipeline (name) VALUES ('tap install pipeline');
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability, forecast_category)
SELECT p.pipeline_id, s.name, s.position, s.kind, s.probability, s.category
  FROM sales_kpi.pipeline p,
       (VALUES ('Discovery', 1, 'open', 0.1, 'pipeline'),
               ('Won', 99, 'won', 1, 'closed'),
               ('Lost', 98, 'lost', 0, 'omitted')) AS s(name, position, kind, probability, category)
 WHERE p.name = 'tap install pipeline';
INSERT INTO sales_kpi.rep (name) VALUES ('tap install rep');
INSERT INTO sales_kpi.account (name) VALUES ('tap install account');
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount)
SELECT p.pipeline_id, a.account_id, r.rep_id, 'tap install deal', 1000
  FROM sales_kpi.pipeline p, sales_kpi.account a, sales_kpi.rep r;
SELECT sales_kpi.move_stage(o.opportunity_id, s.stage_id, '2024-01-02 10:00+00')
  FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.name = 'Discovery' \gset
INSERT INTO sales_kpi.price_term (term) VALUES ('tap install term');

SELECT is((SELECT count(*) FROM sales_kpi.pipeline), 1::bigint, 'a pipeline was inserted');
SELECT is((SELECT count(*) FROM sales_kpi.stage_event), 1::bigint, 'a stage event was recorded');
SELECT isnt_empty('SELECT 1 FROM sales_kpi.opportunity_history', 'the deal has a history snapshot');

SELECT lives_ok('DROP EXTENSION sales_kpi CASCADE', 'DROP EXTENSION sales_kpi CASCADE works with data in the tables');
SELECT hasnt_extension('sales_kpi'::name, 'sales_kpi is gone from pg_extension');
SELECT ok(pg_catalog.to_regclass('sales_kpi.pipeline') IS NULL, 'the pipeline table and its rows are gone');
SELECT ok(pg_catalog.to_regclass('sales_kpi.opportunity') IS NULL, 'the opportunity table and its rows are gone');
SELECT is_empty($$
    SELECT c.oid::regclass::text
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'sales_kpi'
$$, 'no relation of sales_kpi is left after dropping a populated extension');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('sales_kpi', 'sales_kpi_internal') OR p.oid::regprocedure::text LIKE 'sales\_kpi%.%'
$$, 'no function named sales_kpi.* is left after dropping a populated extension');

SELECT lives_ok('CREATE EXTENSION sales_kpi', 'CREATE EXTENSION sales_kpi works after dropping a populated extension');
SELECT has_extension('sales_kpi'::name, 'sales_kpi'::name, 'sales_kpi is back');
SELECT is_empty('SELECT * FROM sales_kpi.pipeline', 'no pipeline survives the re-install');
SELECT is_empty('SELECT * FROM sales_kpi.stage', 'no stage survives the re-install');
SELECT is_empty('SELECT * FROM sales_kpi.rep', 'no rep survives the re-install');
SELECT is_empty('SELECT * FROM sales_kpi.account', 'no account survives the re-install');
SELECT is_empty('SELECT * FROM sales_kpi.opportunity', 'no opportunity survives the re-install');
SELECT is_empty('SELECT * FROM sales_kpi.stage_event', 'no stage event survives the re-install');
SELECT is_empty('SELECT * FROM sales_kpi.opportunity_history', 'no history snapshot survives the re-install');
SELECT is_empty('SELECT * FROM sales_kpi.price_term WHERE NOT builtin', 'no user price term survives the re-install');
SELECT is((SELECT count(*) FROM sales_kpi.price_term WHERE builtin), :builtin_terms_before::bigint,
          'the shipped price terms are back, once each');
SELECT is((SELECT coalesce(array_length(extconfig, 1), 0) FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi'),
          :config_before, 'the tables and sequences are registered for pg_dump again');
WITH p AS (INSERT INTO sales_kpi.pipeline (name) VALUES ('tap install pipeline') RETURNING pipeline_id)
SELECT is(p.pipeline_id, 1::bigint, 'identity sequences start afresh: the first new pipeline gets id 1') FROM p;
SELECT lives_ok($$INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability)
                  SELECT pipeline_id, 'Discovery', 1, 'open', 0.1 FROM sales_kpi.pipeline$$,
                'the re-installed schema accepts the same data again');
SELECT throws_ok('CREATE EXTENSION sales_kpi', '42710', NULL,
                 'a second CREATE EXTENSION sales_kpi is still refused');

SELECT * FROM finish();
ROLLBACK;
