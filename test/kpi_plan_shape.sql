-- The plans of the KPI engine's passes at a scale where a per-deal plan
-- shows (30,000 deals): each query text is explained with its parameters,
-- executed, and its plan nodes read.  A pass reads the deal table in one
-- scan (per worker process), never by one index probe per row of another
-- node, and the planner sees how many rows it makes (no function boundary
-- hides them: the estimate is within 10x of the count).  How the small
-- breakdown tables are joined is the planner's choice by cost; the history
-- is read per deal only where the pass says so (moved or changed since
-- as_of, first snapshot, first entry).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(10);
SET LOCAL TimeZone = 'UTC';
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(30000, 7, '2026-10-31', replace => true)$$, 'demo data loads');
ANALYZE;

-- every node of a plan (EXPLAIN (ANALYZE, FORMAT JSON) output)
CREATE FUNCTION pg_temp.plan_nodes(plan jsonb)
RETURNS TABLE (node_type text, relation text, loops numeric)
LANGUAGE sql AS $$
    SELECT n ->> 'Node Type', n ->> 'Relation Name', (n ->> 'Actual Loops')::numeric
      FROM jsonb_path_query(plan, 'strict $.**') AS n
     WHERE jsonb_typeof(n) = 'object' AND n ? 'Node Type'
$$;

-- the nodes of a plan that read the deal table per row of another node: a
-- scan of it run more than a few times (a parallel scan runs once per
-- process)
CREATE FUNCTION pg_temp.deal_table_reads(plan jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(n.node_type || ' on ' || n.relation || ' x' || n.loops, ', '), '')
      FROM pg_temp.plan_nodes(plan) n
     WHERE n.relation = 'opportunity' AND n.loops > 8
$$;

-- the executed plan of a query with text parameters (cast in the query)
CREATE FUNCTION pg_temp.plan_of(query text, VARIADIC params text[]) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || query
        INTO plan USING params[1], params[2], params[3], params[4];
    RETURN plan;
END;
$$;

CREATE TEMP TABLE pass (name text, query text, params text[]);
INSERT INTO pass
SELECT 'closed deals, a year by ' || d, format('SELECT * FROM (%s) x', sales_kpi_internal.closed_deal_query(d)),
       ARRAY['2025-10-31', '2026-10-31', '2026-10-31', d]
  FROM unnest(ARRAY['rep', 'industry', 'pipeline']) d
UNION ALL
-- nothing moved after as_of (the caller checked): the text without that part
SELECT 'closed deals, a year by ' || d || ', nothing moved since',
       format('SELECT * FROM (%s) x', sales_kpi_internal.closed_deal_query(d, false)),
       ARRAY['2025-10-31', '2026-10-31', '2026-10-31', d]
  FROM unnest(ARRAY['company', 'team']) d
UNION ALL
-- as_of in the past: the deals that moved since are looked up in the history
SELECT 'closed deals, a quarter as of a month after it, by ' || d,
       format('SELECT * FROM (%s) x', sales_kpi_internal.closed_deal_query(d)),
       ARRAY['2026-01-01', '2026-04-01', '2026-04-30', d]
  FROM unnest(ARRAY['rep', 'company']) d
UNION ALL
SELECT 'deal states, a year by ' || d, format('SELECT * FROM (%s) x', sales_kpi_internal.deal_state_query(d)),
       ARRAY['2025-10-31', '2026-10-31', '2026-10-31', d]
  FROM unnest(ARRAY['rep', 'segment']) d
UNION ALL
SELECT 'created deals, a year by ' || d, format('SELECT * FROM (%s) x', sales_kpi_internal.created_deal_query(d)),
       ARRAY['2025-10-31', '2026-10-31', '2026-10-31', d]
  FROM unnest(ARRAY['team', 'region']) d;

-- the executed plan of a pass: its texts take timestamptz, timestamptz,
-- timestamptz, text, the period bounds and the reporting time zone
CREATE FUNCTION pg_temp.pass_plan(name text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    p record;
    plan jsonb;
BEGIN
    SELECT * INTO p FROM pass WHERE pass.name = pass_plan.name;
    EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || p.query
        INTO plan
        USING p.params[1]::timestamptz, p.params[2]::timestamptz, p.params[3]::timestamptz, p.params[4],
              NULL::timestamptz[], 'UTC'::text;
    RETURN plan;
END;
$$;

-- the estimated and the actual rows of a pass's top node
CREATE FUNCTION pg_temp.estimate_of(name text, OUT estimated numeric, OUT actual numeric) LANGUAGE sql AS $$
    SELECT (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric,
           (plan -> 0 -> 'Plan' ->> 'Actual Rows')::numeric * (plan -> 0 -> 'Plan' ->> 'Actual Loops')::numeric
      FROM pg_temp.pass_plan(name) plan
$$;

SELECT is((SELECT string_agg(p.name || ': ' || r, '; ')
             FROM pass p, LATERAL pg_temp.deal_table_reads(pg_temp.pass_plan(p.name)) r
            WHERE p.name LIKE 'closed%' AND r <> ''), NULL,
          'the closed-deal pass reads the deal table in one scan');
SELECT is((SELECT string_agg(p.name || ': ' || r, '; ')
             FROM pass p, LATERAL pg_temp.deal_table_reads(pg_temp.pass_plan(p.name)) r
            WHERE p.name LIKE 'deal states%' AND r <> ''), NULL,
          'the cohort pass reads the deal table in one scan');
SELECT is((SELECT string_agg(p.name || ': ' || r, '; ')
             FROM pass p, LATERAL pg_temp.deal_table_reads(pg_temp.pass_plan(p.name)) r
            WHERE p.name LIKE 'created%' AND r <> ''), NULL,
          'the created-deal pass reads the deal table in one scan');
SELECT is((SELECT string_agg(format('%s: %s estimated, %s made', p.name, e.estimated, e.actual), '; ')
             FROM pass p, LATERAL pg_temp.estimate_of(p.name) e
            WHERE e.actual < 1000 OR e.estimated NOT BETWEEN e.actual / 10 AND e.actual * 10), NULL,
          'the planner estimates the rows of every pass within 10x (and each makes over 1,000 rows)');

-- the open pipeline: $1 as_of, $2 dimension, $3 the rate day
CREATE FUNCTION pg_temp.open_plan(d text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || sales_kpi_internal.open_deal_query(d)
        INTO plan USING timestamptz '2026-10-31', d, date '2026-10-31';
    RETURN plan;
END;
$$;
SELECT is((SELECT string_agg(d || ': ' || r, '; ')
             FROM unnest(ARRAY['rep', 'industry', 'pipeline']) d,
                  LATERAL pg_temp.deal_table_reads(pg_temp.open_plan(d)) r
            WHERE r <> ''), NULL,
          'the open-pipeline pass reads the deal table in one scan');

-- the reference: a per-deal look-up, as 0.1.0 made them, is what the
-- checks above catch
SELECT isnt((SELECT pg_temp.deal_table_reads(pg_temp.plan_of($q$
                 SELECT e.opportunity_id,
                        (SELECT o.owner_id FROM sales_kpi.opportunity o WHERE o.opportunity_id = e.opportunity_id)
                   FROM sales_kpi.stage_event e WHERE e.entered_at >= $1::timestamptz OFFSET 0$q$,
                 '2026-06-30'))), '',
            'a per-row look-up of the deal shows as a scan of opportunity run once per row');
INSERT INTO pass
VALUES ('closed deals through a function call, a quarter',
        'SELECT * FROM sales_kpi_internal.closed_deal_rows($1, $2, $3, $4)',
        ARRAY['2026-07-01', '2026-10-01', '2026-10-31', 'rep']);
SELECT ok((SELECT e.estimated NOT BETWEEN e.actual / 10 AND e.actual * 10
             FROM pg_temp.estimate_of('closed deals through a function call, a quarter') e),
          'a function boundary hides the rows of a pass: the estimate check above would see it');

-- the walk of the funnel over every deal reads the stage history once
SELECT is((SELECT count(*) FROM pg_temp.plan_nodes(pg_temp.plan_of(
                 'SELECT * FROM sales_kpi_internal.funnel_deals($1::timestamptz, ''-infinity'', ''infinity'')',
                 '2026-10-31')) n
            WHERE n.node_type = 'Function Scan' AND n.loops = 1), 1::bigint,
          'funnel_deals runs once for every deal');
SELECT cmp_ok((SELECT count(*) FROM sales_kpi_internal.funnel_deals('2026-10-31', '-infinity', 'infinity')), '>', 20000::bigint,
              'and gives a row for each deal with a stage event');

SELECT * FROM finish();
ROLLBACK;
