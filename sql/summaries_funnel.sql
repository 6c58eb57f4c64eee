-- funnel_agg: a funnel worked out by hand, NULL handling and every error.
\set SHOW_CONTEXT never
SET extra_float_digits = 0;

-- ten deals by highest position reached and outcome:
--   position 1: 2 deals (lost), position 2: 3 (1 open), position 3: 1 (lost),
--   position 4 (the last open stage): 4, of which 3 won
-- reached: 1 -> 10, 2 -> 8, 3 -> 5, 4 -> 4; won from any stage up to 4: 3
CREATE TEMP TABLE deals (pos int, won boolean);
INSERT INTO deals VALUES (1, false), (1, false), (2, false), (2, false), (2, NULL),
                         (3, false), (4, true), (4, true), (4, true), (4, false);
SELECT * FROM sales_kpi.stages((SELECT sales_kpi.funnel_agg(pos, won) FROM deals));
SELECT sales_kpi.reached(f, 2), sales_kpi.conversion(f, 1, 4), sales_kpi.conversion(f, 2, 3),
       sales_kpi.win_rate_from(f, 3), sales_kpi.reached(f, 64), sales_kpi.conversion(f, 5, 6) AS beyond, f
  FROM (SELECT sales_kpi.funnel_agg(pos, won) AS f FROM deals) x;
-- without outcomes; NULL positions skipped
SELECT sales_kpi.funnel_agg(p) FROM (VALUES (3), (NULL), (1)) v(p);
-- errors
SELECT sales_kpi.funnel_agg(0);
SELECT sales_kpi.funnel_agg(65, true);
SELECT sales_kpi.reached(sales_kpi.funnel_agg(1), 0);
SELECT sales_kpi.conversion(sales_kpi.funnel_agg(1), 3, 2);
SELECT '{"v":1,"positions":[[2,3,4]]}'::sales_kpi.funnel;
SELECT '{"v":1,"positions":[[2,3,1],[2,1,0]]}'::sales_kpi.funnel;
SELECT '{"v":1,"positions":[[70,3,1]]}'::sales_kpi.funnel;
