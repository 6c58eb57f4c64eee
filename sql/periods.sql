-- Reporting periods: grains, the fiscal year, the reporting time zone and
-- daylight saving.
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';

-- calendar year (fiscal year starts in January)
SELECT g, sales_kpi.period_start('2026-05-20 15:00+00', g), sales_kpi.period_end('2026-05-20 15:00+00', g)
  FROM unnest(ARRAY['week', 'month', 'quarter', 'year']) g;
-- fiscal year from April: May is in Q1 of the fiscal year that began in April
SET sales_kpi.fiscal_year_start_month = 4;
SELECT g, sales_kpi.period_start('2026-05-20 15:00+00', g), sales_kpi.period_end('2026-05-20 15:00+00', g)
  FROM unnest(ARRAY['quarter', 'year']) g;
-- fiscal year from October: February belongs to the year that began last October
SET sales_kpi.fiscal_year_start_month = 10;
SELECT sales_kpi.period_start('2026-02-10', 'quarter') AS q_start, sales_kpi.period_start('2026-02-10', 'year') AS fy_start;
RESET sales_kpi.fiscal_year_start_month;
-- periods are cut in the reporting time zone: 20:00 UTC on the 31st is already
-- the 1st in Shanghai
SELECT sales_kpi.period_start('2026-03-31 20:00+00', 'month') AS utc_month;
SET sales_kpi.reporting_timezone = 'Asia/Shanghai';
SELECT sales_kpi.period_start('2026-03-31 20:00+00', 'month') AS shanghai_month;
-- across a daylight-saving change a day stays a local day: March 2026 in New York
-- is 31 local days but 743 hours
SET sales_kpi.reporting_timezone = 'America/New_York';
SELECT sales_kpi.period_start('2026-03-15 12:00+00', 'month') AS ny_start,
       sales_kpi.period_end('2026-03-15 12:00+00', 'month') AS ny_end,
       sales_kpi.period_end('2026-03-15 12:00+00', 'month') - sales_kpi.period_start('2026-03-15 12:00+00', 'month') AS length;
RESET sales_kpi.reporting_timezone;
-- periods overlapping a range
SELECT * FROM sales_kpi.periods('2026-01-15', '2026-04-01', 'month');
SELECT * FROM sales_kpi.periods('2026-01-01', '2026-01-01', 'week');
-- errors
SELECT sales_kpi.period_start(now(), 'fortnight');
