-- One statement moves five deals at once, rows in random order: five deals
-- of the hot set (hot_share % of the time) or five random deals.  Open
-- deals go to their next open stage (won from the last one), closed ones
-- are reopened into their first open stage.  The insert trigger locks the
-- deals in id order, so two such statements wait for each other instead of
-- deadlocking.
\set p random(1, 100)
BEGIN;
\if :p <= :hot_share
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, amount, rep_id)
SELECT o.opportunity_id,
       CASE WHEN s.kind = 'open'
            THEN coalesce((SELECT n.stage_id FROM sales_kpi.stage n
                            WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' AND n.position > s.position
                            ORDER BY n.position LIMIT 1),
                          (SELECT w.stage_id FROM sales_kpi.stage w
                            WHERE w.pipeline_id = o.pipeline_id AND w.kind = 'won' LIMIT 1))
            ELSE (SELECT n.stage_id FROM sales_kpi.stage n
                   WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY n.position LIMIT 1)
       END,
       clock_timestamp(), o.amount, o.owner_id
  FROM sales_kpi.opportunity o
  JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
 WHERE o.opportunity_id IN (SELECT h.opportunity_id FROM public.bench_hot h ORDER BY random() LIMIT 5)
 ORDER BY random();
\else
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, amount, rep_id)
SELECT o.opportunity_id,
       CASE WHEN s.kind = 'open'
            THEN coalesce((SELECT n.stage_id FROM sales_kpi.stage n
                            WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' AND n.position > s.position
                            ORDER BY n.position LIMIT 1),
                          (SELECT w.stage_id FROM sales_kpi.stage w
                            WHERE w.pipeline_id = o.pipeline_id AND w.kind = 'won' LIMIT 1))
            ELSE (SELECT n.stage_id FROM sales_kpi.stage n
                   WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY n.position LIMIT 1)
       END,
       clock_timestamp(), o.amount, o.owner_id
  FROM sales_kpi.opportunity o
  JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
 WHERE o.opportunity_id IN (SELECT 1 + floor(random() * :deals)::bigint FROM generate_series(1, 5))
 ORDER BY random();
\endif
COMMIT;
