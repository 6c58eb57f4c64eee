-- Reps over time, volatility, last-minute closing and organisational
-- attainment on a fixture worked out by hand.
\i sql/fixture.psql
SET extra_float_digits = 0;

INSERT INTO sales_kpi.account (name, industry, segment, region, created_at) VALUES
    ('Initech', 'Manufacturing', 'SMB', 'APAC', '2026-01-01');   -- account 3

-- Ada (1) and Ben (2) are team East, Cy (3) team West.
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, kind, currency, amount, created_at) VALUES
    (1, 1, 2, 'R1', 'new',       'USD', 1000, '2026-01-01'),   -- won 01-11 (10 days)
    (1, 1, 2, 'R2', 'new',       'EUR',  500, '2026-01-01'),   -- won 02-21 (51 days): 550 USD at 1.10
    (1, 2, 1, 'R3', 'new',       'USD', 2000, '2026-01-01'),   -- won 01-21 (20 days)
    (1, 2, 1, 'R4', 'new',       'USD',  300, '2026-01-01'),   -- lost 01-15
    (1, 3, 3, 'R5', 'new',       'USD',  800, '2026-01-01'),   -- won 01-31 (30 days)
    (1, 1, 2, 'R6', 'new',       'USD',  100, '2026-01-01'),   -- lost 01-20
    (1, 1, 2, 'R7', 'expansion', 'USD',  400, '2026-02-01'),   -- won 03-25 (52 days), last tenth of Q1
    (1, 3, 3, 'R8', 'new',       'USD', 1000, '2026-01-01'),   -- won 02-10 (40 days) by Cy, given to Ben 03-01
    (1, 2, 1, 'R9', 'new',       'USD',  300, '2026-01-01'),   -- won 01-25 (24 days), reopened 02-03
    (1, 2, 1, 'R10', 'renewal',  'USD',  900, '2025-12-01');   -- lost 2025-12-15
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES
    (1, 1, '2026-01-01'), (2, 1, '2026-01-01'), (3, 1, '2026-01-01'), (4, 1, '2026-01-01'),
    (5, 1, '2026-01-01'), (6, 1, '2026-01-01'), (7, 1, '2026-02-01'), (8, 1, '2026-01-01'),
    (9, 1, '2026-01-01'),
    (1, 5, '2026-01-11'), (2, 5, '2026-02-21'), (3, 5, '2026-01-21'), (4, 6, '2026-01-15'),
    (5, 5, '2026-01-31'), (6, 6, '2026-01-20'), (7, 5, '2026-03-25'), (8, 5, '2026-02-10'),
    (9, 5, '2026-01-25'), (9, 2, '2026-02-03'),
    (10, 1, '2025-12-01'), (10, 6, '2025-12-15');
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, owner_id)
VALUES (8, '2026-03-01', 1000, 2);
UPDATE sales_kpi.opportunity SET owner_id = 2 WHERE opportunity_id = 8;
INSERT INTO sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at) VALUES
    (2, 1, 'call', '2026-01-03'), (2, 1, 'email', '2026-01-04'), (2, 2, 'call', '2026-01-05'),
    (2, 2, 'meeting', '2026-02-05'), (2, 7, 'call', '2026-03-31'),
    (1, 3, 'call', '2026-01-10'),
    (3, NULL, 'call', '2026-03-05'), (3, 5, 'email', '2026-03-06'),
    (2, 7, 'call', '2026-04-20');                              -- after as_of
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES
    (2, '2026-01-01', '2026-04-01', 3000),
    (1, '2026-01-01', '2026-04-01', 2000);                     -- Cy has none
INSERT INTO sales_kpi.recurring_revenue (account_id, month, mrr) VALUES
    (1, '2025-12-01', 100), (1, '2026-01-01', 150), (1, '2026-02-01', 120), (1, '2026-03-01', 120),
    (2, '2025-12-01', 200), (2, '2026-01-01', 200), (2, '2026-02-01', 0),   (2, '2026-03-01', 50),
    (3, '2026-02-01', 70),  (3, '2026-04-01', 70);              -- no row for March: churn

-- rep_timeline by rep, Jan-Apr 2026 as of 04-15.  By hand:
-- Jan East: Ben won 1 (1000, 10 d) lost 1, 3 activities; Ada won 1 (2000,
--   20 d) lost 1 (R9 reopened later: not won as of 04-15), 1 activity.
--   bookings pct Ben 0, Ada 1; win rate tie 0.5: both 0; cycle (shorter
--   ranks higher) Ben 1, Ada 0; activities Ben 1, Ada 0.
-- Jan West: Cy won 1 (800, 30 d), alone: every rank 0.
-- Feb: Ben 550 (51 d) 1 activity; Cy 1000 (R8, owner at the close, 40 d).
-- Mar: Ben 400 (52 d) 1 activity (03-31); Cy no deal, 2 activities: win
--   rate and cycle NULL, no rank for them.  April: the activity of 04-20
--   is after as_of: no row.
SELECT dimension_value, period_start, peer_group, bookings, won, lost, round(win_rate::numeric, 4) AS win_rate,
       round(mean_cycle_days::numeric, 2) AS cycle_days, activities, peers,
       bookings_percentile, win_rate_percentile, cycle_percentile, activity_percentile
  FROM sales_kpi.rep_timeline('2026-01-01', '2026-05-01', 'month', 'rep', '2026-04-15')
 ORDER BY period_start, peer_group, dimension_value;

-- by team, January: East 3000, 2 won 2 lost, cycle (10+20)/2 = 15, 4
-- activities; West 800, cycle 30; peers: both teams.
SELECT dimension_value, bookings, won, lost, win_rate, mean_cycle_days, activities, peers,
       bookings_percentile, win_rate_percentile, cycle_percentile, activity_percentile
  FROM sales_kpi.rep_timeline('2026-01-01', '2026-02-01', 'month', 'team', '2026-04-15')
 ORDER BY dimension_value;

-- by deal kind, March as of 04-15: expansion has R7 (400) and Ben's call on
-- it; new has Cy's e-mail on R5; Cy's call with no deal is '(none)'.
SELECT dimension_value, bookings, won, activities
  FROM sales_kpi.rep_timeline('2026-03-01', '2026-04-01', 'month', 'kind', '2026-04-15')
 ORDER BY dimension_value;

-- as of 2026-02-01: R9 still won, so Ada's January is 2 won (2300) 1 lost,
-- cycle (20+24)/2 = 22; nothing in February yet.
SELECT dimension_value, period_start, bookings, won, lost, round(win_rate::numeric, 4) AS win_rate,
       mean_cycle_days, activities
  FROM sales_kpi.rep_timeline('2026-01-01', '2026-04-01', 'month', 'rep', '2026-02-01')
 ORDER BY period_start, dimension_value;

-- rep_volatility as of 2026-04-15: months Apr 2025 .. Mar 2026.
-- Ben 1000, 550, 400 and nine zeros: mean 162.5, population sd
-- sqrt(1462500/12 - 162.5^2) = 308.98, cv 1.9014.
-- Ada 2000 once: cv sqrt(11) = 3.3166.  Cy 800, 1000: mean 150, sd 337.89,
-- cv 2.2526.
SELECT dimension_value, period_start, period_end, months, active_months, bookings,
       round(mean_monthly_bookings, 2) AS mean, round(stddev_monthly_bookings, 2) AS sd,
       round(volatility::numeric, 4) AS volatility
  FROM sales_kpi.rep_volatility('2026-04-15', 'rep')
 ORDER BY dimension_value;
-- by deal kind: new 3800 (Jan), 1550 (Feb), ten zeros: mean 445.83, sd
-- 1097.62, cv 2.4620; expansion 400 once: sqrt(11) = 3.3166; renewal has
-- only the lost R10: bookings 0, mean 0, volatility NULL.
SELECT dimension_value, active_months, bookings, round(mean_monthly_bookings, 2) AS mean,
       round(stddev_monthly_bookings, 2) AS sd, round(volatility::numeric, 4) AS volatility
  FROM sales_kpi.rep_volatility('2026-04-15', 'kind')
 ORDER BY dimension_value;

-- last_minute_share, Q1 2026 (90 days; the last tenth starts 9 days before
-- 04-01, on 03-23): bookings 1000 + 550 + 2000 + 800 + 400 + 1000 = 5750,
-- of which R7's 400 in the last tenth: 400 / 5750 = 0.069565.
SELECT dimension_value, period_start, period_end, last_minute_start, won, last_minute_won, bookings,
       last_minute_bookings, round(last_minute_share::numeric, 6) AS share
  FROM sales_kpi.last_minute_share('2026-01-01', '2026-04-01', 'company', '2026-04-15');
-- by rep: Ben 400 / 1950 = 0.205128; Ada 0; Cy 0
SELECT dimension_value, won, last_minute_won, bookings, round(last_minute_share::numeric, 6) AS share
  FROM sales_kpi.last_minute_share('2026-01-01', '2026-04-01', 'rep', '2026-04-15')
 ORDER BY dimension_value;
-- the default period is the fiscal quarter holding as_of (Q1 here)
SELECT period_start, period_end, bookings FROM sales_kpi.last_minute_share(as_of => '2026-03-31');

-- org_attainment, Q1 2026 as of 04-15.
-- new business: R1 1000 + R2 550 + R3 2000 + R5 800 + R8 1000 = 5350 (R7 is
-- an expansion deal).  MRR: Acme +50 in Jan (expansion), -30 in Feb
-- (contraction); Globex -200 in Feb (churn), +50 in Mar (reactivation);
-- Initech 70 in Feb is new (left out), no row in Mar: churn 70.
-- Net expansion 50 + 50 - 30 - 270 = -200; net new 5150; quota 3000 + 2000
-- = 5000: attainment 1.03.
SELECT * FROM sales_kpi.org_attainment('2026-01-01', '2026-04-01', 'company', '2026-04-15');
-- by rep (MRR credited to the account's newest won deal before the month's
-- end): Ben 1550 + 50 - 30 = 1570 / 3000 = 0.523333; Ada 2000 - 200 + 50 =
-- 1850 / 2000 = 0.925; Cy 1800 - 70 = 1730, no quota: NULL.
SELECT dimension_value, new_business_bookings, net_expansion_mrr, net_new_revenue, quota,
       round(attainment::numeric, 6) AS attainment
  FROM sales_kpi.org_attainment('2026-01-01', '2026-04-01', 'rep', '2026-04-15')
 ORDER BY dimension_value;
-- by industry: no quota
SELECT dimension_value, new_business_bookings, net_expansion_mrr, net_new_revenue, quota, attainment
  FROM sales_kpi.org_attainment('2026-01-01', '2026-04-01', 'industry', '2026-04-15')
 ORDER BY dimension_value;
-- as of 2026-02-15: months Jan and Feb only; bookings R1, R3, R5, R8 = 4800;
-- MRR 50 - 30 - 200 = -180; 4620 / 5000 = 0.924
SELECT new_business_bookings, expansion_mrr, reactivation_mrr, contraction_mrr, churn_mrr,
       net_new_revenue, quota, attainment
  FROM sales_kpi.org_attainment('2026-01-01', '2026-04-01', 'company', '2026-02-15');

-- the views are the functions with their defaults
SELECT (SELECT count(*) FROM sales_kpi.rep_timeline) = (SELECT count(*) FROM sales_kpi.rep_timeline()) AS rep_timeline,
       (SELECT count(*) FROM sales_kpi.rep_volatility) = (SELECT count(*) FROM sales_kpi.rep_volatility()) AS rep_volatility,
       (SELECT count(*) FROM sales_kpi.last_minute_share) = (SELECT count(*) FROM sales_kpi.last_minute_share()) AS last_minute_share,
       (SELECT count(*) FROM sales_kpi.org_attainment) = (SELECT count(*) FROM sales_kpi.org_attainment()) AS org_attainment;

-- argument errors
SELECT * FROM sales_kpi.rep_timeline(grain => 'day');
SELECT * FROM sales_kpi.rep_timeline(dimension => 'planet');
SELECT * FROM sales_kpi.rep_timeline('2026-04-01', '2026-01-01');
SELECT * FROM sales_kpi.rep_volatility(NULL);
SELECT * FROM sales_kpi.rep_volatility(dimension => 'planet');
SELECT * FROM sales_kpi.last_minute_share('2026-04-01', '2026-01-01');
SELECT * FROM sales_kpi.org_attainment(dimension => 'planet');
SELECT * FROM sales_kpi.org_attainment(as_of => NULL);
