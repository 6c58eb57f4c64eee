-- A BI tool reads this quarter's forecast (the view: whole company, now,
-- the stage, milestone and historical weightings).
SELECT count(*) FROM sales_kpi.forecast;
