-- weighted_pipeline and winloss: exact outputs, NULL handling, text forms,
-- and every error, message by message.
\set SHOW_CONTEXT never
SET extra_float_digits = 0;

-- exact: equal to sum(amount * probability) to the last digit
SELECT sales_kpi.weighted_pipeline(a, p) AS weighted, sum(a * p) AS reference
  FROM (VALUES (100.50, 0.25), (200, 0.1), (NULL, 0.5), (33.333, 1), (7, NULL)) v(a, p);
-- no rows, only NULL rows: NULL
SELECT sales_kpi.weighted_pipeline(a, p) FROM (VALUES (1.0, 0.5)) v(a, p) WHERE false;
SELECT sales_kpi.weighted_pipeline(NULL::numeric, 0.5);
-- large values keep every digit
SELECT sales_kpi.weighted_pipeline(a, 0.123456789) AS weighted, sum(a * 0.123456789) AS reference
  FROM (VALUES (99999999999999.99), (12345678901234.56)) v(a);
-- bad arguments name the argument and the value
SELECT sales_kpi.weighted_pipeline(-1, 0.5);
SELECT sales_kpi.weighted_pipeline(1, 1.5);
SELECT sales_kpi.weighted_pipeline(1, -0.01);
SELECT sales_kpi.weighted_pipeline('NaN', 0.5);
SELECT sales_kpi.weighted_pipeline('Infinity', 0.5);
SELECT sales_kpi.weighted_pipeline(1, 'NaN');
SELECT sales_kpi.weighted_pipeline(1e30, 1.0);
SELECT sales_kpi.weighted_pipeline(1e20, 0.1) FROM generate_series(1, 3);
-- at most 38 digits, counting the decimals (what the text form reads
-- back): beyond that an error, never a wrapped or rounded sum
SELECT sales_kpi.weighted_pipeline(99999999999999999999999999999999999999, 1);
SELECT sales_kpi.weighted_pipeline(1e37, 1.0);
SELECT sales_kpi.weighted_pipeline(9e36, 1) FROM generate_series(1, 30);

-- weighted_sum text form
SELECT '{"v":1,"n":2,"sum":"12.5000"}'::sales_kpi.weighted_sum;
SELECT ' { "v" : 1 , "n" : 0 , "sum" : "0" } '::sales_kpi.weighted_sum;
SELECT '{"v":2,"n":2,"sum":"1"}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":2}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"sum":"1","n":2}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":2,"sum":1}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":2,"sum":"1e5"}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":-1,"sum":"0"}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":0,"sum":"3"}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":2,"sum":"-3"}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":2,"sum":"3"} trailing'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":99999999999999999999,"sum":"3"}'::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":1,"sum":"123456789012345678901234567890123456789"}'::sales_kpi.weighted_sum;
SELECT ''::sales_kpi.weighted_sum;

-- winloss: counts, rates, Wilson interval, amounts
SELECT sales_kpi.won_count(w), sales_kpi.lost_count(w), sales_kpi.win_rate(w),
       round(sales_kpi.wilson_lower(w)::numeric, 6) AS wilson_lower,
       round(sales_kpi.wilson_upper(w)::numeric, 6) AS wilson_upper,
       round(sales_kpi.wilson_lower(w, 0.99)::numeric, 6) AS lower_99,
       sales_kpi.won_amount(w), sales_kpi.avg_won_amount(w), w
  FROM (SELECT sales_kpi.winloss_agg(won, amount) AS w
          FROM (VALUES (true, 10.5), (false, 3), (true, NULL), (NULL, 99), (true, 20)) v(won, amount)) s;
-- all won, all lost: the interval stays inside [0, 1]
SELECT round(sales_kpi.wilson_lower(sales_kpi.winloss_agg(true))::numeric, 6) AS all_won_lower,
       sales_kpi.wilson_upper(sales_kpi.winloss_agg(true)) AS all_won_upper
  FROM generate_series(1, 20);
SELECT sales_kpi.wilson_lower(sales_kpi.winloss_agg(false)) AS all_lost_lower,
       round(sales_kpi.wilson_upper(sales_kpi.winloss_agg(false))::numeric, 6) AS all_lost_upper
  FROM generate_series(1, 20);
-- nothing closed: NULL rates, zero counts
SELECT sales_kpi.win_rate(w), sales_kpi.wilson_lower(w), sales_kpi.won_count(w), sales_kpi.won_amount(w), w
  FROM (SELECT sales_kpi.winloss_agg(won) AS w FROM (VALUES (NULL::boolean)) v(won)) s;
-- bad arguments
SELECT sales_kpi.winloss_agg(true, -5);
SELECT sales_kpi.winloss_agg(false, 'NaN');
SELECT sales_kpi.wilson_lower(sales_kpi.winloss_agg(true), 1);
SELECT sales_kpi.wilson_upper(sales_kpi.winloss_agg(true), 0);
SELECT sales_kpi.wilson_upper(sales_kpi.winloss_agg(true), 'NaN');
-- winloss text form
SELECT '{"v":1,"won":3,"lost":4,"won_with_amount":2,"won_amount":"10.50"}'::sales_kpi.winloss;
SELECT '{"v":1,"won":1,"lost":4,"won_with_amount":2,"won_amount":"10.50"}'::sales_kpi.winloss;
SELECT '{"v":1,"won":3,"lost":-4,"won_with_amount":2,"won_amount":"10.50"}'::sales_kpi.winloss;
SELECT '{"v":1,"won":3,"lost":4,"won_with_amount":0,"won_amount":"10.50"}'::sales_kpi.winloss;
SELECT '{"v":1,"won":3,"lost":4,"won_amount":"10.50"}'::sales_kpi.winloss;
-- rollup of stored summaries
CREATE TEMP TABLE daily AS
SELECT d, sales_kpi.winloss_agg(x % 3 = 0, x) AS w FROM generate_series(1, 60) x, LATERAL (SELECT x % 6 AS d) dd GROUP BY d;
SELECT sales_kpi.rollup(w) FROM daily;
SELECT sales_kpi.winloss_agg(x % 3 = 0, x) FROM generate_series(1, 60) x;
