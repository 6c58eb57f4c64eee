-- A deal is lost: an open deal moves to its pipeline's lost stage and gets
-- a lost reason (a second write to the deal in the same transaction).
-- Picks as forward.sql does.
\set p random(1, 100)
\set r random(1, :deals)
\set why random(1, 5)
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
         (SELECT l.stage_id FROM sales_kpi.stage l
           WHERE l.pipeline_id = o.pipeline_id AND l.kind = 'lost' LIMIT 1),
         clock_timestamp())
  FROM (SELECT * FROM sales_kpi.opportunity WHERE opportunity_id = :deal FOR NO KEY UPDATE) o;
UPDATE sales_kpi.opportunity
   SET lost_reason = (ARRAY['price', 'competitor', 'no budget', 'no decision', 'timing'])[:why]
 WHERE opportunity_id = :deal;
COMMIT;
