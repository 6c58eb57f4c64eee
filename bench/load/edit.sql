-- A rep edits a deal: new amount and expected close date, one time in five
-- a forecast category override too (a snapshot in opportunity_history,
-- written by the deal's update trigger).  Picks an open deal as
-- forward.sql does; the UPDATE locks the deal.  The snapshot is taken at
-- now(), the start of the transaction: when a concurrent writer committed
-- a later snapshot of the deal first, the deal keeps that one and the edit
-- stays in the history only.  The last statement records which happened
-- (public.bench_edit, for bench/load.sh's report).
\set p random(1, 100)
\set r random(1, :deals)
\set c random(1, 100)
\set days random(0, 45)
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
UPDATE sales_kpi.opportunity
   SET amount = round(amount * (0.85 + 0.3 * random())::numeric, 2),
       expected_close = greatest(coalesce(expected_close, current_date), current_date) + :days,
       forecast_category = CASE WHEN :c <= 20
                                THEN (ARRAY['pipeline', 'best_case', 'commit'])[1 + floor(3 * random())::int]
                                ELSE forecast_category END
 WHERE opportunity_id = :deal;
INSERT INTO public.bench_edit (opportunity_id, kept)
SELECT o.opportunity_id, o.snapshot_at = now()
  FROM sales_kpi.opportunity o
 WHERE o.opportunity_id = :deal;
COMMIT;
