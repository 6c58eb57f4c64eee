-- A correction of a deal's history: its newest stage event moved back by a
-- minute (UPDATE stage_event) or, one time in four, deleted when the deal
-- has older events (DELETE FROM stage_event).  The statement triggers lock
-- the deal and re-derive its stage from what the history says afterwards.
\set p random(1, 100)
\set r random(1, :deals)
\set d random(1, 4)
BEGIN;
SELECT coalesce(
         CASE WHEN :p <= :hot_share THEN
              (SELECT h.opportunity_id FROM public.bench_hot h ORDER BY random() LIMIT 1) END,
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.opportunity_id >= :r ORDER BY o.opportunity_id LIMIT 1),
         (SELECT min(o.opportunity_id) FROM sales_kpi.opportunity o),
         0) AS deal \gset
\if :d = 1
DELETE FROM sales_kpi.stage_event e
 WHERE e.stage_event_id = (SELECT n.stage_event_id FROM sales_kpi.stage_event n
                            WHERE n.opportunity_id = :deal
                            ORDER BY n.entered_at DESC, n.stage_event_id DESC LIMIT 1)
   AND (SELECT count(*) FROM sales_kpi.stage_event c WHERE c.opportunity_id = :deal) > 1;
\else
UPDATE sales_kpi.stage_event e
   SET entered_at = e.entered_at - interval '1 minute'
 WHERE e.stage_event_id = (SELECT n.stage_event_id FROM sales_kpi.stage_event n
                            WHERE n.opportunity_id = :deal
                            ORDER BY n.entered_at DESC, n.stage_event_id DESC LIMIT 1);
\endif
COMMIT;
