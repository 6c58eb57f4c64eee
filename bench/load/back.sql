-- A deal moves back: an open deal past its first stage to a random earlier
-- open stage (a regression).  Picks as forward.sql does, among open deals
-- with an earlier stage; the move statement locks the deal first and
-- decides from the row it locked (a deal closed meanwhile is reopened into
-- its first open stage, one at the first stage enters it again).
\set p random(1, 100)
\set r random(1, :deals)
BEGIN;
SELECT coalesce(
         CASE WHEN :p <= :hot_share THEN
              (SELECT h.opportunity_id FROM public.bench_hot h
                 JOIN sales_kpi.opportunity o ON o.opportunity_id = h.opportunity_id
                 JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
                WHERE o.closed_at IS NULL
                  AND s.position > (SELECT min(f.position) FROM sales_kpi.stage f
                                     WHERE f.pipeline_id = s.pipeline_id AND f.kind = 'open')
                ORDER BY random() LIMIT 1) END,
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
            JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
           WHERE o.opportunity_id >= :r AND o.closed_at IS NULL
             AND s.position > (SELECT min(f.position) FROM sales_kpi.stage f
                                WHERE f.pipeline_id = s.pipeline_id AND f.kind = 'open')
           ORDER BY o.opportunity_id LIMIT 1),
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.closed_at IS NULL ORDER BY o.opportunity_id LIMIT 1),
         0) AS deal \gset
SELECT sales_kpi.move_stage(o.opportunity_id,
         CASE WHEN s.kind = 'open'
              THEN coalesce((SELECT n.stage_id FROM sales_kpi.stage n
                              WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' AND n.position < s.position
                              ORDER BY random() LIMIT 1),
                            s.stage_id)
              ELSE (SELECT n.stage_id FROM sales_kpi.stage n
                     WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY n.position LIMIT 1)
         END,
         clock_timestamp())
  FROM (SELECT * FROM sales_kpi.opportunity WHERE opportunity_id = :deal FOR NO KEY UPDATE) o
  JOIN sales_kpi.stage s ON s.stage_id = o.stage_id;
COMMIT;
