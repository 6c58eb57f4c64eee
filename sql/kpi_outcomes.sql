-- Outcome KPIs (win_rate, cohort_win_rate, sales_cycle, deal_size,
-- quota_attainment, win_rate_by_rep) on a fixture worked out by hand.
\i sql/fixture.psql

-- Ten deals.  Amounts in USD unless said; Q1 = [2026-01-01, 2026-04-01).
--  1 Ben  Direct  Acme    20000      created 01-05, won  02-04 (30 days)
--  2 Ben  Direct  Acme     5000      created 01-10, lost 02-09 (30 days)
--  3 Cy   Direct  Globex  EUR 10000  created 01-15, won  03-16 (60 days; 12000 USD at 1.20)
--  4 Cy   Direct  Globex  60000      created 01-20, lost 02-01, reopened 02-10, won 03-21 (60 days)
--  5 Ben->Cy->Ada Direct Acme 300000 created 02-01, owner Cy from 02-15, won 03-03 (30 days),
--                                    owner Ada from 04-15: the win stays Cy's
--  6 Ben  Direct  Globex   8000      created 02-10, lost 03-12 (30 days); events inserted newest first
--  7 Ben  Direct  Acme    15000      created 03-01, open
--  8 Ada  Direct  Globex  40000      created 03-15, won 04-14 (Q2)
--  9 Cy   Partner Globex   1000      created 01-02, lost 01-31 (29 days)
-- 10 Ben  Direct  Globex   7000      created 01-04, won 03-05 (60 days)
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, currency, amount, source, created_at) VALUES
    (1, 1, 2, 'd1',  'USD',  20000, 'web',     '2026-01-05'),
    (1, 1, 2, 'd2',  'USD',   5000, 'web',     '2026-01-10'),
    (1, 2, 3, 'd3',  'EUR',  10000, 'partner', '2026-01-15'),
    (1, 2, 3, 'd4',  'USD',  60000, 'partner', '2026-01-20'),
    (1, 1, 2, 'd5',  'USD', 300000, 'web',     '2026-02-01'),
    (1, 2, 2, 'd6',  'USD',   8000, 'event',   '2026-02-10'),
    (1, 1, 2, 'd7',  'USD',  15000, 'web',     '2026-03-01'),
    (1, 2, 1, 'd8',  'USD',  40000, 'event',   '2026-03-15'),
    (2, 2, 3, 'd9',  'USD',   1000, 'partner', '2026-01-02'),
    (1, 2, 2, 'd10', 'USD',   7000, 'event',   '2026-01-04');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES
    (1, 1, '2026-01-05'), (1, 2, '2026-01-20'), (1, 5, '2026-02-04'),
    (2, 1, '2026-01-10'), (2, 6, '2026-02-09'),
    (3, 1, '2026-01-15'), (3, 3, '2026-02-15'), (3, 5, '2026-03-16'),
    (4, 1, '2026-01-20'), (4, 6, '2026-02-01'), (4, 3, '2026-02-10'), (4, 5, '2026-03-21'),
    (5, 1, '2026-02-01'), (5, 4, '2026-02-20'), (5, 5, '2026-03-03'),
    (7, 1, '2026-03-01'), (7, 2, '2026-03-10'),
    (8, 1, '2026-03-15'), (8, 5, '2026-04-14'),
    (9, 7, '2026-01-02'), (9, 9, '2026-01-31'),
    (10, 1, '2026-01-04'), (10, 5, '2026-03-05');
-- deal 6: its history arrives out of order, newest first
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 6, '2026-03-12');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 2, '2026-02-20');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 1, '2026-02-10');
SELECT opportunity_id, stage_id, closed_at FROM sales_kpi.opportunity WHERE opportunity_id IN (4, 6);
-- deal 5 changes owner before the win (Ben -> Cy) and after it (Cy -> Ada)
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id) VALUES
    (5, '2026-02-15', 300000, NULL, NULL, 3),
    (5, '2026-04-15', 300000, NULL, NULL, 1);
UPDATE sales_kpi.opportunity SET owner_id = 1 WHERE opportunity_id = 5;
SELECT changed_at, owner_id FROM sales_kpi.opportunity_history WHERE opportunity_id = 5 ORDER BY changed_at;
-- contacts: deal 1 has two decision makers and a champion, deal 2 the same
-- champion, deal 3 a decision maker; the others have none
INSERT INTO sales_kpi.contact (account_id, name, role) VALUES
    (1, 'Dee', 'decision_maker'), (1, 'Cham', 'champion'), (1, 'Dan', 'decision_maker'), (2, 'Gil', 'decision_maker');
INSERT INTO sales_kpi.opportunity_contact (opportunity_id, contact_id, role) VALUES
    (1, 1, 'decision_maker'), (1, 2, 'champion'), (1, 3, 'decision_maker'),
    (2, 2, 'champion'), (3, 4, 'decision_maker');
-- quotas: Ben 50000 and Cy 60000 in Q1, Ben 30000 in Q2; Ada has none
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES
    (2, '2026-01-01', '2026-04-01', 50000), (3, '2026-01-01', '2026-04-01', 60000),
    (2, '2026-04-01', '2026-07-01', 30000);

-------------------------------------------------------------------------------
-- win_rate
-------------------------------------------------------------------------------
-- Q1 as of 06-30: won 1, 3, 4, 5, 10; lost 2, 6, 9: 5/8 = 0.625.
-- Wilson 95% (z = 1.959964): centre (p + z²/2n)/(1 + z²/n) = 0.584449,
-- half-width z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n) = 0.278707: 0.305742 .. 0.863156.
-- won amount 20000 + 12000.00 + 60000 + 300000 + 7000 = 399000.00;
-- closed amount 399000 + 5000 + 8000 + 1000 = 413000: 0.966102.
SELECT dimension, dimension_value, period_start, period_end, closed, won, lost, win_rate,
       round(win_rate_lower::numeric, 6) AS lower, round(win_rate_upper::numeric, 6) AS upper,
       won_amount, closed_amount, round(amount_win_rate::numeric, 6) AS amount_rate,
       company_win_rate, win_rate_vs_company
  FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'company', '2026-06-30');
-- the default period is the fiscal quarter holding as_of: the same
SELECT period_start, period_end, won, lost FROM sales_kpi.win_rate(as_of => '2026-03-31 23:00');
-- as of 02-05 deal 4 is lost (reopened later) and deal 2 still open:
-- won 1 (deal 1), lost 4 and 9: 1/3
SELECT closed, won, lost, win_rate, won_amount, closed_amount
  FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'company', '2026-02-05');
-- per rep, credited to the owner at the close: Ben 1, 2, 6, 10 (2/4);
-- Cy 3, 4, 5, 9 (3/4; deal 5 is Cy's though Ada owns it now).
-- Difference from 0.625: -0.125 and +0.125.
SELECT dimension_value, closed, won, lost, win_rate, won_amount, closed_amount,
       company_win_rate, win_rate_vs_company
  FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'rep', '2026-06-30');
-- per pipeline: Direct 5/7, Partner 0/1
SELECT dimension_value, won, lost, win_rate, round(win_rate_vs_company::numeric, 6) AS vs_company
  FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'pipeline', '2026-06-30');
-- per product (deals 1-3 Forecasting, 4 Sales Cloud, the others none):
-- Forecasting 1 won, 2 lost, 3 won: 2/3, won 20000 + 12000.00 = 32000.00 of
-- 37000.00; Sales Cloud 4 won: 1/1, 60000; (none) 5 and 10 won, 6 and 9
-- lost: 2/4, won 300000 + 7000 = 307000 of 316000
UPDATE sales_kpi.opportunity SET product = CASE WHEN opportunity_id <= 3 THEN 'Forecasting' ELSE 'Sales Cloud' END
 WHERE opportunity_id <= 4;
SELECT dimension_value, closed, won, lost, win_rate, won_amount, closed_amount
  FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'product', '2026-06-30');
UPDATE sales_kpi.opportunity SET product = NULL;
-- per deal size band (base-currency amount at the close-date rate):
-- < 10k: 2, 6, 9 lost, 10 won (1/4); 10k - 50k: 1, 3 won; 50k - 250k: 4 won; >= 250k: 5 won
SELECT dimension_value, won, lost, win_rate, won_amount, closed_amount
  FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'deal_size_band', '2026-06-30');
-- per contact role, a deal once per role: (none) 4, 5, 10 won, 6, 9 lost (3/5);
-- champion 1 won, 2 lost; decision_maker 1 and 3 won (deal 1 counted once)
SELECT dimension_value, closed, won, lost, win_rate
  FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'contact_role', '2026-06-30');
-- a period with no closed deal: the company row with zero counts and NULL rates,
-- no row per rep
SELECT * FROM sales_kpi.win_rate('2026-07-01', '2026-10-01', 'company', '2026-11-01');
SELECT count(*) FROM sales_kpi.win_rate('2026-07-01', '2026-10-01', 'rep', '2026-11-01');

-------------------------------------------------------------------------------
-- win_rate_by_rep: all time, as of now, credited to the owner at the close
-------------------------------------------------------------------------------
-- Ada 8 won (40000); Ben 1, 10 won, 2, 6 lost (27000); Cy 3, 4, 5 won,
-- 9 lost (372000.00).  Crediting the current owner would give deal 5 to Ada.
SELECT * FROM sales_kpi.win_rate_by_rep;

-------------------------------------------------------------------------------
-- cohort_win_rate
-------------------------------------------------------------------------------
-- As of 03-15, horizon 60 days, monthly cohorts of Q1:
-- January: 9 lost day 29; 1 won, 2 lost day 30; 4 open (reopened) censored
--   day 54; 3 open censored day 59; 10 won day 60.  Naive 2/6.
--   Aalen-Johansen: S(29) = 5/6; day 30: CIF += 5/6 * 1/5 = 1/6, S = 5/6 * 3/5 = 1/2;
--   day 60 (one at risk): CIF += 1/2 * 1/1 -> 2/3.
-- February: 5 won day 30, 6 lost day 30: 1/2 both ways.
-- March: 7 and 8 open (8 created at the instant itself): 0 both ways.
SELECT * FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-04-01', 'month', 'company',
                                        '2026-03-15', '60 days');
-- per pipeline: January Direct 1, 2, 3, 4, 10: day 30 CIF 1/5, S 3/5; day 60
-- CIF 1/5 + 3/5 = 0.8, naive 2/5; Partner 9 lost: 0
SELECT dimension_value, period_start, deals, won, still_open, naive_win_rate, cumulative_win_rate
  FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-04-01', 'month', 'pipeline', '2026-03-15', '60 days');
-- as of 06-30 every Q1 deal but 7 is closed; horizon 45 days: January 1 won
-- (day 30) of 6; February 5 won of 2; March 8 won at day 30 of 2, 7 open
-- censored at day 121 (beyond the horizon: no effect)
SELECT period_start, deals, won, still_open, naive_win_rate, cumulative_win_rate
  FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-04-01', 'month', 'company', '2026-06-30', '45 days');
-- quarterly grain, by rep (owner at the close, or at as_of when open):
-- Ada 8 (won day 30); Ben 1, 2, 6, 7, 10; Cy 3, 4, 5, 9
SELECT dimension_value, period_start, period_end, deals, won, still_open
  FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-04-01', 'quarter', 'rep', '2026-06-30', '45 days');

-------------------------------------------------------------------------------
-- sales_cycle
-------------------------------------------------------------------------------
-- Q1 as of 06-30, won: 1 (30 days), 5 (30), 3 (60), 4 (60), 10 (60):
-- count 5, mean 48, median (rank 2 of 0..4) 60, p75 60, p90 60
-- (percentiles within 1%).  Kaplan-Meier over the deals created in the
-- 365 days before 04-01, as they stood on 04-01: 8 open (censored day 17),
-- 9 lost day 29, 1, 2, 5, 6 closed day 30, 7 open (censored day 31),
-- 3, 4, 10 day 60.  S(29) = 8/9, S(30) = 8/9 * 4/8 = 4/9 <= 1/2: median 30.
SELECT dimension, dimension_value, period_start, period_end, won, mean_days,
       round(median_days::numeric, 1) AS median_days, round(p75_days::numeric, 1) AS p75_days,
       round(p90_days::numeric, 1) AS p90_days, km_deals, km_closed, km_median_days
  FROM sales_kpi.sales_cycle('2026-01-01', '2026-04-01', 'company', '2026-06-30');
-- per rep: Ada no win in Q1, KM only 8 (censored): median NULL; Ben 1 (30),
-- 10 (60): mean 45, percentiles 30; KM 1, 2, 6 at 30 of 5: S = 2/5, median 30;
-- Cy 5 (30), 3, 4 (60): mean 50, median 60; KM 9 day 29, 5 day 30: S = 1/2, median 30
SELECT dimension_value, won, mean_days, round(median_days::numeric, 1) AS median_days,
       round(p90_days::numeric, 1) AS p90_days, km_deals, km_closed, km_median_days
  FROM sales_kpi.sales_cycle('2026-01-01', '2026-04-01', 'rep', '2026-06-30');
-- a shorter lookback (60 days before 04-01: created from 2026-01-31 on):
-- 5 won and 6 lost at day 30, 7 and 8 open (censored days 31 and 17):
-- S(30) = 1 - 2/3 = 1/3 <= 1/2: median 30
SELECT km_deals, km_closed, km_median_days
  FROM sales_kpi.sales_cycle('2026-01-01', '2026-04-01', 'company', '2026-06-30', '60 days');
-- no won deal in Q3: zero count, NULL durations
SELECT won, mean_days, median_days, p90_days
  FROM sales_kpi.sales_cycle('2026-07-01', '2026-10-01', 'company', '2026-11-01');

-------------------------------------------------------------------------------
-- deal_size
-------------------------------------------------------------------------------
-- Q1 won: 20000 (Acme), 12000.00, 60000, 7000 (Globex), 300000 (Acme):
-- 399000.00 over 5 deals = 79800, 2 accounts: ARPA 199500
SELECT * FROM sales_kpi.deal_size('2026-01-01', '2026-04-01', 'company', '2026-06-30');
-- per rep: Ben 20000 (Acme) + 7000 (Globex): mean 13500, ARPA 13500;
-- Cy 12000 + 60000 (Globex) + 300000 (Acme): mean 124000, ARPA 186000
SELECT dimension_value, won, won_amount, avg_amount, accounts, arpa
  FROM sales_kpi.deal_size('2026-01-01', '2026-04-01', 'rep', '2026-06-30');
SELECT won, won_amount, avg_amount, accounts, arpa
  FROM sales_kpi.deal_size('2026-07-01', '2026-10-01', 'company', '2026-11-01');

-------------------------------------------------------------------------------
-- quota_attainment
-------------------------------------------------------------------------------
-- Q1 as of 06-30: Ben 27000 / 50000 = 0.54; Cy 372000 / 60000 = 6.2 (deal 5
-- credited to Cy, the owner at the win)
SELECT * FROM sales_kpi.quota_attainment('2026-01-01', '2026-04-01', 'rep', '2026-06-30');
-- teams: East (Ben) 0.54, none at quota; West (Cy) 6.2, all at quota
SELECT dimension_value, reps, reps_with_quota, bookings, quota, attainment, reps_at_quota, at_quota_rate
  FROM sales_kpi.quota_attainment('2026-01-01', '2026-04-01', 'team', '2026-06-30');
-- company: 399000 / 110000 = 3.627273, one rep of two at quota
SELECT reps, reps_with_quota, bookings, quota, round(attainment::numeric, 6) AS attainment, reps_at_quota, at_quota_rate
  FROM sales_kpi.quota_attainment('2026-01-01', '2026-04-01', 'company', '2026-06-30');
-- as of 02-20: Ben has deal 1 (0.4), Cy nothing yet (0, listed for the quota)
SELECT dimension_value, bookings, quota, attainment, reps_at_quota
  FROM sales_kpi.quota_attainment('2026-01-01', '2026-04-01', 'rep', '2026-02-20');
-- Q2: Ada (no quota) books 40000: attainment NULL, not in the share; Ben 0 / 30000
SELECT dimension_value, reps, reps_with_quota, bookings, quota, attainment, reps_at_quota, at_quota_rate
  FROM sales_kpi.quota_attainment('2026-04-01', '2026-07-01', 'rep', '2026-06-30');
SELECT dimension_value, reps, reps_with_quota, bookings, quota, attainment, reps_at_quota, at_quota_rate
  FROM sales_kpi.quota_attainment('2026-04-01', '2026-07-01', 'company', '2026-06-30');
-- February only: quotas prorated by days, 28/90 of each: Ben 15555.56, and
-- his deal 1 won 02-04: 20000 / 15555.56 = 1.285714; Cy 18666.67, nothing won
SELECT dimension_value, bookings, round(quota, 2) AS quota, round(attainment::numeric, 6) AS attainment
  FROM sales_kpi.quota_attainment('2026-02-01', '2026-03-01', 'rep', '2026-06-30');
-- no quota and no booking at all: the company row, empty
SELECT * FROM sales_kpi.quota_attainment('2027-01-01', '2027-04-01', 'company', '2027-06-30');

-------------------------------------------------------------------------------
-- argument errors
-------------------------------------------------------------------------------
SELECT * FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'colour', '2026-06-30');
SELECT * FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', NULL, '2026-06-30');
SELECT * FROM sales_kpi.win_rate('2026-04-01', '2026-01-01', 'company', '2026-06-30');
SELECT * FROM sales_kpi.sales_cycle('2026-01-01', '2026-04-01', 'contact_role', '2026-06-30');
SELECT * FROM sales_kpi.sales_cycle('2026-01-01', '2026-04-01', 'company', '2026-06-30', '-1 day');
SELECT * FROM sales_kpi.deal_size('2026-01-01', '2026-04-01', 'deal_size_band', '2026-06-30');
SELECT * FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-04-01', 'fortnight', 'company', '2026-06-30');
SELECT * FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-04-01', 'month', 'company', '2026-06-30', '-5 days');
SELECT * FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-04-01', 'month', 'colour', '2026-06-30');
SELECT * FROM sales_kpi.quota_attainment('2026-01-01', '2026-04-01', 'industry', '2026-06-30');
SELECT * FROM sales_kpi.quota_attainment('2026-01-01', '2026-04-01', NULL, '2026-06-30');

-- A deal in a currency with no rate is refused when written (see the
-- constraints test); one that got in while a dump loaded (check_function_bodies
-- off) makes the KPIs that convert it fail with an error naming the currency,
-- and no internal query as context
SET check_function_bodies = off;
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, currency, amount, created_at)
VALUES (1, 1, 3, 'in GBP', 'GBP', 10, '2026-01-02');
RESET check_function_bodies;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (11, 1, '2026-01-02'), (11, 5, '2026-02-01');
SELECT * FROM sales_kpi.win_rate('2026-01-01', '2026-04-01', 'company', '2026-06-30');
SELECT * FROM sales_kpi.deal_size('2026-01-01', '2026-04-01', 'company', '2026-06-30');
SELECT * FROM sales_kpi.quota_attainment('2026-01-01', '2026-04-01', 'rep', '2026-06-30');
-- a period that does not hold the GBP deal is not affected
SELECT won FROM sales_kpi.deal_size('2026-04-01', '2026-07-01', 'company', '2026-06-30');
