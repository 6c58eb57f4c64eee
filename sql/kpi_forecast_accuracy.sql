-- forecast_accuracy on submissions and bookings worked out by hand.
\i sql/fixture.psql

-- Reps: 1 Ada (East, no submissions), 2 Ben (East), 3 Cy (West).
-- Quarters 2026-Q1, Q2, Q3; as_of 2026-08-15: Q1 and Q2 ended, Q3 running.
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, currency, created_at, expected_close)
VALUES (1, 1, 2, 'A', 600, 'USD', '2026-01-05', '2026-02-28'),   -- 1 Ben, won 02-10
       (1, 2, 2, 'B', 250, 'EUR', '2026-01-05', '2026-03-31'),   -- 2 Ben, won 03-05: 250 EUR x 1.20 = 300
       (1, 1, 2, 'C', 1000, 'USD', '2026-03-01', '2026-05-31'),  -- 3 Ben at the close (05-10), Cy's from 06-01
       (1, 1, 2, 'D', 5000, 'USD', '2026-03-01', '2026-05-31'),  -- 4 Ben, lost: no bookings
       (1, 1, 2, 'E', 700, 'USD', '2026-06-01', '2026-07-31'),   -- 5 Ben, won 07-20 (Q3, before as_of)
       (1, 1, 2, 'F', 800, 'USD', '2026-06-01', '2026-08-31'),   -- 6 Ben, won 08-20 (after as_of)
       (1, 2, 3, 'G', 400, 'USD', '2026-01-02', '2026-01-31'),   -- 7 Cy, won 01-20
       (1, 2, 3, 'H', 200, 'USD', '2026-07-01', '2026-08-31'),   -- 8 Cy, won 08-01 (Q3)
       (1, 1, 1, 'I', 300, 'USD', '2026-01-10', '2026-02-28'),   -- 9 Ada, won 02-01
       (1, 1, 2, 'J', 100, 'USD', '2026-01-10', '2026-03-31'),   -- 10 Ben, won 03-10, reopened 04-01
       (1, 2, 3, 'K', 900, 'USD', '2026-04-01', '2026-06-30');   -- 11 Cy, lost in Q2: Cy books nothing in Q2
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES
    (1, 1, '2026-01-05'), (1, 5, '2026-02-10'),
    (2, 1, '2026-01-05'), (2, 5, '2026-03-05'),
    (3, 1, '2026-03-01'), (3, 5, '2026-05-10'),
    (4, 1, '2026-03-01'), (4, 6, '2026-05-15'),
    (5, 1, '2026-06-01'), (5, 5, '2026-07-20'),
    (6, 1, '2026-06-01'), (6, 5, '2026-08-20'),
    (7, 1, '2026-01-02'), (7, 5, '2026-01-20'),
    (8, 1, '2026-07-01'), (8, 5, '2026-08-01'),
    (9, 1, '2026-01-10'), (9, 5, '2026-02-01'),
    (10, 1, '2026-01-10'), (10, 5, '2026-03-10'), (10, 3, '2026-04-01'),
    (11, 1, '2026-04-01'), (11, 6, '2026-06-10');
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (3, '2026-06-01', 1000, '2026-05-31', 3);

INSERT INTO sales_kpi.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount) VALUES
    (2, '2026-01-01', '2026-04-01', '2025-12-20', 'commit', 1000),
    (2, '2026-01-01', '2026-04-01', '2025-12-31 23:00', 'commit', 1200),   -- newest by the Q1 start
    (2, '2026-01-01', '2026-04-01', '2026-01-15', 'commit', 5000),         -- after the cut-off of 0
    (2, '2026-01-01', '2026-04-01', '2025-12-30', 'best_case', 9999),      -- not a commit
    (2, '2026-02-01', '2026-03-01', '2026-01-31', 'commit', 700),          -- a monthly commit (February)
    (2, '2026-04-01', '2026-07-01', '2026-03-25', 'commit', 900),
    (2, '2026-07-01', '2026-10-01', '2026-06-30', 'commit', 2000),
    (3, '2026-01-01', '2026-04-01', '2025-12-15', 'commit', 500),
    (3, '2026-04-01', '2026-07-01', '2026-03-30', 'commit', 300),
    (3, '2026-07-01', '2026-10-01', '2026-09-01', 'commit', 400);          -- submitted after as_of

-- By rep, Q1 to Q3 as of 2026-08-15, cut-off at the period start:
--   Ada: Q1 bookings 300 (I), no commit: every ratio null, periods_measured 0.
--   Ben: Q1 commit 1200, bookings 600 + 300 = 900 (J was reopened on 04-01, so
--        as of 08-15 it is not won): accuracy 1 - 300/900 = 0.666667, bias +0.333333;
--        Q2 commit 900, bookings 1000 (C, credited to Ben, the owner at the close):
--        accuracy 0.9, bias -0.1;  means: accuracy 0.783333, bias 0.116667 (2 periods);
--        Q3 running: commit 2000, bookings so far 700 (F closes after as_of),
--        calibrated 2000 / 1.116667 = 1791.04.
--   Cy:  Q1 commit 500, bookings 400: accuracy 0.75, bias 0.25;
--        Q2 commit 300, bookings 0: no denominator, accuracy and bias null;
--        means over Q1 only: 0.75, 0.25;  Q3: its commit came after as_of, so
--        none; bookings 200; no calibrated commit.
SELECT dimension, dimension_value, period_start, period_end, period_complete, commit_amount, commit_submitted_at,
       bookings, round(accuracy::numeric, 6) AS accuracy, round(bias::numeric, 6) AS bias,
       round(mean_accuracy::numeric, 6) AS mean_accuracy, round(mean_bias::numeric, 6) AS mean_bias,
       periods_measured, calibrated_commit
  FROM sales_kpi.forecast_accuracy('2026-01-01', '2026-10-01', as_of => '2026-08-15');
-- cut-off 30 days after the period start: Ben's Q1 commit is the 5000 of
-- 01-15: accuracy 1 - 4100/900 = -3.555556 (below 0: off by more than the
-- actual), bias 4.555556; the others do not change
SELECT dimension_value, period_start, commit_amount, bookings, round(accuracy::numeric, 6) AS accuracy,
       round(bias::numeric, 6) AS bias
  FROM sales_kpi.forecast_accuracy('2026-01-01', '2026-04-01', as_of => '2026-08-15', cutoff => '30 days')
 WHERE commit_amount IS NOT NULL;
-- by team: East = Ada + Ben: Q1 commit 1200, bookings 1200: accuracy 1, bias 0;
--   Q2 900 vs 1000: 0.9, -0.1; means 0.95, -0.05; Q3 commit 2000, bookings 700,
--   calibrated 2000 / 0.95 = 2105.26.  West = Cy.
SELECT dimension, dimension_value, period_start, commit_amount, bookings, round(accuracy::numeric, 6) AS accuracy,
       round(bias::numeric, 6) AS bias, round(mean_accuracy::numeric, 6) AS mean_accuracy,
       round(mean_bias::numeric, 6) AS mean_bias, calibrated_commit
  FROM sales_kpi.forecast_accuracy('2026-01-01', '2026-10-01', dimension => 'team', as_of => '2026-08-15');
-- company: Q1 1700 vs 1600: 0.9375, 0.0625; Q2 1200 vs 1000: 0.8, 0.2;
--   means 0.86875, 0.13125; Q3 2000 vs 900, calibrated 2000 / 1.13125 = 1767.96
SELECT dimension, dimension_value, period_start, commit_amount, bookings, accuracy, bias,
       mean_accuracy, mean_bias, calibrated_commit
  FROM sales_kpi.forecast_accuracy('2026-01-01', '2026-10-01', dimension => 'company', as_of => '2026-08-15');
-- months: only Ben's February commit (700) matches a monthly period; February
-- bookings: Ben 600 (A), Ada 300 (I): Ben's accuracy 1 - 100/600 = 0.833333, bias 0.166667
SELECT dimension_value, period_start, period_end, commit_amount, bookings, round(accuracy::numeric, 6) AS accuracy,
       round(bias::numeric, 6) AS bias
  FROM sales_kpi.forecast_accuracy('2026-02-01', '2026-03-01', 'month', as_of => '2026-08-15');
-- as of 2026-03-20 (history then): Q1 is running; J was still won, so Ben
-- has 600 + 300 + 100 = 1000 so far; no period has ended: no means, no
-- calibration
SELECT dimension_value, period_start, period_complete, commit_amount, bookings, accuracy, mean_bias, calibrated_commit
  FROM sales_kpi.forecast_accuracy('2026-01-01', '2026-04-01', as_of => '2026-03-20');
-- the default series: five fiscal quarters, from the one a year before as_of
-- to the one holding it (reps with no commit and no bookings in a quarter
-- still get the row)
SELECT dimension_value, count(*) AS quarters, min(period_start), max(period_end),
       count(*) FILTER (WHERE period_complete) AS ended
  FROM sales_kpi.forecast_accuracy(as_of => '2026-08-15') GROUP BY 1 ORDER BY 1;
-- the view is the function with the defaults
SELECT (SELECT count(*) FROM sales_kpi.forecast_accuracy) = (SELECT count(*) FROM sales_kpi.forecast_accuracy()) AS view_ok;

-- argument errors
SELECT * FROM sales_kpi.forecast_accuracy(grain => 'decade');
SELECT * FROM sales_kpi.forecast_accuracy(dimension => 'pipeline');
SELECT * FROM sales_kpi.forecast_accuracy(dimension => 'planet');
SELECT * FROM sales_kpi.forecast_accuracy(cutoff => NULL);
SELECT * FROM sales_kpi.forecast_accuracy(as_of => NULL);
SELECT * FROM sales_kpi.forecast_accuracy('2026-04-01', '2026-01-01');
