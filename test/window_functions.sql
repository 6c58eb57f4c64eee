-- stage_transition and mrr_movement on demo data against plain-SQL
-- references written with lag() and a running flag.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(4);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(2000, 9, '2026-10-31', replace => true)$$, 'demo data loads');

SELECT is((SELECT count(*) FROM (
    SELECT sales_kpi.stage_transition(s.position, s.kind) OVER w AS got,
           CASE WHEN lag(s.kind) OVER w IS NULL THEN 'created'
                WHEN s.kind IN ('won', 'lost') THEN s.kind
                WHEN lag(s.kind) OVER w <> 'open' THEN 'reopened'
                WHEN s.position = lag(s.position) OVER w + 1 THEN 'advanced'
                WHEN s.position > lag(s.position) OVER w + 1 THEN 'skipped'
                ELSE 'regressed' END AS expected
      FROM sales_kpi.stage_event e JOIN sales_kpi.stage s USING (stage_id)
    WINDOW w AS (PARTITION BY e.opportunity_id ORDER BY e.entered_at, e.stage_event_id)) x
   WHERE got IS DISTINCT FROM expected), 0::bigint,
   'stage_transition labels every demo stage event as the lag() reference does');

CREATE TEMP TABLE mrr AS
SELECT account_id, month, mrr,
       sales_kpi.mrr_movement(mrr, month) OVER w AS got,
       lag(mrr) OVER w AS prev, lag(month) OVER w AS prev_month,
       coalesce(bool_or(mrr > 0) OVER (PARTITION BY account_id ORDER BY month
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS had
  FROM sales_kpi.recurring_revenue
WINDOW w AS (PARTITION BY account_id ORDER BY month);
SELECT is((SELECT count(*) FROM (
    SELECT got, CASE WHEN mrr > 0 AND p = 0 THEN CASE WHEN had THEN 'reactivation' ELSE 'new' END
                     WHEN mrr = 0 THEN CASE WHEN p > 0 THEN 'churn' ELSE 'flat' END
                     WHEN mrr > p THEN 'expansion' WHEN mrr < p THEN 'contraction' ELSE 'flat' END AS expected
      FROM (SELECT m.*, CASE WHEN prev_month IS NULL OR prev_month < month - interval '1 month' THEN 0 ELSE prev END AS p
              FROM mrr m) y) x
   WHERE got IS DISTINCT FROM expected), 0::bigint,
   'mrr_movement(mrr, month) labels every demo month as the lag() reference does, gaps counting as zero');
SELECT ok((SELECT count(DISTINCT got) FROM mrr) = 6, 'the demo data shows all six movements');

SELECT * FROM finish();
ROLLBACK;
