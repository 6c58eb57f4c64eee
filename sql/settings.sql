-- A sales_kpi.* setting made before the module was loaded (ALTER DATABASE or
-- ALTER ROLE ... SET, postgresql.conf, a SET in a new session) is checked
-- only when the module loads.  PostgreSQL then warns and keeps the default;
-- the accessors, and so every KPI, raise an error naming the value instead,
-- until the setting is made again.  Each \c below starts a session in which
-- the module is not loaded yet.
\c
SET sales_kpi.base_currency = 'usd';
SELECT sales_kpi.base_currency();
-- still refused on the next read
SELECT sales_kpi.base_currency();
-- the currency conversion reads it too
SELECT sales_kpi.to_base(100, 'EUR', '2026-01-01');
-- a valid SET clears it
SET sales_kpi.base_currency = 'EUR';
SELECT sales_kpi.base_currency();
\c
SET sales_kpi.fiscal_year_start_month = 13;
SELECT sales_kpi.fiscal_year_start_month();
RESET sales_kpi.fiscal_year_start_month;
SELECT sales_kpi.fiscal_year_start_month();
\c
SET sales_kpi.reporting_timezone = 'Nowhere/Land';
SELECT count(*) FROM sales_kpi.periods('2026-01-01', '2026-04-01', 'month');
SET sales_kpi.reporting_timezone = 'Europe/Berlin';
SELECT count(*) FROM sales_kpi.periods('2026-01-01', '2026-04-01', 'month');
\c
SET sales_kpi.stage_gate_mode = 'bogus';
SELECT sales_kpi.default_stage_gate_mode();
\c
-- valid values made before the module loads are taken as they are
SET sales_kpi.base_currency = 'EUR';
SET sales_kpi.fiscal_year_start_month = 4;
SELECT sales_kpi.base_currency(), sales_kpi.fiscal_year_start_month();
-- once loaded, an invalid SET is refused at once, and the value stays
SET sales_kpi.base_currency = 'eur';
SELECT sales_kpi.base_currency();
