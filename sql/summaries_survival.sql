-- survival_agg: a cohort worked out by hand, bins beyond a year, and every
-- error.
\set SHOW_CONTEXT never
SET extra_float_digits = 0;
SET IntervalStyle = 'postgres';

-- ten deals (age in days, outcome).  By hand, with n at risk and S the
-- Kaplan-Meier survival of closing:
--   day 1  n=10 won   CIF 1/10            = 0.1      S 0.9
--   day 2  n=9  lost                                 S 0.8
--   day 3  n=8  won   CIF + 0.8 x 1/8     = 0.2      S 0.7   (one open leaves)
--   day 5  n=6  lost                                 S 0.5833
--   day 8  n=5  won   CIF + 0.5833 x 1/5  = 0.3167   S 0.4667 (median; one open leaves)
--   day 10 n=3  lost                                 S 0.3111
--   day 12 n=2  won   CIF + 0.3111 x 1/2  = 0.4722 (17/36)
CREATE TEMP TABLE cohort (age int, outcome text);
INSERT INTO cohort VALUES (1, 'won'), (2, 'lost'), (3, 'open'), (3, 'won'), (5, 'lost'),
                          (8, 'won'), (8, 'open'), (10, 'lost'), (12, 'won'), (15, 'open');
SELECT sales_kpi.survival_count(s) AS deals,
       sales_kpi.cumulative_win_rate(s, '5 days') AS aj_5, sales_kpi.naive_win_rate(s, '5 days') AS naive_5,
       sales_kpi.cumulative_win_rate(s, '12 days') AS aj_12, 17.0 / 36 AS by_hand_12,
       sales_kpi.naive_win_rate(s, '12 days') AS naive_12,
       sales_kpi.median_time_to_close(s) AS median, s
  FROM (SELECT sales_kpi.survival_agg(make_interval(days => age), outcome) AS s FROM cohort) x;
-- ages are floored to whole days; months count as 30 days
SELECT sales_kpi.survival_agg(a, 'won')
  FROM (VALUES (interval '1 day 23:59'), ('1 month'), ('400 days'), ('12 years')) v(a);
-- everything open: no close yet, median not reached
SELECT sales_kpi.cumulative_win_rate(s, '90 days'), sales_kpi.median_time_to_close(s)
  FROM (SELECT sales_kpi.survival_agg(interval '10 days', 'open') AS s FROM generate_series(1, 3)) x;
-- NULLs are skipped; no rows give NULL accessors
SELECT sales_kpi.survival_count(s), sales_kpi.naive_win_rate(s, '1 day'), s
  FROM (SELECT sales_kpi.survival_agg(a, o) AS s FROM (VALUES (NULL::interval, 'won'), ('1 day', NULL)) v(a, o)) x;

-- errors
SELECT sales_kpi.survival_agg(interval '1 day', 'pending');
SELECT sales_kpi.survival_agg(interval '1 day', 'Won');
SELECT sales_kpi.survival_agg(interval '-1 hour', 'won');
SELECT sales_kpi.cumulative_win_rate(sales_kpi.survival_agg(interval '1 day', 'won'), '-1 day');
SELECT sales_kpi.naive_win_rate(sales_kpi.survival_agg(interval '1 day', 'won'), '-2 days');

-- text form
SELECT '{"v":1,"n":3,"days":[[0,1,1,0],[400,0,0,1]]}'::sales_kpi.survival;
SELECT '{"v":1,"n":4,"days":[[0,1,1,0]]}'::sales_kpi.survival;
SELECT '{"v":1,"n":2,"days":[[-1,1,1,0]]}'::sales_kpi.survival;
SELECT '{"v":1,"n":2,"days":[[0,1,1]]}'::sales_kpi.survival;
SELECT '{"v":1,"n":2,"days":[[0,-1,3,0]]}'::sales_kpi.survival;
