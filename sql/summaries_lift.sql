-- lift_agg: a 2x2 table worked out by hand, the zero-cell correction, and
-- every error.
\set SHOW_CONTEXT never
SET extra_float_digits = 0;

-- demo held (factor) and deal won (outcome):
--   with demo:    30 won, 20 lost  -> rate 0.6
--   without demo: 10 won, 40 lost  -> rate 0.2;  lift 3
--   odds ratio (30 x 40) / (20 x 10) = 6; se of ln OR = sqrt(1/30+1/20+1/10+1/40) = 0.4564
--   95% interval exp(ln 6 -/+ 1.96 x 0.4564) = [2.453, 14.68]
CREATE TEMP TABLE deals AS
SELECT g <= 50 AS demo, (g <= 30) OR (g > 50 AND g <= 60) AS won FROM generate_series(1, 100) g;
SELECT sales_kpi.rate_with(l), sales_kpi.rate_without(l), sales_kpi.lift(l), sales_kpi.odds_ratio(l),
       round(sales_kpi.odds_ratio_lower(l)::numeric, 3) AS or_lower,
       round(sales_kpi.odds_ratio_upper(l)::numeric, 3) AS or_upper,
       round(sales_kpi.odds_ratio_lower(l, 0.9)::numeric, 3) AS or_lower_90, l
  FROM (SELECT sales_kpi.lift_agg(won, demo) AS l FROM deals) x;
-- a zero cell (no lost deal with a demo): 0.5 is added to every cell,
-- (30.5 x 40.5) / (0.5 x 10.5) = 235.2857
SELECT round(sales_kpi.odds_ratio(l)::numeric, 4) AS odds_ratio, sales_kpi.odds_ratio_upper(l) < 'infinity' AS finite_bound, l
  FROM (SELECT sales_kpi.lift_agg(won, demo) AS l FROM deals WHERE NOT (demo AND NOT won)) x;
-- one side empty: no comparison
SELECT sales_kpi.rate_with(l), sales_kpi.rate_without(l), sales_kpi.lift(l), sales_kpi.odds_ratio(l)
  FROM (SELECT sales_kpi.lift_agg(won, demo) AS l FROM deals WHERE demo) x;
-- NULLs skipped; rollup
SELECT sales_kpi.lift_agg(o, f) FROM (VALUES (true, NULL::boolean), (NULL, true), (true, true)) v(o, f);
SELECT sales_kpi.rollup(l)::text = (SELECT sales_kpi.lift_agg(won, demo)::text FROM deals) AS rollup_equals_whole
  FROM (SELECT sales_kpi.lift_agg(won, demo) AS l FROM deals GROUP BY won) x;
-- errors
SELECT sales_kpi.odds_ratio_lower(sales_kpi.lift_agg(true, true), 1.2);
SELECT '{"v":1,"with_true":-1,"with_false":0,"without_true":0,"without_false":0}'::sales_kpi.lift;
SELECT '{"v":1,"with_true":1,"with_false":0,"without_true":0}'::sales_kpi.lift;
