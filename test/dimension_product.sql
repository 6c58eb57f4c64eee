-- The product breakdown: every KPI that breaks down by a deal attribute
-- takes dimension => 'product', its groups are the products deals name
-- (a deal without one is '(none)'), and the groups add up to the company,
-- checked against plain SQL over the tables.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SET LOCAL TimeZone = 'UTC';
SELECT plan(7);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 31, '2026-10-31', replace => true)$$, 'demo data loads');
-- one deal in twenty names no product
UPDATE sales_kpi.opportunity SET product = NULL WHERE opportunity_id % 20 = 0;

SELECT is((SELECT count(DISTINCT product) FROM sales_kpi.opportunity), 7::bigint,
          'the demo names seven products');

-- every public KPI with a dimension argument, called for the product
-- breakdown (those that break down by rep only refuse it: quotas and
-- forecast submissions belong to reps, not deals)
CREATE TEMP TABLE product_calls AS
SELECT p.proname,
       format('SELECT dimension_value FROM sales_kpi.%I(dimension => ''product''%s)', p.proname,
              CASE WHEN 'as_of' = ANY (p.proargnames) THEN ', as_of => ''2026-10-31 23:00+00''' ELSE '' END) AS call
  FROM pg_proc p
  JOIN pg_class c ON c.relname = p.proname AND c.relnamespace = p.pronamespace AND c.relkind = 'v'
 WHERE p.pronamespace = 'sales_kpi'::regnamespace AND 'dimension' = ANY (p.proargnames)
   AND p.proname NOT IN ('quota_attainment', 'forecast_accuracy');
CREATE TEMP TABLE product_values (proname name, dimension_value text);
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM product_calls LOOP
        EXECUTE format('INSERT INTO product_values SELECT %L, v.dimension_value FROM (%s) v', c.proname, c.call);
    END LOOP;
END;
$$;
SELECT cmp_ok((SELECT count(*) FROM product_calls), '>=', 20::bigint, 'at least 20 KPIs take the product breakdown');
SELECT is_empty($$SELECT proname, dimension_value FROM product_values
                   WHERE dimension_value NOT IN (SELECT coalesce(product, '(none)') FROM sales_kpi.opportunity)$$,
                'every group of every KPI is a product the deals name, or (none)');
SELECT set_eq($$SELECT proname FROM product_values$$, $$SELECT proname FROM product_calls$$,
              'every KPI returns product groups on the demo');

-- win_rate by product against plain SQL: the demo ends at as_of, so the
-- closes of a year are the deals' rows
SELECT set_eq($$SELECT dimension_value, closed, won, lost
                  FROM sales_kpi.win_rate('2025-11-01', '2026-11-01', 'product', '2026-10-31 23:00+00')$$,
              $$SELECT coalesce(o.product, '(none)') AS product, count(*) AS closed,
                       count(*) FILTER (WHERE s.kind = 'won') AS won, count(*) FILTER (WHERE s.kind = 'lost') AS lost
                  FROM sales_kpi.opportunity o JOIN sales_kpi.stage s USING (stage_id)
                 WHERE o.closed_at >= '2025-11-01' AND o.closed_at < '2026-11-01'
                 GROUP BY 1$$,
              'win_rate by product equals a count of the closed deals by product');
-- the open pipeline by product adds up to the company's
SELECT is((SELECT sum(amount) FROM sales_kpi.stage_pipeline_value('2026-10-31 23:00+00', 'product')),
          (SELECT sum(amount) FROM sales_kpi.stage_pipeline_value('2026-10-31 23:00+00', 'company')),
          'the open pipeline by product adds up to the company''s');

SELECT * FROM finish();
ROLLBACK;
