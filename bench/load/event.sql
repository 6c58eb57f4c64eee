-- A CRM sync writes a stage event directly (INSERT INTO stage_event, no
-- move_stage): half of the time the deal's newest event (a random open
-- stage, now), half of the time a back-dated one between the deal's
-- creation and its current stage entry (older history, which changes
-- nothing current).  The statement triggers lock the deal and re-derive it.
\set p random(1, 100)
\set r random(1, :deals)
\set b random(1, 100)
BEGIN;
SELECT coalesce(
         CASE WHEN :p <= :hot_share THEN
              (SELECT h.opportunity_id FROM public.bench_hot h ORDER BY random() LIMIT 1) END,
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.opportunity_id >= :r ORDER BY o.opportunity_id LIMIT 1),
         (SELECT min(o.opportunity_id) FROM sales_kpi.opportunity o),
         0) AS deal \gset
\if :b <= 50
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, amount, rep_id)
SELECT o.opportunity_id,
       (SELECT n.stage_id FROM sales_kpi.stage n
         WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY random() LIMIT 1),
       clock_timestamp(), o.amount, o.owner_id
  FROM sales_kpi.opportunity o
 WHERE o.opportunity_id = :deal;
\else
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, amount, rep_id)
SELECT o.opportunity_id,
       (SELECT n.stage_id FROM sales_kpi.stage n
         WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY random() LIMIT 1),
       o.created_at + (greatest(coalesce(o.stage_entered_at, o.created_at), o.created_at) - o.created_at) * random(),
       o.amount, o.owner_id
  FROM sales_kpi.opportunity o
 WHERE o.opportunity_id = :deal;
\endif
COMMIT;
