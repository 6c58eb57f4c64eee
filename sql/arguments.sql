-- Absurd arguments are errors that name the argument (22023), never an
-- empty or all-zero report a dashboard would show as a fact.
\set VERBOSITY default
-- infinite instants
SELECT count(*) FROM sales_kpi.pipeline_flow('-infinity', now());
SELECT count(*) FROM sales_kpi.pipeline_flow('2026-01-01', 'infinity');
SELECT count(*) FROM sales_kpi.pipeline_flow_deals(to_at => 'infinity');
SELECT count(*) FROM sales_kpi.pipeline_as_of('infinity');
SELECT count(*) FROM sales_kpi.win_rate(as_of => 'infinity');
-- a team no rep is in
SELECT count(*) FROM sales_kpi.pipeline_flow(team => 'No Such Team');
SELECT count(*) FROM sales_kpi.pipeline_flow_deals(team => 'No Such Team');
SELECT count(*) FROM sales_kpi.pipeline_as_of(now(), 'No Such Team');
-- a team some rep is in is fine, and a null team means every team
INSERT INTO sales_kpi.rep (name, team) VALUES ('Argument Tester', 'Real Team');
SELECT count(*) FROM sales_kpi.pipeline_as_of(now(), 'Real Team');
SELECT count(*) > 0 FROM sales_kpi.pipeline_flow(team => 'Real Team');
SELECT count(*) FROM sales_kpi.pipeline_as_of(now(), NULL);
