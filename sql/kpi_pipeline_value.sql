-- Pipeline value and forecast KPIs on a fixture worked out by hand.
-- Main instant A = 2026-03-15 12:00 UTC (fiscal Q1 2026 = [2026-01-01, 2026-04-01),
-- elapsed share 73.5 / 90 days); past instant B = 2026-02-15 00:00 UTC.
\i sql/fixture.psql

-- pipeline 3 "Channel": open stages at positions 1 and 5 (a gap), Intro has two
-- required milestones, Deal Reg (the last open stage) one.
INSERT INTO sales_kpi.pipeline (name, qualified_position) VALUES ('Channel', 1);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability, forecast_category) VALUES
    (3, 'Intro',     1,  'open', 0.30, 'pipeline'),   -- stage 10
    (3, 'Deal Reg',  5,  'open', 0.70, 'commit'),     -- stage 11
    (3, 'Won',       99, 'won',  1,    'closed'),     -- stage 12
    (3, 'Lost',      99, 'lost', 0,    'omitted');    -- stage 13
INSERT INTO sales_kpi.milestone (stage_id, name, position, required) VALUES
    (10, 'Intro call',     1, true),   -- milestone 6
    (10, 'Partner agreed', 2, true),   -- milestone 7
    (11, 'Registered',     1, true);   -- milestone 8
-- Q1 quotas: Ben 20000, Ada 5000 (and no deals); Cy has none.  Q2: Ben 20000.
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES
    (2, '2026-01-01', '2026-04-01', 20000), (1, '2026-01-01', '2026-04-01', 5000),
    (2, '2026-04-01', '2026-07-01', 20000);

-- The Partner pipeline has no deal at all.  Accounts: 1 Acme (Software), 2 Globex (Retail).
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, currency, amount, created_at,
                                   expected_close, forecast_category) VALUES
    (1, 1, 2, 'H1 won',              'USD', 1000, '2026-01-01', '2026-02-10', NULL),      -- 1
    (1, 2, 3, 'H2 lost',             'USD', 2000, '2026-01-01', '2026-01-15', NULL),      -- 2
    (1, 2, 3, 'H3 lost late',        'USD', 3000, '2026-01-01', '2026-02-28', NULL),      -- 3
    (1, 1, 2, 'H4 won fast',         'USD',  400, '2026-01-01', '2026-01-10', NULL),      -- 4
    (1, 1, 3, 'H5 regressed, won',   'USD',  600, '2026-01-01', '2026-02-15', NULL),      -- 5
    (1, 2, 3, 'H6 lost long ago',    'USD',  900, '2024-12-01', '2025-01-15', NULL),      -- 6
    (1, 1, 2, 'H7 won after A',      'USD', 5000, '2026-01-01', '2026-03-31', NULL),      -- 7
    (1, 1, 2, 'Oa pushed after A',   'EUR', 1000, '2026-03-05 12:00', '2026-03-25', NULL),-- 8
    (1, 2, 3, 'Ob commit in Q2',     'USD', 2000, '2026-02-20 12:00', '2026-05-15', 'commit'), -- 9
    (1, 1, 3, 'Oc owner changes',    'USD',  800, '2026-03-14 12:00', '2026-03-30', NULL),-- 10
    (1, 2, 2, 'Od amount changes',   'USD', 3000, '2026-02-01', '2026-03-28', NULL),      -- 11
    (1, 1, 2, 'R1 reopened',         'USD', 1500, '2026-01-10', '2026-03-31', 'commit'),  -- 12
    (1, 2, 3, 'R2 reopened, won',    'EUR',  500, '2026-01-02', '2026-02-28', NULL),      -- 13
    (1, 1, 3, 'Oe omitted',          'USD', 10000, '2026-03-01', '2026-03-31', 'omitted'),-- 14
    (3, 1, 2, 'Of channel intro',    'USD', 2000, '2026-03-01', '2026-03-20', NULL),      -- 15
    (3, 2, 3, 'Og channel last',     'USD', 1000, '2026-03-01', '2026-06-30', NULL),      -- 16
    (1, 1, 2, 'Oh no close date',    'USD',  700, '2026-03-02', NULL, NULL),              -- 17
    (1, 1, 2, 'Oi created after A',  'USD',  999, '2026-03-16', '2026-03-31', NULL),      -- 18
    (1, 2, 2, 'R3 reopened after A', 'USD', 1200, '2026-01-05', '2026-06-15', NULL);      -- 19
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES
    (1, 1, '2026-01-01'), (1, 2, '2026-01-05'), (1, 3, '2026-01-25'), (1, 5, '2026-02-10'),
    (2, 2, '2026-01-01'), (2, 6, '2026-01-11'),
    (3, 2, '2026-01-01'), (3, 3, '2026-01-31'), (3, 6, '2026-02-20'),
    (4, 2, '2026-01-01'), (4, 5, '2026-01-06'),
    (5, 2, '2026-01-01'), (5, 3, '2026-01-03'), (5, 2, '2026-01-18'), (5, 5, '2026-02-12'),
    (6, 2, '2024-12-01'), (6, 6, '2025-01-10'),
    (7, 2, '2026-01-01'), (7, 5, '2026-03-20'),
    (8, 2, '2026-03-05 12:00'),
    (9, 2, '2026-02-20 12:00'),
    (10, 2, '2026-03-14 12:00'),
    (11, 1, '2026-02-01'), (11, 3, '2026-03-01 12:00'),
    (12, 1, '2026-01-10'), (12, 6, '2026-01-20'), (12, 3, '2026-02-01'),
    (13, 1, '2026-01-02'), (13, 6, '2026-01-15'), (13, 4, '2026-01-25'), (13, 5, '2026-02-25'),
    (14, 4, '2026-03-01'),
    (15, 10, '2026-03-01'),
    (16, 10, '2026-03-01'), (16, 11, '2026-03-10'),
    (17, 1, '2026-03-02'),
    (18, 1, '2026-03-16'),
    (19, 2, '2026-01-05'), (19, 6, '2026-01-25'), (19, 2, '2026-03-20');
INSERT INTO sales_kpi.milestone_event (opportunity_id, milestone_id, completed_at) VALUES
    (8, 1, '2026-03-10'), (8, 2, '2026-03-20'),   -- Oa: 1 of 2 by A
    (9, 1, '2026-02-25'), (9, 2, '2026-03-01'),   -- Ob: 2 of 2
    (11, 3, '2026-03-02'), (11, 4, '2026-03-03'), -- Od: the required one (and an optional one)
    (15, 6, '2026-03-02'),                        -- Of: 1 of 2
    (16, 8, '2026-03-12'),                        -- Og: all of the last open stage
    (3, 3, '2026-02-05');                         -- H3: at B, 1 of 1 in Propose
-- changes after A: Oa pushed to Q2, Oc handed to Ben, Od grows to 4000
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id) VALUES
    (8, '2026-03-18', 1000, '2026-04-10', NULL, 2),
    (10, '2026-03-20', 800, '2026-03-30', NULL, 2),
    (11, '2026-03-18', 4000, '2026-03-28', NULL, 2);
UPDATE sales_kpi.opportunity SET expected_close = '2026-04-10' WHERE opportunity_id = 8;
UPDATE sales_kpi.opportunity SET owner_id = 2 WHERE opportunity_id = 10;
UPDATE sales_kpi.opportunity SET amount = 4000 WHERE opportunity_id = 11;
SELECT count(*) AS snapshots FROM sales_kpi.opportunity_history;   -- 19 creations + 3 changes = 22

-- Open at A (EUR at 1.20 on 2026-03-15), whole days in stage, p under stage / milestone:
--   7 H7  Discover  Ben  5000  73  0.25 / 0.25 (0 of 2)
--   8 Oa  Discover  Ben  1200  10  0.25 / 0.375 (1 of 2 by A: 0.25 + 0.25 * 1/2)
--   9 Ob  Discover  Cy   2000  23  0.25 / 0.5 (2 of 2)
--  10 Oc  Discover  Cy    800   1  0.25 / 0.25 (owner at A is Cy)
--  11 Od  Propose   Ben  3000  14  0.50 / 0.8 (1 of 1 required: toward Negotiate 0.80)
--  12 R1  Propose   Ben  1500  42  0.50 / 0.5 (lost, reopened before A)
--  14 Oe  Negotiate Cy  10000  14  0.80 / 0.8 (0 of 1)
--  15 Of  Intro     Ben  2000  14  0.30 / 0.5 (1 of 2, next open stage at position 5: 0.30 + 0.40/2)
--  16 Og  Deal Reg  Cy   1000   5  0.70 / 1 (last open stage, 1 of 1: toward won = 1)
--  17 Oh  Qualify   Ben   700  13  0.10 / 0.1 (no milestones)
-- Absent: 18 (created after A), 19 (lost at A), H1-H6 (closed).
SELECT * FROM sales_kpi.stage_pipeline_value('2026-03-15 12:00+00');
-- Channel Intro 1/2000/600, Deal Reg 1/1000/700; Direct Qualify 1/700/70, Discover 4/9000/2250,
-- Propose 2/4500/2250, Negotiate 1/10000/8000; Partner Register 0/0/0.
SELECT * FROM sales_kpi.stage_pipeline_value('2026-03-15 12:00+00', 'rep');
-- Ben: Direct Qualify 1/700, Discover 2/6200 (w 1550), Propose 2/4500 (2250), Negotiate 0; Channel Intro 1/2000 (600), Deal Reg 0.
-- Cy: Direct Discover 2/2800 (700), Negotiate 1/10000 (8000), others 0; Channel Deal Reg 1/1000 (700), Intro 0.
-- Partner has no open deal: its stage once, no breakdown value.

-- Historical sample at A, lookback 365 days: deals closed in [2025-03-15 12:00, A):
-- H1 won, H2 lost, H3 lost, H4 won, H5 won, R2 won, and R3 (lost 01-25, reopened only after A).
-- H6 closed before the window, H7 after A, R1 is open again at A.
-- Longest stays in whole days: Discover: H1 20 W, H2 10 L, H3 30 L, H4 5 W, H5 25 W (its stays: 2 and 25), R3 20 L;
-- Propose: H1 16 W, H3 20 L, H5 15 W; Negotiate: R2 31 W; Qualify: H1 4 W, R2 13 W.
-- With min_sample 3:
--   H7 73 days: none stayed >= 73 -> 0 deals, stage 0.25
--   Oa 10: H1 H2 H3 H5 R3 -> 5 deals, 2 won -> 0.4
--   Ob 23: H3 H5 -> 2 deals (< 3) -> stage 0.25
--   Oc 1: all six -> 3 won -> 0.5
--   Od 14: H1 H3 H5 -> 2 of 3 -> 0.666667 (rounded to 6 decimals)
--   R1 42: none -> 0.50;  Oe 14: R2 -> 1 deal -> 0.80;  Oh 13: R2 -> 1 deal -> 0.10
--   Of, Og: no sample in the Channel stages -> 0.30, 0.70
SELECT opportunity_id, stage_id, owner_id, amount, expected_close, forecast_category,
       time_in_stage_days, stage_probability, milestones_done, milestones_required, milestone_probability,
       historical_deals, historical_won, historical_probability
  FROM sales_kpi.deal_probability('2026-03-15 12:00+00', '365 days', 3);
-- the default min_sample (20) falls back to the stage probability everywhere
SELECT opportunity_id, historical_deals, historical_probability
  FROM sales_kpi.deal_probability('2026-03-15 12:00+00') WHERE opportunity_id IN (8, 10, 11);

-- Weighted pipeline value at A: 10 deals, 27200.
--   stage 70 + 2250 + 2250 + 8000 + 600 + 700 = 13870
--   milestone 1250 + 450 + 1000 + 200 + 2400 + 750 + 8000 + 1000 + 1000 + 70 = 16120
--   historical (min 3) 1250 + 480 + 500 + 400 + 2000.001 + 750 + 8000 + 600 + 700 + 70
--                      = 14750.001
SELECT * FROM sales_kpi.weighted_pipeline_value('2026-03-15 12:00+00');
SELECT * FROM sales_kpi.weighted_pipeline_value('2026-03-15 12:00+00', 'company', 'milestone');
SELECT * FROM sales_kpi.weighted_pipeline_value('2026-03-15 12:00+00', 'company', 'historical', '365 days', 3);
-- by pipeline: Channel 2 deals 3000 (stage 600 + 700 = 1300); Direct 8 deals 24200 (12570)
SELECT * FROM sales_kpi.weighted_pipeline_value('2026-03-15 12:00+00', 'pipeline');

-- In the past, at B = 2026-02-15: open are H3 (Propose since 01-31, 3000, Cy), H7 (Discover, 5000),
-- Od (Qualify since 02-01, 3000), R1 (Propose since 02-01, 1500), R2 (Negotiate since 01-25,
-- 500 EUR at 1.10 = 550).  Stage: 1500 + 1250 + 300 + 750 + 440 = 4240.
-- Milestone: H3 1 of 1 done by B -> 0.8 * 3000 = 2400; others as stage -> 5140.
-- Historical (min 2): sample closed in [2025-02-15, B): H1 W, H2 L, H4 W, H5 W and R3 (lost 01-25,
-- reopened after B); Propose stays H1 16 W, H5 15 W: H3 (15 days) and R1 (14) -> 2 of 2 = 1;
-- H7 (45 days in Discover) none; Od, R2 no sample -> 1250 + 3000 + 1500 + 300 + 440 = 6490.
SELECT * FROM sales_kpi.stage_pipeline_value('2026-02-15') WHERE deals > 0;
SELECT w.weighting, v.*
  FROM (VALUES ('stage'), ('milestone'), ('historical')) w(weighting),
       sales_kpi.weighted_pipeline_value('2026-02-15', 'company', w.weighting, '365 days', 2) v;

-- Pipeline coverage of Q1 at A.  Open expected in Q1: H7 5000, Oa 1200 (pushed only after A),
-- Oc 800, Od 3000, R1 1500, Oe 10000, Of 2000 = 7 deals, 23500 (Ob, Og in Q2; Oh has no date).
-- Bookings up to A: H1 1000 + H4 400 (Ben), H5 600 + R2 550 (Cy, 500 EUR at the 02-25 rate 1.10) = 2550;
-- H7 is won only after A.  Quota 25000: 23500 / (25000 - 2550) = 1.04677060133630
SELECT * FROM sales_kpi.pipeline_coverage('2026-01-01', '2026-04-01', 'company', '2026-03-15 12:00+00');
-- Ada: no pipeline, quota 5000 -> 0; Ben: 12700 / (20000 - 1400) = 0.682795698924731;
-- Cy: 10800 and 1150 booked but no quota -> null
SELECT * FROM sales_kpi.pipeline_coverage('2026-01-01', '2026-04-01', 'rep', '2026-03-15 12:00+00');
-- East (Ada + Ben): 12700 / (25000 - 1400) = 0.538135593220339; West: no quota
SELECT * FROM sales_kpi.pipeline_coverage('2026-01-01', '2026-04-01', 'team', '2026-03-15 12:00+00');
-- a period with no closed deal: Q2 at A, Ob 2000 + Og 1000 = 3000 / 20000 = 0.15;
-- the default period at A is Q1
SELECT * FROM sales_kpi.pipeline_coverage('2026-04-01', '2026-07-01', 'company', '2026-03-15 12:00+00');
SELECT * FROM sales_kpi.pipeline_coverage(as_of => '2026-03-15 12:00+00');
-- a period already over (Q4 2025): nothing can close in it any more, nothing was booked, no quota
SELECT * FROM sales_kpi.pipeline_coverage('2025-10-01', '2026-01-01', 'company', '2026-03-15 12:00+00');

-- Pace of Q1 at A: elapsed 73.5 / 90 = 0.816666666666667; pace = 2550 / (25000 * 0.8166...) = 0.124897959183673;
-- stage-weighted Q1 pipeline 1250 + 300 + 200 + 1500 + 750 + 8000 + 600 = 12600, projected 15150, gap 9850
SELECT * FROM sales_kpi.quota_pace('2026-01-01', '2026-04-01', 'company', '2026-03-15 12:00+00');
-- Ada: 0 booked, pace 0, gap 5000; Ben: 1400 / (20000 * 0.8166...) = 0.0857142857142857,
-- weighted 1250 + 300 + 1500 + 750 + 600 = 4400, projected 5800, gap 14200; Cy: no quota, weighted 8200
SELECT * FROM sales_kpi.quota_pace('2026-01-01', '2026-04-01', 'rep', '2026-03-15 12:00+00');
-- historical weighting (min 3): 1250 + 480 + 400 + 2000.001 + 750 + 8000 + 600
SELECT * FROM sales_kpi.quota_pace('2026-01-01', '2026-04-01', 'company', '2026-03-15 12:00+00',
                                   'historical', '365 days', 3);

-- Forecast of Q1 at A (min 3): bookings 2550, 7 open deals 23500;
-- stage 2550 + 12600 = 15150; milestone 2550 + (1250 + 450 + 200 + 2400 + 750 + 8000 + 1000) = 16600;
-- historical 2550 + 13480.001; range 15150 .. 16030.001.
-- Categories: commit R1 1500; best_case Od 3000; pipeline H7 5000 + Oa 1200 + Oc 800 + Of 2000 = 9000;
-- omitted Oe 10000 -> closed 2550, commit 4050, best_case 7050, pipeline 16050, omitted 10000
SELECT * FROM sales_kpi.forecast('2026-01-01', '2026-04-01', 'company', '2026-03-15 12:00+00', '365 days', 3);
-- by industry: Software (Acme) books 2000, open 20500: stage 11100, milestone 11650, historical 11480,
-- closed 2000, commit 3500, best_case 3500, pipeline 12500, omitted 10000;
-- Retail (Globex) books 550, open Od 3000: 1500, 2400, 2000.001; best_case 3550
SELECT * FROM sales_kpi.forecast('2026-01-01', '2026-04-01', 'industry', '2026-03-15 12:00+00', '365 days', 3);
-- Q2 at A, no closed deal: Ob (commit override) 2000 and Og (Deal Reg, commit) 1000;
-- stage 500 + 700 = 1200, milestone 1000 + 1000 = 2000, historical 1200; commit = pipeline = 3000
SELECT * FROM sales_kpi.forecast('2026-04-01', '2026-07-01', 'company', '2026-03-15 12:00+00', '365 days', 3);
-- Q1 as of B: bookings H4 400 + H1 1000 + H5 600 = 2000; open in Q1: H3 3000, H7 5000, Od 3000,
-- R1 1500, R2 550 = 13050; 2000 + 4240 / 5140 / 6490 (min 2);
-- closed 2000, commit 2000 + R1 1500 + R2 550 = 4050, best_case + H3 3000 = 7050, pipeline + 8000 = 15050
SELECT * FROM sales_kpi.forecast('2026-01-01', '2026-04-01', 'company', '2026-02-15', '365 days', 2);

-- argument errors
SELECT * FROM sales_kpi.weighted_pipeline_value('2026-03-15', 'company', 'gut feeling');
SELECT * FROM sales_kpi.stage_pipeline_value('2026-03-15', 'planet');
SELECT * FROM sales_kpi.deal_probability('2026-03-15', '-1 day');
SELECT * FROM sales_kpi.deal_probability('2026-03-15', '365 days', 0);
SELECT * FROM sales_kpi.stage_pipeline_value(NULL);
SELECT * FROM sales_kpi.forecast('2026-04-01', '2026-01-01', 'company', '2026-03-15');
SELECT * FROM sales_kpi.quota_pace(dimension => 'rep', weighting => NULL);

-- the views are the functions with their defaults (as of now: every deal above is in its
-- current state, so R3 and Oi are open, H7 is won)
SELECT (SELECT count(*) FROM sales_kpi.stage_pipeline_value) AS stage_rows,
       (SELECT deals FROM sales_kpi.weighted_pipeline_value) AS open_deals,
       (SELECT count(*) FROM sales_kpi.deal_probability) AS deal_rows,
       (SELECT count(*) FROM sales_kpi.pipeline_coverage) AS coverage_rows,
       (SELECT count(*) FROM sales_kpi.quota_pace) AS pace_rows,
       (SELECT count(*) FROM sales_kpi.forecast) AS forecast_rows;

-- A deal in a currency with no rate is refused when written (see the
-- constraints test); one that got in while a dump loaded (check_function_bodies
-- off) makes the KPIs that convert it fail with an error naming the currency,
-- and no internal query as context.  A forecast converts only the deals
-- expected to close in its period: that of the next quarter still answers.
SET check_function_bodies = off;
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, currency, amount, created_at,
                                   expected_close)
VALUES (1, 1, 3, 'in GBP', 'GBP', 10, '2026-03-01', '2026-03-20');
RESET check_function_bodies;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (20, 1, '2026-03-01');
SELECT * FROM sales_kpi.stage_pipeline_value('2026-03-15 12:00+00');
SELECT * FROM sales_kpi.forecast('2026-01-01', '2026-04-01', 'company', '2026-03-15 12:00+00');
SELECT dimension_value, open_deals, open_amount
  FROM sales_kpi.forecast('2026-04-01', '2026-07-01', 'company', '2026-03-15 12:00+00');
