-- A closed deal (won or lost) is reopened into one of its pipeline's first
-- three open stages.  Picks a closed deal of the hot set (hot_share % of
-- the time) or the first closed deal from a random id on; the move locks
-- the deal first.
\set p random(1, 100)
\set r random(1, :deals)
BEGIN;
SELECT coalesce(
         CASE WHEN :p <= :hot_share THEN
              (SELECT h.opportunity_id FROM public.bench_hot h
                 JOIN sales_kpi.opportunity o ON o.opportunity_id = h.opportunity_id
                WHERE o.closed_at IS NOT NULL ORDER BY random() LIMIT 1) END,
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.opportunity_id >= :r AND o.closed_at IS NOT NULL ORDER BY o.opportunity_id LIMIT 1),
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.closed_at IS NOT NULL ORDER BY o.opportunity_id LIMIT 1),
         0) AS deal \gset
SELECT sales_kpi.move_stage(o.opportunity_id,
         coalesce((SELECT n.stage_id FROM sales_kpi.stage n
                    WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open'
                    ORDER BY n.position LIMIT 1 OFFSET floor(3 * random())::int),
                  (SELECT n.stage_id FROM sales_kpi.stage n
                    WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open'
                    ORDER BY n.position LIMIT 1)),
         clock_timestamp())
  FROM (SELECT * FROM sales_kpi.opportunity WHERE opportunity_id = :deal FOR NO KEY UPDATE) o;
COMMIT;
