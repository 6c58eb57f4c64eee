-- The pieces every KPI function shares: breakdown values, default periods,
-- prorated quotas and closed deals as the history stood, on a history
-- worked out by hand.
\i sql/fixture.psql

-- dimension_value picks the attribute the breakdown names
SELECT d, sales_kpi.dimension_value(d, 'Direct', 'Ben', 'East', 'web', 'Retail', 'SMB', 'EMEA', NULL, 'new', 'Forecasting')
  FROM unnest(ARRAY['company', 'pipeline', 'rep', 'team', 'source', 'industry', 'segment', 'region',
                    'competitor', 'kind', 'product']) d;
SELECT sales_kpi.dimension_value('product', 'Direct', 'Ben', 'East', 'web', 'Retail', 'SMB', 'EMEA', NULL, 'new', NULL);
SELECT sales_kpi.dimension_value('Team', 'Direct', 'Ben', 'East', 'web', 'Retail', 'SMB', 'EMEA', NULL, 'new', NULL);
SELECT sales_kpi.dimension_value(NULL, 'Direct', 'Ben', 'East', 'web', 'Retail', 'SMB', 'EMEA', NULL, 'new', NULL);
-- the name is parsed once per query, yet a changing name is followed
SELECT d, sales_kpi.dimension_value(d, 'Direct', 'Ben', 'East', 'web', 'Retail', 'SMB', 'EMEA', 'Initech', 'new', NULL)
  FROM (VALUES (1, 'competitor'), (2, 'competitor'), (3, 'rep'), (4, 'company')) v(i, d) ORDER BY i;

-- default period: the fiscal quarter of as_of (fiscal year from April here)
SET sales_kpi.fiscal_year_start_month = 4;
SELECT * FROM sales_kpi_internal.resolve_period(NULL, NULL, '2026-03-31 23:00+00');
RESET sales_kpi.fiscal_year_start_month;
SELECT * FROM sales_kpi_internal.resolve_period('2026-02-01', NULL, '2026-03-31');
SELECT * FROM sales_kpi_internal.resolve_period('2026-02-01', '2026-02-01', '2026-03-31');
SELECT * FROM sales_kpi_internal.resolve_period(NULL, NULL, NULL);
-- default series: from the period a year before as_of to the one holding it
SELECT * FROM sales_kpi_internal.resolve_series(NULL, NULL, 'quarter', '2026-05-10');
SELECT count(*) FROM sales_kpi_internal.resolve_series('2026-01-01', '2026-03-01', 'week', '2026-05-10');
SELECT * FROM sales_kpi_internal.resolve_series(NULL, NULL, 'day', '2026-05-10');

-- quotas: Ben has Q1 90,000 (90 days) and April 10,000; Cy has none
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES
    (2, '2026-01-01', '2026-04-01', 90000), (2, '2026-04-01', '2026-05-01', 10000);
-- January: 31 of Q1's 90 days = 31,000
SELECT rep_id, round(quota, 6) FROM sales_kpi.quota_in_period('2026-01-01', '2026-02-01');
-- March 16 to April 16: 16 days of Q1 (16,000) + 15 of April's 30 (5,000)
SELECT rep_id, round(quota, 6) FROM sales_kpi.quota_in_period('2026-03-16', '2026-04-16');
-- nothing overlaps June
SELECT count(*) FROM sales_kpi.quota_in_period('2026-06-01', '2026-07-01');

-- closed deals.  A: won 02-15 by Ben (Cy owned it until 02-10).  B: lost
-- 02-01, reopened 02-10, won 03-05.  C: lost 03-20 with a EUR amount.
-- D: still open.
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, currency, created_at, expected_close)
VALUES (1, 1, 3, 'A', 1000, 'USD', '2026-01-05', '2026-03-31'),
       (1, 2, 2, 'B', 500, 'USD', '2026-01-10', '2026-02-28'),
       (1, 1, 2, 'C', 200, 'EUR', '2026-02-20', '2026-04-30'),
       (1, 1, 2, 'D', 300, 'USD', '2026-02-21', '2026-04-30');
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (1, '2026-02-10', 1200, '2026-03-31', 2);
SELECT sales_kpi.move_stage(1, 1, '2026-01-05');
SELECT sales_kpi.move_stage(1, 5, '2026-02-15');
SELECT sales_kpi.move_stage(2, 1, '2026-01-10');
SELECT sales_kpi.move_stage(2, 6, '2026-02-01');
SELECT sales_kpi.move_stage(2, 2, '2026-02-10');
SELECT sales_kpi.move_stage(2, 5, '2026-03-05');
SELECT sales_kpi.move_stage(3, 1, '2026-02-20');
SELECT sales_kpi.move_stage(3, 6, '2026-03-20');
SELECT sales_kpi.move_stage(4, 1, '2026-02-21');
-- after the win A's amount was corrected to 1300 (03-10), and today the
-- deal is reassigned to Cy: neither changes who won it
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (1, '2026-03-10', 1300, '2026-03-31', 2);
UPDATE sales_kpi.opportunity SET owner_id = 3 WHERE opportunity_id = 1;
-- Q1 as known at the end: A won (owner Ben, 1300), B won 03-05, C lost
-- (200 EUR at the March rate 1.20 = 240)
SELECT opportunity_id, owner_id, outcome, closed_at, amount, amount_base
  FROM sales_kpi.closed_deals('2026-01-01', '2026-04-01', '2026-04-01') ORDER BY 1;
-- as known on 02-05: B was lost on 02-01; A was still open
SELECT opportunity_id, outcome, closed_at
  FROM sales_kpi.closed_deals('2026-01-01', '2026-04-01', '2026-02-05') ORDER BY 1;
-- as known on 02-12: A was open and B reopened, so nothing was closed
SELECT count(*) FROM sales_kpi.closed_deals('2026-01-01', '2026-04-01', '2026-02-12');
-- as known on 02-20: A won, with the amount then known (1200) and the owner at the win
SELECT opportunity_id, owner_id, outcome, amount FROM sales_kpi.closed_deals('2026-02-01', '2026-03-01', '2026-02-20');
-- a loss dated before its currency's first rate converts at that first
-- rate (200 EUR at 1.10 = 220), and data_quality_findings reports it
DELETE FROM sales_kpi.fx_rate WHERE valid_from = '2026-03-01';
UPDATE sales_kpi.fx_rate SET valid_from = '2026-03-25' WHERE currency = 'EUR';
SELECT opportunity_id, amount, amount_base FROM sales_kpi.closed_deals('2026-03-01', '2026-04-01', '2026-04-01');
SELECT key, rule, detail FROM sales_kpi.data_quality_findings('2026-04-01') WHERE rule = 'missing_fx_rate';
