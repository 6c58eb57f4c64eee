-- A deal moves forward: an open deal to its pipeline's next open stage, or
-- to won from the last one (a quarter of the moves with a new amount).
-- Picks an open deal of the hot set (hot_share % of the time) or the first
-- open deal from a random id on.  The move statement locks the deal and
-- decides the target from the row it locked; should the deal have closed
-- in the meantime, it is reopened into its first open stage.
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
         CASE WHEN s.kind = 'open'
              THEN coalesce((SELECT n.stage_id FROM sales_kpi.stage n
                              WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' AND n.position > s.position
                              ORDER BY n.position LIMIT 1),
                            (SELECT w.stage_id FROM sales_kpi.stage w
                              WHERE w.pipeline_id = o.pipeline_id AND w.kind = 'won' LIMIT 1))
              ELSE (SELECT n.stage_id FROM sales_kpi.stage n
                     WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY n.position LIMIT 1)
         END,
         clock_timestamp(),
         CASE WHEN :a <= 25 THEN round(o.amount * (0.9 + 0.3 * random())::numeric, 2) END)
  FROM (SELECT * FROM sales_kpi.opportunity WHERE opportunity_id = :deal FOR NO KEY UPDATE) o
  JOIN sales_kpi.stage s ON s.stage_id = o.stage_id;
COMMIT;
