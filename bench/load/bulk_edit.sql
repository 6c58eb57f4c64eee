-- One transaction edits five deals at once: their expected close moves a
-- week out (a snapshot each).  Five deals of the hot set (hot_share % of
-- the time) or five random deals.  It first locks the five rows in id
-- order, as the extension's triggers do (lock_deals), so that it waits for
-- a concurrent bulk move or edit of the same deals instead of deadlocking
-- with it: an UPDATE alone locks rows in the order its plan finds them
-- (bulk_edit_unordered.sql).
\set p random(1, 100)
BEGIN;
\if :p <= :hot_share
SELECT array_agg(opportunity_id ORDER BY opportunity_id)::text AS ids
  FROM (SELECT h.opportunity_id FROM public.bench_hot h ORDER BY random() LIMIT 5) x \gset
\else
SELECT array_agg(DISTINCT 1 + floor(random() * :deals)::bigint)::text AS ids
  FROM generate_series(1, 5) \gset
\endif
SELECT count(*)
  FROM (SELECT o.opportunity_id FROM sales_kpi.opportunity o
         WHERE o.opportunity_id = ANY (':ids'::bigint[])
         ORDER BY o.opportunity_id
           FOR NO KEY UPDATE) l;
UPDATE sales_kpi.opportunity o
   SET expected_close = greatest(coalesce(o.expected_close, current_date), current_date) + 7
 WHERE o.opportunity_id = ANY (':ids'::bigint[]);
COMMIT;
