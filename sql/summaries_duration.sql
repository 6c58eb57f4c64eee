-- duration_agg: a worked example, NULL handling, text form and every error.
\set SHOW_CONTEXT never
SET IntervalStyle = 'postgres';

-- four durations: 1 hour, 3 days, 10 days, 45 days 2 hours (and a NULL)
SELECT sales_kpi.duration_count(s) AS n, sales_kpi.mean(s), sales_kpi.min_duration(s), sales_kpi.max_duration(s),
       sales_kpi.median(s), sales_kpi.percentile(s, 0.9) AS p90, s
  FROM (SELECT sales_kpi.duration_agg(d) AS s
          FROM (VALUES (interval '3 days'), ('1 hour'), (NULL), ('45 days 02:00'), ('10 days')) v(d)) x;
-- the median is the value of rank floor(0.5 * 3) = 1 (3 days), within 1%
SELECT abs(extract(epoch FROM sales_kpi.median(sales_kpi.duration_agg(d))) / extract(epoch FROM interval '3 days') - 1) < 0.01
       AS median_within_1pct
  FROM (VALUES (interval '3 days'), ('1 hour'), ('45 days 02:00'), ('10 days')) v(d);
-- months count as 30 days
SELECT sales_kpi.max_duration(sales_kpi.duration_agg(interval '1 month 1 day'));
-- zero durations are exact
SELECT sales_kpi.median(sales_kpi.duration_agg(interval '0')) FROM generate_series(1, 5);
-- no rows
SELECT sales_kpi.duration_count(s), sales_kpi.median(s), s
  FROM (SELECT sales_kpi.duration_agg(d) AS s FROM (VALUES (NULL::interval)) v(d)) x;

-- errors
SELECT sales_kpi.duration_agg(interval '-1 second');
SELECT sales_kpi.duration_agg(interval '1 month -31 days');
SELECT sales_kpi.percentile(sales_kpi.duration_agg(interval '1 day'), 1.5);
SELECT sales_kpi.percentile(sales_kpi.duration_agg(interval '1 day'), -0.1);
SELECT sales_kpi.percentile(sales_kpi.duration_agg(interval '1 day'), 'NaN');
SELECT sales_kpi.duration_agg(interval '200000000 days');

-- text form
SELECT '{"v":1,"n":2,"sum_us":"7200000000","min_us":3600000000,"max_us":3600000000,"buckets":[[415,2]]}'::sales_kpi.duration_summary;
SELECT '{"v":1,"n":3,"sum_us":"7200000000","min_us":3600000000,"max_us":3600000000,"buckets":[[415,2]]}'::sales_kpi.duration_summary;
SELECT '{"v":1,"n":2,"sum_us":"7200000000","min_us":3600000000,"max_us":3600000000,"buckets":[[415,1],[415,1]]}'::sales_kpi.duration_summary;
SELECT '{"v":1,"n":2,"sum_us":"7200000000","min_us":3600000000,"max_us":3600000000,"buckets":[[991,2]]}'::sales_kpi.duration_summary;
SELECT '{"v":1,"n":2,"sum_us":"9","min_us":3600000000,"max_us":3600000000,"buckets":[[415,2]]}'::sales_kpi.duration_summary;
SELECT '{"v":1,"n":2,"sum_us":"7200000000.5","min_us":3600000000,"max_us":3600000000,"buckets":[[415,2]]}'::sales_kpi.duration_summary;
SELECT '{"v":1,"n":2,"sum_us":"7200000000","min_us":3600000000,"max_us":3600000000,"buckets":[[415,2]}'::sales_kpi.duration_summary;
SELECT '{"v":1,"n":1,"sum_us":"1","min_us":1,"max_us":1,"buckets":[[0,1]]}'::sales_kpi.duration_summary;
