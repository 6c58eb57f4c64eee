-- Two deals in one transaction, one statement each, in random order (a
-- rep working through two deals): transactions taking the same two deals
-- in opposite orders must conflict, and PostgreSQL breaks the cycle with a
-- deadlock error (40P01) that pgbench retries (--max-tries).  Conflicting
-- by design: not in the default mix (bench/load.sh --mix adds it).
\set p random(1, 100)
\set r random(1, :deals)
BEGIN;
SELECT coalesce(min(d) FILTER (WHERE n = 1), 0) AS first_deal, coalesce(min(d) FILTER (WHERE n = 2), 0) AS second_deal
  FROM (SELECT d, row_number() OVER (ORDER BY random()) AS n
          FROM (SELECT h.opportunity_id AS d FROM public.bench_hot h WHERE :p <= :hot_share
                UNION
                SELECT o.opportunity_id FROM sales_kpi.opportunity o
                 WHERE :p > :hot_share AND o.opportunity_id BETWEEN :r AND :r + 1) c) x \gset
SELECT sales_kpi.move_stage(o.opportunity_id,
         (SELECT n.stage_id FROM sales_kpi.stage n
           WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY random() LIMIT 1),
         clock_timestamp())
  FROM (SELECT * FROM sales_kpi.opportunity WHERE opportunity_id = :first_deal FOR NO KEY UPDATE) o;
SELECT sales_kpi.move_stage(o.opportunity_id,
         (SELECT n.stage_id FROM sales_kpi.stage n
           WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY random() LIMIT 1),
         clock_timestamp())
  FROM (SELECT * FROM sales_kpi.opportunity WHERE opportunity_id = :second_deal FOR NO KEY UPDATE) o;
COMMIT;
