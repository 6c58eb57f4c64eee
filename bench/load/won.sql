-- A deal is won: an open deal moves to its pipeline's won stage, half of
-- the time with its final amount.  Picks as forward.sql does.
\set p random(1, 100)
\set r random(1, :deals)
\set a random(1, 100)
BEGIN;
SELECT coalesce(
         CASE WHEN :p <= :hot_share THEN
              (SELECT h.opportunity_id FROM public.bench_hot h
                 JOIN sales_kpi.opportunity o ON o.opportunity_id = h.opportunity_id
                WHERE o.closed_at IS NULL ORDER BY random() LIMIT 1) END,
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.opportunity_id >= :r AND o.closed_at IS NULL ORDER BY o.opportunity_id LIMIT 1),
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.closed_at IS NULL ORDER BY o.opportunity_id LIMIT 1),
         0) AS deal \gset
SELECT sales_kpi.move_stage(o.opportunity_id,
         (SELECT w.stage_id FROM sales_kpi.stage w
           WHERE w.pipeline_id = o.pipeline_id AND w.kind = 'won' LIMIT 1),
         clock_timestamp(),
         CASE WHEN :a <= 50 THEN round(o.amount * (0.8 + 0.3 * random())::numeric, 2) END)
  FROM (SELECT * FROM sales_kpi.opportunity WHERE opportunity_id = :deal FOR NO KEY UPDATE) o;
COMMIT;
