-- stage_durations, stage_norms and stalled_deals on histories worked out by hand.
\i sql/fixture.psql

-- Direct pipeline: stages 1 Qualify, 2 Discover, 3 Propose, 4 Negotiate, 5 Won, 6 Lost;
-- Partner: 7 Register, 8 Won, 9 Lost.  Reps: 2 Ben (East), 3 Cy (West).
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, currency, created_at, expected_close)
VALUES (1, 1, 2, 'W1 won',                    1000, 'USD', '2026-01-01', '2026-02-28'),  -- 1
       (1, 1, 2, 'W2 won, returns to stages', 1000, 'USD', '2026-01-01', '2026-02-28'),  -- 2
       (1, 2, 3, 'W3 won, out of order',      1000, 'USD', '2026-03-01', '2026-03-31'),  -- 3
       (2, 2, 3, 'W4 partner won',            1000, 'USD', '2026-01-01', '2026-01-31'),  -- 4
       (1, 1, 2, 'W5 won long ago',           1000, 'USD', '2025-01-01', '2025-03-31'),  -- 5
       (1, 2, 3, 'R lost, reopened, won',     1000, 'USD', '2026-01-01', '2026-03-31'),  -- 6
       (1, 1, 2, 'W6 won, reopened later',    1000, 'USD', '2026-04-01', '2026-04-30'),  -- 7
       (1, 1, 2, 'O1 long in Qualify',         100, 'USD', '2026-05-01', '2026-07-31'),  -- 8
       (1, 2, 3, 'O2 milestone missing',       200, 'USD', '2026-05-20', '2026-06-30'),  -- 9
       (1, 1, 2, 'O3 all three',               300, 'USD', '2026-04-20', '2026-05-15'),  -- 10
       (1, 2, 3, 'O4 healthy',                 400, 'USD', '2026-05-20', '2026-06-20'),  -- 11
       (2, 2, 3, 'O5 partner overdue',         500, 'USD', '2026-05-20', '2026-05-31');  -- 12

INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES
    -- W1: Qualify 2 days, Discover 20, Propose 16, won 2026-02-08
    (1, 1, '2026-01-01'), (1, 2, '2026-01-03'), (1, 3, '2026-01-23'), (1, 5, '2026-02-08'),
    -- W2: Qualify 4, Discover 6, Propose 8, back to Discover 12, Propose again 14, won 2026-02-14
    (2, 1, '2026-01-01'), (2, 2, '2026-01-05'), (2, 3, '2026-01-11'), (2, 2, '2026-01-19'),
    (2, 3, '2026-01-31'), (2, 5, '2026-02-14'),
    -- W4 (Partner): Register 30 days, won 2026-01-31
    (4, 7, '2026-01-01'), (4, 8, '2026-01-31'),
    -- W5: Qualify 31, Discover 28, won 2025-03-01 (more than 365 days before 2026-06-01)
    (5, 1, '2025-01-01'), (5, 2, '2025-02-01'), (5, 5, '2025-03-01'),
    -- R: Qualify 20 days, lost, 30 days later reopened into Discover for 10 days, won 2026-03-02
    (6, 1, '2026-01-01'), (6, 6, '2026-01-21'), (6, 2, '2026-02-20'), (6, 5, '2026-03-02'),
    -- W6: Qualify 6, Propose 14, won 2026-04-21, reopened into Negotiate 2026-07-01
    (7, 1, '2026-04-01'), (7, 3, '2026-04-07'), (7, 5, '2026-04-21'), (7, 4, '2026-07-01'),
    -- open deals
    (8, 1, '2026-05-01'),                                    -- O1: Qualify since 2026-05-01
    (9, 1, '2026-05-20'), (9, 2, '2026-05-25'),              -- O2: Discover since 2026-05-25
    (10, 1, '2026-04-20'), (10, 3, '2026-05-01'),            -- O3: Propose since 2026-05-01
    (11, 1, '2026-05-20'), (11, 4, '2026-05-28'),            -- O4: Negotiate since 2026-05-28
    (12, 7, '2026-05-20');                                   -- O5: Register since 2026-05-20
-- W3's events arrive out of order: the win first, then the earlier history
-- (its stage_event_ids do not follow time).  Qualify 8 days, Negotiate 12.
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (3, 5, '2026-03-21');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (3, 4, '2026-03-09');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (3, 1, '2026-03-01');
SELECT opportunity_id, stage_id, closed_at FROM sales_kpi.opportunity WHERE opportunity_id IN (3, 6, 7) ORDER BY 1;

-- milestones: O2 has only "Pain confirmed"; O3 sends its proposal after
-- 2026-06-01; O4 has its legal review
INSERT INTO sales_kpi.milestone_event (opportunity_id, milestone_id, completed_at) VALUES
    (9, 1, '2026-05-26'), (10, 3, '2026-06-05'), (11, 5, '2026-05-29');
-- W2 changes hands after its win (credited to Ben, who owned it at the
-- close); O3 changes hands after 2026-06-01 (Ben's at that date)
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (2, '2026-03-01', 1000, '2026-02-28', 3),
       (10, '2026-07-01', 300, '2026-05-15', 3);

-- Norms at 2026-06-01, 365 days: won deals W1, W2, W3, W6 (won 2026-04-21,
-- reopened only later), R (Direct) and W4 (Partner); W5 is too old.
--   Qualify:   2, 4, 8, 20, 6 -> sorted 2 4 6 8 20; mean 8; rank floor(q(n-1)):
--              p50 = #2 = 6, p75 = #3 = 8, p90 = #3 = 8
--   Discover:  20, 6, 12 (W2 twice), 10 (R) -> 6 10 12 20; mean 12; p50 #1 = 10, p75 #2 = 12, p90 #2 = 12
--   Propose:   16, 8, 14 (W2), 14 (W6) -> 8 14 14 16; mean 13; p50 = p75 = p90 = 14
--   Negotiate: 12 (W3); Register: 30 (W4).  R's 30 days in Lost are no stage time.
-- Percentiles come from a 1% sketch: within 1% of these (6.1 for 6, 9.9 for 10, 13.9 for 14...).
SELECT dimension, dimension_value, pipeline, stage, stage_position, stays,
       round(mean_days::numeric, 3) AS mean_days, round(p50_days::numeric, 1) AS p50,
       round(p75_days::numeric, 1) AS p75, round(p90_days::numeric, 1) AS p90
  FROM sales_kpi.stage_norms('2026-06-01');
-- 730 days takes W5 in: Qualify + 31 -> 2 4 6 8 20 31, mean 71/6 = 11.833, p50 #2 = 6,
-- p75 #3 = 8, p90 #4 = 20; Discover + 28 -> 6 10 12 20 28, mean 15.2, p50 #2 = 12,
-- p75 #3 = 20, p90 #3 = 20
SELECT stage, stays, round(mean_days::numeric, 3) AS mean_days, round(p50_days::numeric, 1) AS p50,
       round(p75_days::numeric, 1) AS p75, round(p90_days::numeric, 1) AS p90
  FROM sales_kpi.stage_norms('2026-06-01', lookback => '730 days') WHERE pipeline = 'Direct';
-- 60 days: only W6 (won 2026-04-21): Qualify 6, Propose 14; Discover and
-- Negotiate have no won deal: 0 stays and null norms; Partner has none at all
SELECT pipeline, stage, stays, round(mean_days::numeric, 3) AS mean_days, round(p75_days::numeric, 1) AS p75
  FROM sales_kpi.stage_norms('2026-06-01', lookback => '60 days');
-- at 2026-08-01 W6 is open again (reopened 2026-07-01), so it is no longer a
-- won deal; 365 days still hold W1, W2, W3, R, W4: Qualify 2 4 8 20 (mean 8.5)
SELECT stage, stays, round(mean_days::numeric, 3) AS mean_days
  FROM sales_kpi.stage_norms('2026-08-01') WHERE pipeline = 'Direct' AND stage = 'Qualify';
-- by rep, credited at the close: Ben has W1, W2, W6; Cy W3, R (Direct) and W4 (Partner)
--   Ben Qualify 2 4 6 (mean 4, all percentiles 4); Discover 20 6 12 (mean 12.667, 12);
--   Propose 16 8 14 14 (mean 13, 14); Negotiate none
--   Cy  Qualify 8 20 (mean 14, rank floor(q) = 0: 8); Discover 10; Propose none; Negotiate 12; Register 30
SELECT dimension_value, pipeline, stage, stays, round(mean_days::numeric, 3) AS mean_days,
       round(p50_days::numeric, 1) AS p50, round(p90_days::numeric, 1) AS p90
  FROM sales_kpi.stage_norms('2026-06-01', 'rep');

-- Durations of the deals open at 2026-06-01: each open stage the deal has
-- been in, the current stay running to 2026-06-01.
--   O1 Qualify 31 (current); O2 Qualify 5, Discover 7 (current); O3 Qualify 11,
--   Propose 31 (current); O4 Qualify 8, Negotiate 4 (current); O5 Register 12 (current)
SELECT opportunity_id, stage, stage_position, is_open, is_current, stays, latest_entered_at, latest_left_at,
       latest_stay_days, total_days
  FROM sales_kpi.stage_durations('2026-06-01');
-- won and reopened deals asked for by id, whatever their state:
--   W2: Qualify 4; Discover stays 6 and 12 (latest 01-19 to 01-31, total 18);
--       Propose 8 and 14 (latest 01-31 to 02-14, total 22)
--   W3 (inserted out of order): Qualify 03-01 to 03-09, 8; Negotiate 03-09 to 03-21, 12
--   R: Qualify 20 (left for Lost 01-21); Discover 10 (the time lost is not counted)
--   W6 at 2026-06-01 is won: Qualify 6, Propose 14
SELECT opportunity_id, stage, is_open, is_current, stays, latest_entered_at, latest_left_at,
       latest_stay_days, total_days
  FROM sales_kpi.stage_durations('2026-06-01', opportunity_ids => '{2, 3, 6, 7, 7, NULL}');
-- W6 at 2026-08-01: open again, in Negotiate since 07-01 (31 days, current)
SELECT opportunity_id, stage, is_open, is_current, stays, latest_stay_days, total_days
  FROM sales_kpi.stage_durations('2026-08-01', opportunity_ids => '{7}');
-- before W6 existed, and a deal that does not exist: nothing
SELECT count(*) FROM sales_kpi.stage_durations('2026-03-01', opportunity_ids => '{7, 999}');
-- by team (owner at as_of): O1, O3 Ben (East); O2, O4, O5 Cy (West)
SELECT dimension, dimension_value, opportunity_id, count(*) AS stages
  FROM sales_kpi.stage_durations('2026-06-01', 'team') GROUP BY 1, 2, 3 ORDER BY 3;

-- Stalled at 2026-06-01 (365-day norms: p75 Qualify 8, Discover 12, Propose 14,
-- Negotiate 12, Register 30):
--   O1: 31 days in Qualify > 8: over_norm (Qualify has no milestones; expected 07-31)
--   O2: 7 days in Discover <= 12; "Budget known" missing
--   O3: 31 days in Propose > 14; "Proposal sent" comes 06-05; expected 05-15: 17 days overdue
--   O4: 4 days in Negotiate, legal review done, expected 06-20: not stalled
--   O5: 12 days in Register <= 30; expected 05-31: 1 day overdue
SELECT opportunity_id, pipeline, stage, owner_id, amount_base, reasons, stage_entered_at, stage_days,
       round(norm_p75_days::numeric, 1) AS norm_p75, missing_milestones, expected_close, overdue_days
  FROM sales_kpi.stalled_deals('2026-06-01');
-- 60-day norms: Discover, Negotiate and Register have none, so no over_norm
-- there; Qualify p75 6 (O1 still over), Propose 14 (O3 still over)
SELECT opportunity_id, stage, reasons, round(norm_p75_days::numeric, 1) AS norm_p75
  FROM sales_kpi.stalled_deals('2026-06-01', lookback => '60 days');
-- 2026-06-10: O1 40 days in Qualify; O2 16 days in Discover > 12, now over
-- the norm too; O3's proposal was sent on 06-05, so only over_norm and overdue
-- remain (40 days, 26 overdue); O4 is 13 days in Negotiate > 12 (over_norm),
-- not yet overdue (expected 06-20); O5 21 days in Register, 10 days overdue
SELECT opportunity_id, stage, reasons, stage_days, missing_milestones, overdue_days
  FROM sales_kpi.stalled_deals('2026-06-10');
-- by rep at as_of: O3 is still Ben's on 2026-06-01
SELECT dimension, dimension_value, opportunity_id, reasons
  FROM sales_kpi.stalled_deals('2026-06-01', 'rep');

-- the views are the functions with the defaults (now: 2026 history is in the past)
SELECT (SELECT count(*) FROM sales_kpi.stage_norms) = (SELECT count(*) FROM sales_kpi.stage_norms()) AS norms_view,
       (SELECT count(*) FROM sales_kpi.stage_durations) = (SELECT count(*) FROM sales_kpi.stage_durations()) AS durations_view,
       (SELECT count(*) FROM sales_kpi.stalled_deals) = (SELECT count(*) FROM sales_kpi.stalled_deals()) AS stalled_view;

-- argument errors
SELECT * FROM sales_kpi.stage_norms('2026-06-01', 'planet');
SELECT * FROM sales_kpi.stage_norms('2026-06-01', lookback => '-1 day');
SELECT * FROM sales_kpi.stalled_deals('2026-06-01', lookback => NULL);
SELECT * FROM sales_kpi.stalled_deals('2026-06-01', NULL);
SELECT * FROM sales_kpi.stage_durations(NULL);
SELECT * FROM sales_kpi.stage_durations('2026-06-01', 'galaxy', '{1}');
