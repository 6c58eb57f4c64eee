\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

-- The data-model contract of /work/shared/spec/schema.md, written from the
-- document (not generated from the catalog): a drift of the implementation
-- from the contract fails here.  Run with pg_prove in a database where the
-- extensions pgtap and sales_kpi exist; everything is rolled back.

BEGIN;
SELECT plan(438);

-------------------------------------------------------------------------------
-- The extension and its schema
-------------------------------------------------------------------------------
SELECT has_schema('sales_kpi', 'schema sales_kpi exists');
SELECT has_extension('sales_kpi', 'sales_kpi', 'extension sales_kpi is installed in schema sales_kpi');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi'),
          'sales_kpi', 'pg_extension: the extension lives in schema sales_kpi');
SELECT is((SELECT extrelocatable FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi'),
          false, 'pg_extension: the extension is not relocatable');

-------------------------------------------------------------------------------
-- Every table of schema.md exists
-------------------------------------------------------------------------------
SELECT has_table('sales_kpi'::name, t::name, format('table sales_kpi.%s exists', t))
  FROM (VALUES ('pipeline'), ('stage'), ('milestone'),
               ('rep'), ('account'), ('contact'),
               ('lead'), ('opportunity'), ('opportunity_contact'), ('stage_event'),
               ('opportunity_history'), ('milestone_event'),
               ('activity'), ('utterance'), ('price_term'),
               ('quota'), ('forecast_submission'), ('recurring_revenue'), ('collection'),
               ('fx_rate')) AS v(t);
-- additions to the contract: the row-security setting, and who sees whom
SELECT has_table('sales_kpi'::name, t::name, format('table sales_kpi.%s exists (row-level security)', t))
  FROM (VALUES ('row_security'), ('rep_visibility')) AS v(t);

-------------------------------------------------------------------------------
-- Every documented column, with its documented type
-- (ids bigint, timestamps timestamptz, money numeric, currency char(3))
-------------------------------------------------------------------------------
SELECT col_type_is('sales_kpi'::name, t::name, c::name, ty::text,
                   format('sales_kpi.%s.%s is %s', t, c, ty))
  FROM (VALUES
    -- process definition
    ('pipeline', 'pipeline_id', 'bigint'),
    ('pipeline', 'name', 'text'),
    ('pipeline', 'qualified_position', 'integer'),
    ('pipeline', 'gate_mode', 'text'),                 -- documented extension (stage gates)
    ('stage', 'stage_id', 'bigint'),
    ('stage', 'pipeline_id', 'bigint'),
    ('stage', 'name', 'text'),
    ('stage', 'position', 'integer'),
    ('stage', 'kind', 'text'),
    ('stage', 'probability', 'numeric'),
    ('stage', 'forecast_category', 'text'),
    ('milestone', 'milestone_id', 'bigint'),
    ('milestone', 'stage_id', 'bigint'),
    ('milestone', 'name', 'text'),
    ('milestone', 'position', 'integer'),
    ('milestone', 'required', 'boolean'),
    -- people and customers
    ('rep', 'rep_id', 'bigint'),
    ('rep', 'name', 'text'),
    ('rep', 'team', 'text'),
    ('rep', 'manager_id', 'bigint'),
    ('rep', 'role', 'text'),
    ('rep', 'hired_on', 'date'),
    ('rep', 'db_role', 'name'),
    ('rep', 'timezone', 'text'),
    ('account', 'account_id', 'bigint'),
    ('account', 'name', 'text'),
    ('account', 'industry', 'text'),
    ('account', 'segment', 'text'),
    ('account', 'region', 'text'),
    ('account', 'created_at', 'timestamp with time zone'),
    ('contact', 'contact_id', 'bigint'),
    ('contact', 'account_id', 'bigint'),
    ('contact', 'name', 'text'),
    ('contact', 'title', 'text'),
    ('contact', 'role', 'text'),
    -- deals and their history
    ('lead', 'lead_id', 'bigint'),
    ('lead', 'created_at', 'timestamp with time zone'),
    ('lead', 'source', 'text'),
    ('lead', 'rep_id', 'bigint'),
    ('lead', 'account_id', 'bigint'),
    ('lead', 'qualified_at', 'timestamp with time zone'),
    ('lead', 'disqualified_at', 'timestamp with time zone'),
    ('lead', 'converted_at', 'timestamp with time zone'),
    ('lead', 'opportunity_id', 'bigint'),
    ('opportunity', 'opportunity_id', 'bigint'),
    ('opportunity', 'pipeline_id', 'bigint'),
    ('opportunity', 'account_id', 'bigint'),
    ('opportunity', 'owner_id', 'bigint'),
    ('opportunity', 'name', 'text'),
    ('opportunity', 'kind', 'text'),
    ('opportunity', 'amount', 'numeric'),
    ('opportunity', 'currency', 'character(3)'),
    ('opportunity', 'source', 'text'),
    ('opportunity', 'competitor', 'text'),
    ('opportunity', 'created_at', 'timestamp with time zone'),
    ('opportunity', 'expected_close', 'date'),
    ('opportunity', 'closed_at', 'timestamp with time zone'),
    ('opportunity', 'stage_id', 'bigint'),
    ('opportunity', 'lost_reason', 'text'),
    ('opportunity', 'forecast_category', 'text'),
    ('opportunity_contact', 'opportunity_id', 'bigint'),
    ('opportunity_contact', 'contact_id', 'bigint'),
    ('opportunity_contact', 'role', 'text'),
    ('stage_event', 'stage_event_id', 'bigint'),
    ('stage_event', 'opportunity_id', 'bigint'),
    ('stage_event', 'stage_id', 'bigint'),
    ('stage_event', 'entered_at', 'timestamp with time zone'),
    ('stage_event', 'amount', 'numeric'),
    ('stage_event', 'rep_id', 'bigint'),
    ('opportunity_history', 'opportunity_id', 'bigint'),
    ('opportunity_history', 'changed_at', 'timestamp with time zone'),
    ('opportunity_history', 'amount', 'numeric'),
    ('opportunity_history', 'expected_close', 'date'),
    ('opportunity_history', 'forecast_category', 'text'),
    ('opportunity_history', 'owner_id', 'bigint'),
    ('milestone_event', 'opportunity_id', 'bigint'),
    ('milestone_event', 'milestone_id', 'bigint'),
    ('milestone_event', 'completed_at', 'timestamp with time zone'),
    -- activities and conversations
    ('activity', 'activity_id', 'bigint'),
    ('activity', 'rep_id', 'bigint'),
    ('activity', 'opportunity_id', 'bigint'),
    ('activity', 'account_id', 'bigint'),
    ('activity', 'contact_id', 'bigint'),
    ('activity', 'kind', 'text'),
    ('activity', 'occurred_at', 'timestamp with time zone'),
    ('activity', 'duration_s', 'integer'),
    ('activity', 'connected', 'boolean'),
    ('activity', 'milestone_id', 'bigint'),
    ('utterance', 'activity_id', 'bigint'),
    ('utterance', 'seq', 'integer'),
    ('utterance', 'speaker', 'text'),
    ('utterance', 'start_ms', 'integer'),
    ('utterance', 'end_ms', 'integer'),
    ('utterance', 'text', 'text'),
    ('price_term', 'term', 'text'),
    ('price_term', 'builtin', 'boolean'),              -- documented extension (shipped rows)
    -- targets, forecasts and revenue
    ('quota', 'rep_id', 'bigint'),
    ('quota', 'period_start', 'date'),
    ('quota', 'period_end', 'date'),
    ('quota', 'amount', 'numeric'),
    ('forecast_submission', 'rep_id', 'bigint'),
    ('forecast_submission', 'period_start', 'date'),
    ('forecast_submission', 'period_end', 'date'),
    ('forecast_submission', 'submitted_at', 'timestamp with time zone'),
    ('forecast_submission', 'category', 'text'),
    ('forecast_submission', 'amount', 'numeric'),
    ('recurring_revenue', 'account_id', 'bigint'),
    ('recurring_revenue', 'month', 'date'),
    ('recurring_revenue', 'mrr', 'numeric'),
    ('collection', 'opportunity_id', 'bigint'),
    ('collection', 'due_on', 'date'),
    ('collection', 'amount_due', 'numeric'),
    ('collection', 'currency', 'character(3)'),
    ('collection', 'paid_on', 'date'),
    ('collection', 'amount_paid', 'numeric'),
    ('fx_rate', 'currency', 'character(3)'),
    ('fx_rate', 'valid_from', 'date'),
    ('fx_rate', 'rate', 'numeric')
  ) AS v(t, c, ty);

-- "bigint identity" keys
SELECT is((SELECT a.attidentity <> '' FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = format('sales_kpi.%I', t)::regclass AND a.attname = c),
          true, format('sales_kpi.%s.%s is an identity column', t, c))
  FROM (VALUES ('pipeline', 'pipeline_id'), ('stage', 'stage_id'),
               ('stage_event', 'stage_event_id')) AS v(t, c);

-------------------------------------------------------------------------------
-- Primary keys
-------------------------------------------------------------------------------
SELECT col_is_pk('sales_kpi'::name, t::name, k::name[], format('sales_kpi.%s: primary key (%s)', t, array_to_string(k::text[], ', ')))
  FROM (VALUES
    ('pipeline', '{pipeline_id}'),
    ('stage', '{stage_id}'),
    ('milestone', '{milestone_id}'),
    ('rep', '{rep_id}'),
    ('account', '{account_id}'),
    ('contact', '{contact_id}'),
    ('lead', '{lead_id}'),
    ('opportunity', '{opportunity_id}'),
    ('opportunity_contact', '{opportunity_id,contact_id}'),
    ('stage_event', '{stage_event_id}'),
    ('opportunity_history', '{opportunity_id,changed_at}'),
    ('milestone_event', '{opportunity_id,milestone_id}'),
    ('activity', '{activity_id}'),
    ('utterance', '{activity_id,seq}'),
    ('price_term', '{term}'),
    ('quota', '{rep_id,period_start}'),
    ('recurring_revenue', '{account_id,month}'),
    ('fx_rate', '{currency,valid_from}')
  ) AS v(t, k);
-- no natural key documented for these two; they must still have one
SELECT has_pk('sales_kpi'::name, 'forecast_submission'::name, 'sales_kpi.forecast_submission has a primary key');
SELECT has_pk('sales_kpi'::name, 'collection'::name, 'sales_kpi.collection has a primary key');
-- "name text unique"
SELECT col_is_unique('sales_kpi'::name, 'pipeline'::name, ARRAY['name']::name[], 'sales_kpi.pipeline.name is unique');

-------------------------------------------------------------------------------
-- Foreign keys implied by schema.md
-------------------------------------------------------------------------------
SELECT fk_ok('sales_kpi'::name, t::name, c::name[], 'sales_kpi'::name, rt::name, rc::name[],
             format('sales_kpi.%s(%s) references %s(%s)', t, array_to_string(c::text[], ', '), rt, array_to_string(rc::text[], ', ')))
  FROM (VALUES
    ('stage', '{pipeline_id}', 'pipeline', '{pipeline_id}'),
    ('milestone', '{stage_id}', 'stage', '{stage_id}'),
    ('rep', '{manager_id}', 'rep', '{rep_id}'),
    ('contact', '{account_id}', 'account', '{account_id}'),
    ('opportunity', '{pipeline_id}', 'pipeline', '{pipeline_id}'),
    ('opportunity', '{pipeline_id,stage_id}', 'stage', '{pipeline_id,stage_id}'),
    ('opportunity', '{account_id}', 'account', '{account_id}'),
    ('opportunity', '{owner_id}', 'rep', '{rep_id}'),
    ('lead', '{rep_id}', 'rep', '{rep_id}'),
    ('lead', '{account_id}', 'account', '{account_id}'),
    ('lead', '{opportunity_id}', 'opportunity', '{opportunity_id}'),
    ('opportunity_contact', '{opportunity_id}', 'opportunity', '{opportunity_id}'),
    ('opportunity_contact', '{contact_id}', 'contact', '{contact_id}'),
    ('stage_event', '{opportunity_id}', 'opportunity', '{opportunity_id}'),
    ('stage_event', '{stage_id}', 'stage', '{stage_id}'),
    ('stage_event', '{rep_id}', 'rep', '{rep_id}'),
    ('opportunity_history', '{opportunity_id}', 'opportunity', '{opportunity_id}'),
    ('opportunity_history', '{owner_id}', 'rep', '{rep_id}'),
    ('milestone_event', '{opportunity_id}', 'opportunity', '{opportunity_id}'),
    ('milestone_event', '{milestone_id}', 'milestone', '{milestone_id}'),
    ('activity', '{rep_id}', 'rep', '{rep_id}'),
    ('activity', '{opportunity_id}', 'opportunity', '{opportunity_id}'),
    ('activity', '{account_id}', 'account', '{account_id}'),
    ('activity', '{contact_id}', 'contact', '{contact_id}'),
    ('activity', '{milestone_id}', 'milestone', '{milestone_id}'),
    ('utterance', '{activity_id}', 'activity', '{activity_id}'),
    ('quota', '{rep_id}', 'rep', '{rep_id}'),
    ('forecast_submission', '{rep_id}', 'rep', '{rep_id}'),
    ('recurring_revenue', '{account_id}', 'account', '{account_id}'),
    ('collection', '{opportunity_id}', 'opportunity', '{opportunity_id}')
  ) AS v(t, c, rt, rc);

-------------------------------------------------------------------------------
-- NOT NULL: keys, references a row cannot live without, names, timestamps,
-- dates and amounts the KPIs are computed from
-------------------------------------------------------------------------------
SELECT col_not_null('sales_kpi'::name, t::name, c::name, format('sales_kpi.%s.%s is NOT NULL', t, c))
  FROM (VALUES
    ('pipeline', 'pipeline_id'), ('pipeline', 'name'), ('pipeline', 'qualified_position'),
    ('stage', 'stage_id'), ('stage', 'pipeline_id'), ('stage', 'name'), ('stage', 'position'),
    ('stage', 'kind'), ('stage', 'probability'), ('stage', 'forecast_category'),
    ('milestone', 'milestone_id'), ('milestone', 'stage_id'), ('milestone', 'name'),
    ('milestone', 'position'), ('milestone', 'required'),
    ('rep', 'rep_id'), ('rep', 'name'), ('rep', 'role'),
    ('account', 'account_id'), ('account', 'name'), ('account', 'created_at'),
    ('contact', 'contact_id'), ('contact', 'account_id'), ('contact', 'name'),
    ('lead', 'lead_id'), ('lead', 'created_at'),
    ('opportunity', 'opportunity_id'), ('opportunity', 'pipeline_id'),
    ('opportunity', 'name'), ('opportunity', 'kind'), ('opportunity', 'amount'),
    ('opportunity', 'currency'), ('opportunity', 'created_at'),
    ('opportunity_contact', 'opportunity_id'), ('opportunity_contact', 'contact_id'),
    ('stage_event', 'stage_event_id'), ('stage_event', 'opportunity_id'),
    ('stage_event', 'stage_id'), ('stage_event', 'entered_at'),
    ('opportunity_history', 'opportunity_id'), ('opportunity_history', 'changed_at'),
    ('milestone_event', 'opportunity_id'), ('milestone_event', 'milestone_id'),
    ('milestone_event', 'completed_at'),
    ('activity', 'activity_id'), ('activity', 'rep_id'), ('activity', 'kind'), ('activity', 'occurred_at'),
    ('utterance', 'activity_id'), ('utterance', 'seq'), ('utterance', 'speaker'),
    ('utterance', 'start_ms'), ('utterance', 'end_ms'), ('utterance', 'text'),
    ('price_term', 'term'), ('price_term', 'builtin'),
    ('quota', 'rep_id'), ('quota', 'period_start'), ('quota', 'period_end'), ('quota', 'amount'),
    ('forecast_submission', 'rep_id'), ('forecast_submission', 'period_start'),
    ('forecast_submission', 'period_end'), ('forecast_submission', 'submitted_at'),
    ('forecast_submission', 'category'), ('forecast_submission', 'amount'),
    ('recurring_revenue', 'account_id'), ('recurring_revenue', 'month'), ('recurring_revenue', 'mrr'),
    ('collection', 'opportunity_id'), ('collection', 'due_on'), ('collection', 'amount_due'),
    ('collection', 'currency'), ('collection', 'amount_paid'),
    ('fx_rate', 'currency'), ('fx_rate', 'valid_from'), ('fx_rate', 'rate')
  ) AS v(t, c);

-- a deal's product, and the identity of imported rows in their CRM
SELECT col_type_is('sales_kpi'::name, 'opportunity'::name, 'product'::name, 'text', 'sales_kpi.opportunity.product is text');
SELECT col_type_is('sales_kpi'::name, t::name, c::name, 'text', format('sales_kpi.%s.%s is text', t, c))
  FROM (VALUES ('rep'), ('account'), ('contact'), ('lead'), ('opportunity'), ('stage_event'), ('activity')) AS v(t),
       (VALUES ('crm_source'), ('external_id')) AS w(c);
SELECT is((SELECT count(*) FROM pg_catalog.pg_index i
            WHERE i.indrelid::regclass::text IN ('sales_kpi.rep', 'sales_kpi.account', 'sales_kpi.contact', 'sales_kpi.lead',
                                                 'sales_kpi.opportunity', 'sales_kpi.stage_event', 'sales_kpi.activity')
              AND i.indisunique
              AND pg_catalog.pg_get_indexdef(i.indexrelid) LIKE '%(crm_source, external_id)'),
          7::bigint, 'every imported table has a unique index on (crm_source, external_id)');

-- the columns schema.md marks "null" (and the self-reference to a manager,
-- and the gate mode that falls back to the setting) must accept NULL
SELECT col_is_null('sales_kpi'::name, t::name, c::name, format('sales_kpi.%s.%s is nullable', t, c))
  FROM (VALUES
    ('pipeline', 'gate_mode'),
    ('rep', 'manager_id'), ('rep', 'db_role'), ('rep', 'timezone'),
    ('lead', 'rep_id'), ('lead', 'account_id'), ('lead', 'qualified_at'),
    ('lead', 'disqualified_at'), ('lead', 'converted_at'), ('lead', 'opportunity_id'),
    ('opportunity', 'competitor'), ('opportunity', 'closed_at'), ('opportunity', 'lost_reason'),
    ('opportunity', 'forecast_category'),
    -- real CRM exports have deals without an account or owner, and without a product
    ('opportunity', 'account_id'), ('opportunity', 'owner_id'), ('opportunity', 'product'),
    ('stage_event', 'amount'), ('stage_event', 'rep_id'),
    ('activity', 'opportunity_id'), ('activity', 'account_id'), ('activity', 'contact_id'),
    ('activity', 'duration_s'), ('activity', 'connected'), ('activity', 'milestone_id'),
    ('collection', 'paid_on')
  ) AS v(t, c);

-------------------------------------------------------------------------------
-- Documented value domains have check constraints
-------------------------------------------------------------------------------
SELECT col_has_check('sales_kpi'::name, t::name, ARRAY[c]::name[], format('sales_kpi.%s.%s has a check constraint', t, c))
  FROM (VALUES
    ('stage', 'kind'), ('stage', 'probability'), ('stage', 'forecast_category'),
    ('rep', 'role'), ('contact', 'role'),
    ('opportunity', 'kind'), ('opportunity', 'amount'), ('opportunity', 'forecast_category'),
    ('activity', 'kind'), ('utterance', 'speaker'),
    ('forecast_submission', 'category'), ('recurring_revenue', 'mrr')
  ) AS v(t, c);

-- and they hold the documented bounds
INSERT INTO sales_kpi.pipeline (pipeline_id, name) VALUES (-1, 'tap contract pipeline');
INSERT INTO sales_kpi.rep (rep_id, name) VALUES (-1, 'tap contract rep');
INSERT INTO sales_kpi.account (account_id, name) VALUES (-1, 'tap contract account');
SELECT throws_ok($$INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability)
                   VALUES (-1, 'p>1', 1, 'open', 1.5)$$, '23514', NULL,
                 'stage.probability above 1 is refused');
SELECT throws_ok($$INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability)
                   VALUES (-1, 'p<0', 1, 'open', -0.1)$$, '23514', NULL,
                 'stage.probability below 0 is refused');
SELECT throws_ok($$INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability)
                   VALUES (-1, 'bad kind', 1, 'pending', 0.5)$$, '23514', NULL,
                 'stage.kind outside open/won/lost is refused');
SELECT throws_ok($$INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount)
                   VALUES (-1, -1, -1, 'negative', -1)$$, '23514', NULL,
                 'opportunity.amount below 0 is refused');
SELECT throws_ok($$INSERT INTO sales_kpi.recurring_revenue (account_id, month, mrr)
                   VALUES (-1, '2024-01-01', -1)$$, '23514', NULL,
                 'recurring_revenue.mrr below 0 is refused');
SELECT lives_ok($$INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount)
                  VALUES (-1, '2024-01-01', '2024-04-01', 100)$$,
                'a quota for a period is accepted');
SELECT lives_ok($$INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount)
                  VALUES (-1, '2024-04-01', '2024-07-01', 100)$$,
                'the next quota period (period_end is exclusive) is accepted');
SELECT throws_ok($$INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount)
                   VALUES (-1, '2024-03-01', '2024-05-01', 100)$$, '23P01', NULL,
                 'overlapping quota periods of one rep are refused');

-------------------------------------------------------------------------------
-- Indexes the KPIs need (names as in src/sql)
-------------------------------------------------------------------------------
SELECT has_index('sales_kpi'::name, t::name, i::name,
                 -- pgTAP reports index columns as pg_get_indexdef() quotes them
                 ARRAY(SELECT quote_ident(x) FROM unnest(c::text[]) AS u(x))::name[],
                 format('index %s on %s(%s)', i, t, array_to_string(c::text[], ', ')))
  FROM (VALUES
    ('stage', 'stage_open_position_key', '{pipeline_id,position}'),
    ('stage', 'stage_pipeline_stage_key', '{pipeline_id,stage_id}'),
    ('milestone', 'milestone_position_key', '{stage_id,position}'),
    ('rep', 'rep_manager_idx', '{manager_id}'),
    ('rep', 'rep_team_idx', '{team}'),
    ('contact', 'contact_account_idx', '{account_id}'),
    ('opportunity', 'opportunity_pipeline_stage_idx', '{pipeline_id,stage_id}'),
    ('opportunity', 'opportunity_stage_idx', '{stage_id}'),
    ('opportunity', 'opportunity_owner_idx', '{owner_id,closed_at}'),
    ('opportunity', 'opportunity_account_idx', '{account_id}'),
    ('opportunity', 'opportunity_created_idx', '{created_at}'),
    ('opportunity', 'opportunity_closed_idx', '{closed_at}'),
    ('lead', 'lead_created_idx', '{created_at}'),
    ('lead', 'lead_rep_idx', '{rep_id,created_at}'),
    ('lead', 'lead_opportunity_idx', '{opportunity_id}'),
    ('opportunity_contact', 'opportunity_contact_contact_idx', '{contact_id}'),
    -- with stage_id included: the funnel walk and the as-of look-ups read the index alone
    ('stage_event', 'stage_event_opportunity_idx', '{opportunity_id,entered_at,stage_event_id,stage_id}'),
    ('stage_event', 'stage_event_stage_idx', '{stage_id,entered_at}'),
    ('stage_event', 'stage_event_entered_idx', '{entered_at}'),
    -- a deal's snapshots in order: served by the primary key index
    ('opportunity_history', 'opportunity_history_pkey', '{opportunity_id,changed_at}'),
    ('opportunity_history', 'opportunity_history_changed_idx', '{changed_at}'),
    ('milestone_event', 'milestone_event_milestone_idx', '{milestone_id}'),
    ('activity', 'activity_rep_idx', '{rep_id,occurred_at}'),
    ('activity', 'activity_opportunity_idx', '{opportunity_id,occurred_at}'),
    ('activity', 'activity_account_idx', '{account_id,occurred_at}'),
    ('activity', 'activity_occurred_idx', '{occurred_at}'),
    ('recurring_revenue', 'recurring_revenue_month_idx', '{month}'),
    ('collection', 'collection_opportunity_idx', '{opportunity_id}'),
    ('collection', 'collection_due_idx', '{due_on}')
  ) AS v(t, i, c);
SELECT index_is_unique('sales_kpi'::name, 'stage'::name, 'stage_open_position_key'::name,
                       'stage_open_position_key is unique (open stages have distinct positions)');
SELECT is((SELECT pg_catalog.pg_get_expr(x.indpred, x.indrelid) FROM pg_catalog.pg_index x
            WHERE x.indexrelid = 'sales_kpi.stage_open_position_key'::regclass),
          '(kind = ''open''::text)', 'stage_open_position_key covers open stages only');

-- opportunity_history is written by trigger; stage_event keeps opportunity in step
SELECT has_trigger('sales_kpi'::name, t::name, g::name, format('trigger %s on %s', g, t))
  FROM (VALUES ('opportunity', 'opportunity_after_insert'),
               ('opportunity', 'opportunity_after_update'),
               ('opportunity_history', 'opportunity_history_before_insert'),
               ('opportunity_history', 'opportunity_history_after_insert'),
               ('opportunity_history', 'opportunity_history_after_update'),
               ('opportunity_history', 'opportunity_history_after_delete'),
               ('stage_event', 'stage_event_after_insert'),
               ('stage_event', 'stage_event_after_update'),
               ('stage_event', 'stage_event_after_delete')) AS v(t, g);

-------------------------------------------------------------------------------
-- pg_dump keeps user data: every table (and identity sequence) is registered
-- with pg_extension_config_dump
-------------------------------------------------------------------------------
SELECT ok(format('sales_kpi.%I', t)::regclass = ANY (e.extconfig),
          format('sales_kpi.%s is registered with pg_extension_config_dump', t))
  FROM (VALUES ('pipeline'), ('stage'), ('milestone'),
               ('rep'), ('account'), ('contact'),
               ('lead'), ('opportunity'), ('opportunity_contact'), ('stage_event'),
               ('opportunity_history'), ('milestone_event'),
               ('activity'), ('utterance'), ('price_term'),
               ('quota'), ('forecast_submission'), ('recurring_revenue'), ('collection'),
               ('fx_rate'), ('row_security')) AS v(t)
  CROSS JOIN pg_catalog.pg_extension e
 WHERE e.extname = 'sales_kpi';

SELECT is_empty($$
    SELECT c.oid::regclass::text
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'sales_kpi'::regnamespace
       AND c.relkind IN ('r', 'p')
       AND c.oid <> ALL ((SELECT extconfig FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi')::oid[])
       -- derived from rep and rebuilt by its trigger when a restore loads rep
       AND c.oid <> 'sales_kpi.rep_visibility'::regclass
$$, 'no table of schema sales_kpi but the derived rep_visibility is left out of pg_extension_config_dump');

SELECT isnt_empty($$
    SELECT 1 FROM pg_catalog.pg_attribute a
      JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
     WHERE c.relnamespace = 'sales_kpi'::regnamespace AND a.attidentity <> ''
$$, 'the schema has identity columns');
SELECT is_empty($$
    SELECT pg_catalog.pg_get_serial_sequence(a.attrelid::regclass::text, a.attname)
      FROM pg_catalog.pg_attribute a
      JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
     WHERE c.relnamespace = 'sales_kpi'::regnamespace
       AND c.relkind = 'r'
       AND a.attidentity <> ''
       AND pg_catalog.pg_get_serial_sequence(a.attrelid::regclass::text, a.attname)::regclass::oid
           <> ALL ((SELECT extconfig FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi')::oid[])
$$, 'every identity sequence is registered with pg_extension_config_dump');

SELECT is(u.cond, 'WHERE NOT builtin', 'price_term is dumped WHERE NOT builtin (shipped rows come back with CREATE EXTENSION)')
  FROM pg_catalog.pg_extension e,
       unnest(e.extconfig, e.extcondition) AS u(rel, cond)
 WHERE e.extname = 'sales_kpi' AND u.rel = 'sales_kpi.price_term'::regclass;
SELECT is_empty($$
    SELECT u.rel::regclass::text || ' ' || u.cond
      FROM pg_catalog.pg_extension e,
           unnest(e.extconfig, e.extcondition) AS u(rel, cond)
     WHERE e.extname = 'sales_kpi'
       AND u.rel <> 'sales_kpi.price_term'::regclass
       AND u.cond <> ''
$$, 'every other registered table and sequence is dumped whole');

-------------------------------------------------------------------------------
-- Settings
-------------------------------------------------------------------------------
SELECT has_function('sales_kpi'::name, f::name, '{}'::name[], format('sales_kpi.%s() exists', f))
  FROM (VALUES ('base_currency'), ('reporting_timezone'), ('fiscal_year_start_month'),
               ('default_stage_gate_mode')) AS v(f);
SELECT function_returns('sales_kpi'::name, f::name, '{}'::name[], r, format('sales_kpi.%s() returns %s', f, r))
  FROM (VALUES ('base_currency', 'text'), ('reporting_timezone', 'text'),
               ('fiscal_year_start_month', 'integer'), ('default_stage_gate_mode', 'text')) AS v(f, r);

-- defaults (calling an accessor also loads the module, which defines the
-- settings and reserves the sales_kpi.* prefix)
SELECT is(sales_kpi.base_currency(), 'USD', 'base_currency() defaults to USD');
SELECT is(sales_kpi.fiscal_year_start_month(), 1, 'fiscal_year_start_month() defaults to 1');
SELECT is(sales_kpi.default_stage_gate_mode(), 'off', 'default_stage_gate_mode() defaults to off');
SELECT is(sales_kpi.reporting_timezone(), current_setting('TimeZone'),
          'reporting_timezone() defaults to the session TimeZone');
SELECT is(current_setting('sales_kpi.base_currency'), 'USD', 'SHOW sales_kpi.base_currency is USD');

-- validation
SELECT throws_ok($$SET sales_kpi.base_currency = 'usd'$$, '22023', NULL,
                 'a lower-case base currency is refused');
SELECT throws_ok($$SET sales_kpi.base_currency = 'EURO'$$, '22023', NULL,
                 'a base currency that is not three letters is refused');
SELECT throws_ok($$SET sales_kpi.reporting_timezone = 'Mars/Olympus'$$, '22023', NULL,
                 'an unknown reporting time zone is refused');
SELECT throws_ok($$SET sales_kpi.fiscal_year_start_month = 13$$, '22023', NULL,
                 'fiscal_year_start_month 13 is refused');
SELECT throws_ok($$SET sales_kpi.fiscal_year_start_month = 0$$, '22023', NULL,
                 'fiscal_year_start_month 0 is refused');
SELECT throws_ok($$SET sales_kpi.stage_gate_mode = 'strict'$$, '22023', NULL,
                 'an unknown stage_gate_mode is refused');
SELECT throws_ok($$SET sales_kpi.no_such_setting = 'x'$$, '42602', NULL,
                 'an unknown sales_kpi.* setting is refused (reserved prefix)');
SELECT is(sales_kpi.base_currency(), 'USD', 'a refused SET leaves base_currency() unchanged');

-- changes are seen by the accessors
SET sales_kpi.base_currency = 'EUR';
SELECT is(sales_kpi.base_currency(), 'EUR', 'after SET sales_kpi.base_currency = EUR, base_currency() is EUR');
RESET sales_kpi.base_currency;
SELECT is(sales_kpi.base_currency(), 'USD', 'after RESET, base_currency() is USD again');

SET sales_kpi.fiscal_year_start_month = 4;
SELECT is(sales_kpi.fiscal_year_start_month(), 4, 'after SET fiscal_year_start_month = 4, the accessor says 4');
RESET sales_kpi.fiscal_year_start_month;

SET sales_kpi.reporting_timezone = 'Asia/Shanghai';
SELECT is(sales_kpi.reporting_timezone(), 'Asia/Shanghai', 'an explicit reporting time zone is returned');
RESET sales_kpi.reporting_timezone;
SET LOCAL TimeZone = 'Europe/Berlin';
SELECT is(sales_kpi.reporting_timezone(), 'Europe/Berlin', 'an unset reporting time zone follows TimeZone');
RESET TimeZone;

-------------------------------------------------------------------------------
-- Security: no SECURITY DEFINER; every non-C function pins its search_path
-------------------------------------------------------------------------------
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace IN ('sales_kpi'::regnamespace, 'sales_kpi_internal'::regnamespace)
       AND p.prosecdef
$$, 'no function of the extension is SECURITY DEFINER');

SELECT isnt_empty($$
    SELECT 1 FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_proc p ON d.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.objid
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
       AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi')
       AND d.deptype = 'e'
       AND l.lanname IN ('sql', 'plpgsql')
$$, 'the extension has SQL and PL/pgSQL functions');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text || ' (' || l.lanname || ')'
      FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_proc p ON d.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.objid
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
       AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi')
       AND d.deptype = 'e'
       AND l.lanname NOT IN ('c', 'internal')
       AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS s(setting)
                        WHERE s.setting LIKE 'search_path=%')
$$, 'every non-C function of the extension sets search_path');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text || ': ' || s.setting
      FROM pg_catalog.pg_proc p, unnest(p.proconfig) AS s(setting)
     WHERE p.pronamespace IN ('sales_kpi'::regnamespace, 'sales_kpi_internal'::regnamespace)
       AND s.setting LIKE 'search_path=%'
       AND (s.setting ~* '(public|\$user)' OR s.setting !~ '^search_path=pg_catalog\M')
$$, 'every pinned search_path starts with pg_catalog and names no public or $user schema');

-- The API and the internals: sales_kpi holds what users call (KPI functions
-- and views, aggregates, summary types with their support functions and
-- accessors, settings, loaders), sales_kpi_internal the engine's helpers
-- and the trigger functions, and nothing else; every role may use it.
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'sales_kpi'::regnamespace
       AND (p.prorettype = 'pg_catalog.trigger'::regtype
            OR pg_catalog.obj_description(p.oid, 'pg_proc') LIKE 'Internal:%')
$$, 'no internal helper or trigger function is in schema sales_kpi');
SELECT is_empty($$
    SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
      FROM pg_catalog.pg_depend d
     WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass
       AND d.refobjid = 'sales_kpi_internal'::regnamespace
       AND NOT (d.classid = 'pg_catalog.pg_proc'::regclass
                AND (SELECT p.prorettype = 'pg_catalog.trigger'::regtype
                            OR pg_catalog.obj_description(p.oid, 'pg_proc') LIKE 'Internal:%'
                       FROM pg_catalog.pg_proc p WHERE p.oid = d.objid))
$$, 'schema sales_kpi_internal holds only internal helpers and trigger functions');
SELECT ok(pg_catalog.has_schema_privilege('public', 'sales_kpi_internal', 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
                           WHERE n.nspname = 'sales_kpi_internal' AND a.privilege_type = 'CREATE'
                             AND a.grantee <> n.nspowner),
          'every role may use schema sales_kpi_internal, none but its owner may create in it');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'sales_kpi_internal'::regnamespace
       AND p.prorettype = 'pg_catalog.trigger'::regtype
       AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'no trigger function may be attached by another role (no EXECUTE for PUBLIC)');

-------------------------------------------------------------------------------
-- Documentation: every function, view and table of the extension is described
-------------------------------------------------------------------------------
SELECT is_empty($$
    SELECT pg_catalog.pg_describe_object(d.classid, d.objid, 0)
      FROM pg_catalog.pg_depend d
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
       AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'sales_kpi')
       AND d.deptype = 'e'
       AND d.classid IN ('pg_catalog.pg_proc'::regclass, 'pg_catalog.pg_class'::regclass)
       AND NOT (d.classid = 'pg_catalog.pg_class'::regclass
                AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = d.objid) NOT IN ('r', 'v'))
       AND pg_catalog.obj_description(d.objid, (SELECT c.relname FROM pg_catalog.pg_class c
                                                 WHERE c.oid = d.classid)) IS NULL
       -- trigger functions and the support functions of types and aggregates
       -- are described by their trigger, type or aggregate
       AND NOT (d.classid = 'pg_catalog.pg_proc'::regclass
                AND (d.objid IN (SELECT p.oid FROM pg_catalog.pg_proc p
                                  WHERE p.prorettype = 'pg_catalog.trigger'::regtype)
                     OR d.objid IN (SELECT unnest(ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend])::oid
                                      FROM pg_catalog.pg_type t)
                     OR d.objid IN (SELECT unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                                        a.aggserialfn, a.aggdeserialfn, a.aggmtransfn,
                                                        a.aggminvtransfn, a.aggmfinalfn])::oid
                                      FROM pg_catalog.pg_aggregate a)))
$$, 'every function, table and view of the extension has a COMMENT');

SELECT * FROM finish();
ROLLBACK;
