-- Conflicting by design (not in the default mix): one UPDATE edits five
-- deals found in random order, without locking them first.  PostgreSQL
-- locks the rows in the order the plan finds them, so against a statement
-- that locks the same deals in id order (a bulk stage_event insert, whose
-- trigger calls lock_deals, or bulk_edit.sql) it can deadlock: 40P01, which
-- pgbench retries with --max-tries.
\set p random(1, 100)
BEGIN;
\if :p <= :hot_share
UPDATE sales_kpi.opportunity o
   SET expected_close = greatest(coalesce(o.expected_close, current_date), current_date) + 7
 WHERE o.opportunity_id IN (SELECT h.opportunity_id FROM public.bench_hot h ORDER BY random() LIMIT 5);
\else
UPDATE sales_kpi.opportunity o
   SET expected_close = greatest(coalesce(o.expected_close, current_date), current_date) + 7
 WHERE o.opportunity_id IN (SELECT 1 + floor(random() * :deals)::bigint FROM generate_series(1, 5));
\endif
COMMIT;
