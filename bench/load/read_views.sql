-- A BI tool reads a KPI view (whole company, now), one of five at random.
-- The forecast view is read by read_forecast.sql.
\set v random(1, 5)
\if :v = 1
SELECT count(*) FROM sales_kpi.stage_pipeline_value;
\elif :v = 2
SELECT count(*) FROM sales_kpi.win_rate;
\elif :v = 3
SELECT count(*) FROM sales_kpi.pipeline_flow;
\elif :v = 4
SELECT count(*) FROM sales_kpi.win_rate_by_rep;
\else
SELECT count(*) FROM sales_kpi.weighted_pipeline_value;
\endif
