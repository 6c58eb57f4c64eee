-- Funnel KPIs on a history worked out by hand: stage_conversion (all,
-- decided, strict), funnel_rates, pipeline_creation, loss_stage and
-- conversion_alerts.  Every expected number is derived in the comments.
\i sql/fixture.psql

-- pipeline 3 has open positions with a gap (1, 2, 5) and Qops from position 5;
-- pipeline 4 never gets a deal
INSERT INTO sales_kpi.pipeline (name, qualified_position) VALUES ('Gappy', 5), ('Empty', 1);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability, forecast_category) VALUES
    (3, 'G-One',  1,  'open', 0.10, 'pipeline'),      -- stage 10 (step 1)
    (3, 'G-Two',  2,  'open', 0.30, 'pipeline'),      -- stage 11 (step 2)
    (3, 'G-Five', 5,  'open', 0.60, 'commit'),        -- stage 12 (step 3)
    (3, 'G-Won',  99, 'won',  1,    'closed'),        -- stage 13
    (3, 'G-Lost', 99, 'lost', 0,    'omitted'),       -- stage 14
    (4, 'E-One',  1,  'open', 0.50, 'pipeline'),      -- stage 15
    (4, 'E-Won',  99, 'won',  1,    'closed'),        -- stage 16
    (4, 'E-Lost', 99, 'lost', 0,    'omitted');       -- stage 17
INSERT INTO sales_kpi.rep (name, team, role) VALUES ('Dee', 'East', 'sdr');   -- rep 4

-- id, pipeline, account, owner, amount, currency, source, competitor, lost_reason, created_at
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, currency,
                                   source, competitor, lost_reason, created_at)
VALUES ( 1, 1, 1, 2, 'D1',  1000, 'USD', 'Inbound',  NULL,    NULL,          '2026-01-05'),
       ( 2, 1, 2, 2, 'D2',  2000, 'USD', 'Outbound', 'Rival', 'Price',       '2026-01-06'),
       ( 3, 1, 1, 3, 'D3',  3000, 'USD', 'Inbound',  NULL,    NULL,          '2026-01-07'),
       ( 4, 1, 2, 3, 'D4',   400, 'USD', 'Referral', NULL,    NULL,          '2026-01-08'),
       ( 5, 1, 1, 2, 'D5',   500, 'EUR', 'Inbound',  NULL,    'Budget',      '2026-01-09'),
       ( 6, 1, 2, 1, 'D6',   600, 'USD', 'Outbound', 'Rival', 'Timing',      '2026-01-10'),
       ( 7, 1, 1, 2, 'D7',   700, 'USD', 'Partner',  NULL,    NULL,          '2026-02-01'),
       ( 8, 1, 1, 2, 'D8',   800, 'USD', 'Inbound',  NULL,    NULL,          '2026-02-10'),
       ( 9, 1, 2, 3, 'D9',   900, 'USD', 'Referral', NULL,    'No decision', '2026-03-20'),
       (10, 1, 1, 3, 'D10',  100, 'USD', 'Inbound',  NULL,    NULL,          '2026-01-15'),
       (11, 1, 2, 2, 'D11', 1100, 'USD', 'Inbound',  'Rival', 'Price',       '2025-12-01'),
       (12, 1, 1, 3, 'D12', 1000, 'EUR', 'Inbound',  NULL,    NULL,          '2025-12-15'),
       (13, 2, 2, 3, 'D13',  300, 'USD', 'Partner',  NULL,    NULL,          '2026-01-20'),
       (14, 2, 1, 2, 'D14',  200, 'EUR', 'Partner',  NULL,    'Price',       '2026-01-21'),
       (15, 3, 1, 2, 'D15', 1500, 'USD', 'Inbound',  NULL,    NULL,          '2026-01-11'),
       (16, 3, 2, 3, 'D16', 1600, 'USD', 'Outbound', NULL,    NULL,          '2026-01-12'),
       (17, 1, 2, 2, 'D17',  170, 'USD', 'Inbound',  NULL,    NULL,          '2026-04-10');

INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES
    (1, 1, '2026-01-05'), (1, 2, '2026-01-10'), (1, 3, '2026-01-20'), (1, 4, '2026-02-01'), (1, 5, '2026-02-20'),
    (2, 1, '2026-01-06'), (2, 2, '2026-01-15'), (2, 6, '2026-02-10'),
    -- D3 skips Discover
    (3, 1, '2026-01-07'), (3, 3, '2026-01-12'), (3, 4, '2026-03-01'),
    -- D4 regresses from Propose to Discover
    (4, 1, '2026-01-08'), (4, 2, '2026-01-12'), (4, 3, '2026-01-25'), (4, 2, '2026-02-05'),
    -- D5 is lost, then reopened into Discover
    (5, 1, '2026-01-09'), (5, 6, '2026-01-20'), (5, 2, '2026-02-01'),
    (7, 1, '2026-02-01'), (7, 5, '2026-02-25'),           -- D7 won straight from Qualify
    (8, 1, '2026-02-10'),
    (9, 1, '2026-03-20'), (9, 2, '2026-03-22'), (9, 6, '2026-03-28'),
    -- D10 skips Discover, goes back to it, then to Propose again
    (10, 1, '2026-01-15'), (10, 3, '2026-01-20'), (10, 2, '2026-01-25'), (10, 3, '2026-02-05'),
    (11, 1, '2025-12-01'), (11, 2, '2025-12-10'), (11, 3, '2026-01-05'), (11, 6, '2026-01-30'),
    (12, 1, '2025-12-15'), (12, 5, '2026-03-05'),
    (13, 7, '2026-01-20'), (13, 8, '2026-02-10'),
    (14, 7, '2026-01-21'), (14, 9, '2026-03-01'),
    (15, 10, '2026-01-11'), (15, 12, '2026-01-18'),        -- D15 skips G-Two (position 2)
    (16, 10, '2026-01-12'), (16, 11, '2026-01-14'), (16, 14, '2026-02-20'),
    (17, 1, '2026-04-10');
-- D6's history arrives out of order, in separate statements (back-dated inserts):
-- in time it is Qualify 01-10, Discover 01-20, Propose 02-01, Lost 03-15
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 3, '2026-02-01');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 6, '2026-03-15');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 1, '2026-01-10');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 2, '2026-01-20');
SELECT opportunity_id, stage_id, closed_at FROM sales_kpi.opportunity WHERE opportunity_id = 6;
-- D1's amount grows after creation: pipeline_creation keeps the amount as created
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, owner_id)
VALUES (1, '2026-02-01', 5000, 2);

-- leads: Dee is the SDR of most
INSERT INTO sales_kpi.lead (lead_id, created_at, source, rep_id, account_id, converted_at, opportunity_id) VALUES
    (1, '2026-01-02', 'Inbound',  4, 1, '2026-01-05', 1),
    (2, '2026-01-03', 'Outbound', 4, 2, '2026-01-06', 2),
    (3, '2026-01-04', 'Inbound',  4, 1, '2026-01-07', 3),
    (4, '2026-02-05', 'Inbound',  4, 1, '2026-02-10', 8),
    (5, '2026-01-10', 'Event',    3, 1, NULL, NULL),
    (6, '2026-02-01', 'Event',    NULL, NULL, NULL, NULL),
    (7, '2026-03-25', 'Inbound',  4, 2, '2026-04-10', 17);

-- ===========================================================================
-- stage_conversion, Q1 2026 as of 2026-04-15.  Direct deals created in Q1:
-- D1..D10.  At 04-15, highest stage reached (won: all four) and outcome:
--   D1 4 won, D2 2 lost, D3 4 open (skip), D4 3 open (now in 2), D5 2 open
--   (reopened), D6 3 lost, D7 4 won (from 1), D8 1 open, D9 2 lost, D10 3 open
-- reached 10, 9, 6, 3; won 2 at every stage; open deals whose highest stage
-- is k ("open_deals"): D8 | D5 | D4, D10 | D3 = 1, 1, 2, 1
-- all: conversion 9/10 = 0.9, 6/9 = 0.667, 3/6 = 0.5, null (last stage)
--      cumulative 1, 0.9, 0.6, 0.3; win 2/10, 2/9, 2/6, 2/3
-- Partner (one open stage): D13 won, D14 lost -> reached 2, win 0.5.
-- Gappy: D15 open at G-Five (skipping G-Two), D16 lost after G-Two -> reached
--   2, 2, 1 at positions 1, 2, 5 (steps 1, 2, 3); conversion 1, 0.5; win 0.
-- Empty: its one stage with zeros and null rates.
-- D11, D12 (created 2025) and D17 (created in April) are not in the cohort.
-- ===========================================================================
SELECT dimension, dimension_value, period_start, period_end, pipeline, stage, position, step,
       reached, advanced, open_deals, won,
       round(conversion_rate::numeric, 4) AS conversion, round(cumulative_rate::numeric, 4) AS cumulative,
       round(win_rate::numeric, 4) AS win
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'company', '2026-04-15');

-- decided: a deal still open with k as its highest stage has not had its chance
--   conversion 9/(10-1) = 1, 6/(9-1) = 0.75, 3/(6-2) = 0.75
--   cumulative k: reached(k) / (10 - open deals whose highest stage is below k):
--     10/10, 9/(10-1) = 1, 6/(10-2) = 0.75, 3/(10-4) = 0.5
--   win: won / closed deals that reached k: 2/(10-5) = 0.4, 2/(9-4) = 0.4,
--     2/(6-3) = 0.6667, 2/(3-1) = 1
SELECT pipeline, step, reached, advanced, open_deals, won,
       round(conversion_rate::numeric, 4) AS conversion, round(cumulative_rate::numeric, 4) AS cumulative,
       round(win_rate::numeric, 4) AS win
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'company', '2026-04-15', 'decided')
 WHERE pipeline = 'Direct';

-- strict: first entries of stages 1..k in order.
--   D1 4 (won), D2 2, D3 1 (skipped Discover), D4 3, D5 2, D6 3 (its events
--   were inserted out of order, but in time they are in order), D7 1 (won from
--   Qualify), D8 1, D9 2, D10 2 (entered Propose before Discover)
--   reached 10, 7 (D1 D2 D4 D5 D6 D9 D10), 3 (D1 D4 D6), 1 (D1)
--   won: D1 everywhere, D7 only at step 1 -> 2, 1, 1, 1
--   open at their strict top: D3 D8 (1), D5 D10 (2), D4 (3) -> 2, 2, 1, 0
--   conversion 0.7, 3/7 = 0.4286, 1/3; cumulative 1, 0.7, 0.3, 0.1;
--   win 0.2, 1/7 = 0.1429, 1/3, 1
SELECT pipeline, step, reached, advanced, open_deals, won,
       round(conversion_rate::numeric, 4) AS conversion, round(cumulative_rate::numeric, 4) AS cumulative,
       round(win_rate::numeric, 4) AS win
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'company', '2026-04-15', 'strict')
 WHERE pipeline IN ('Direct', 'Gappy');
-- Gappy strict: D15 entered G-One then G-Five (skipping G-Two) -> 1;
--   D16 -> 2: reached 2, 1, 0

-- in the past, 2026-02-12: D9 not created yet; D1 in Negotiate (not won yet),
-- D2 lost, D3 in Propose (Negotiate comes 03-01), D4 3, D5 2, D6 3 (open),
-- D7 1, D8 1, D10 3: reached 9, 7, 5, 1; no deal won yet
SELECT pipeline, step, reached, advanced, open_deals, won,
       round(conversion_rate::numeric, 4) AS conversion, round(win_rate::numeric, 4) AS win
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'company', '2026-02-12')
 WHERE pipeline = 'Direct';

-- by rep (owner at as_of): Ben owns D1 D2 D5 D7 D8 in Direct, Cy D3 D4 D9 D10,
-- Ada D6.  Ben: reached 5, 4 (not D8), 2 (D1 D7), 2; won 2
SELECT dimension_value, pipeline, step, reached, won, round(conversion_rate::numeric, 4) AS conversion
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'rep', '2026-04-15')
 WHERE pipeline = 'Direct';
-- D4 is handed to Ben on 2026-03-01: as of 04-15 it counts for Ben, as of 02-12 for Cy
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, owner_id) VALUES (4, '2026-03-01', 400, 2);
SELECT dimension_value, step, reached
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'rep', '2026-04-15')
 WHERE pipeline = 'Direct' AND step = 3;
SELECT dimension_value, step, reached
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'rep', '2026-02-12')
 WHERE pipeline = 'Direct' AND step = 3;
-- by pipeline: the empty pipeline still shows its stage
SELECT dimension_value, pipeline, stage, reached, conversion_rate, cumulative_rate, win_rate
  FROM sales_kpi.stage_conversion('2026-01-01', '2026-04-01', 'pipeline', '2026-04-15')
 WHERE step = 1;
-- a quarter with no deals: every stage, zeros, null rates
SELECT count(*) AS stages, sum(reached) AS reached, count(conversion_rate) AS rates
  FROM sales_kpi.stage_conversion('2025-07-01', '2025-10-01', 'company', '2026-04-15');

-- ===========================================================================
-- funnel_rates, Q1 2026 as of 2026-04-15
-- leads created in Q1: 1..7.  Converted by 04-15: 1, 2, 3, 4, 7 -> 5/7 = 0.7143
-- their deals reaching Direct's qualified position 2: D1 (won), D2 (2), D3 (4);
--   not D8 (1) nor D17 (1) -> qualified leads 3/7 = 0.4286
-- opps created in Q1: D1..D10, D13..D16 = 14; Qops: Direct all but D8 (9),
--   Partner (qualified from 1) D13 D14, Gappy (from 5) D15 only -> 12/14 = 0.8571
-- closed in Q1: won D1 D7 D12 D13 (4); lost D2 D6 D9 D11 D14 D16 (6).  Qops
--   among them: all but D16 (Gappy, lost after position 2) -> 4 won, 5 lost:
--   win rate 4/9 = 0.4444, Wilson 95%: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
--   with z = 1.959964, n = 9: centre 0.4444 + 0.2134 = 0.6579 / 1.4268 = 0.4611,
--   half width 1.959964 * sqrt(0.027435 + 0.011856) / 1.4268 = 0.2723
--   -> 0.1888 .. 0.7333;  Qops per win 9/4 = 2.25
-- ===========================================================================
SELECT dimension, dimension_value, period_start, period_end, leads, converted_leads,
       round(lead_to_opp_rate::numeric, 4) AS lead_to_opp, qualified_leads,
       round(lead_to_qop_rate::numeric, 4) AS lead_to_qop, opps, qualified_opps,
       round(opp_to_qop_rate::numeric, 4) AS opp_to_qop, qops_won, qops_lost,
       round(qop_win_rate::numeric, 4) AS qop_win, round(qop_win_rate_lower::numeric, 4) AS lower,
       round(qop_win_rate_upper::numeric, 4) AS upper, deals_won, qops_per_win
  FROM sales_kpi.funnel_rates('2026-01-01', '2026-04-01', 'company', '2026-04-15');
-- as of 2026-04-05 lead 7 is not converted yet (4/7); as of 2026-02-12: leads
-- 1..6 exist (lead 7 later), converted 1, 2, 3, 4 -> 4/6; qualified: D1 (in
-- Negotiate), D2, D3 -> 3/6; opps created by then: D1..D8, D10, D13..D16 = 13,
-- Qops: Direct all but D7 D8 (7), D13 D14, D15 -> 10; closed by then: D2 lost
-- 02-10, D11 lost 01-30, D13 won 02-10 (D5's loss was undone by its
-- reopening) -> 1 won, 2 lost, 3 Qops per win
SELECT as_of, leads, converted_leads, qualified_leads, opps, qualified_opps, qops_won, qops_lost, deals_won,
       qops_per_win
  FROM (VALUES ('2026-04-05'::timestamptz), ('2026-02-12')) v(as_of),
       sales_kpi.funnel_rates('2026-01-01', '2026-04-01', 'company', v.as_of);
-- by source: leads by the lead's source, deals by the deal's
--   Inbound: leads 1 3 4 7 (converted all four; qualified 1 3); opps D1 D3 D5 D8
--   D10 D15 (Qops all but D8: 5/6); closed Qops D1 D12 won, D11 lost
--   Outbound: lead 2 (qualified); opps D2 D6 D16 (Qops D2 D6); D2 D6 lost, D16
--   lost but no Qop.  Event: leads 5 6, nothing converted.  Partner: opps D7
--   D13 D14, all Qops; D7 D13 won, D14 lost.  Referral: D4 D9; D9 lost.
SELECT dimension_value, leads, converted_leads, qualified_leads, opps, qualified_opps, qops_won, qops_lost, deals_won
  FROM sales_kpi.funnel_rates('2026-01-01', '2026-04-01', 'source', '2026-04-15');
-- by rep: leads by their SDR (Dee 5, Cy lead 5, lead 6 none), deals by their
-- owner (created: at as_of, so D4 is Ben's since 03-01; closed: at the close)
--   Ben: D1 D2 D4 D5 D7 D8 D14 D15 (Qops all but D8); closed D1 D7 won, D2 D11 D14 lost
--   Cy: D3 D9 D10 D13 D16 (Qops all but D16); closed D12 D13 won, D9 lost (D16 no Qop)
--   Ada: D6, lost
SELECT dimension_value, leads, converted_leads, opps, qualified_opps, qops_won, qops_lost, deals_won
  FROM sales_kpi.funnel_rates('2026-01-01', '2026-04-01', 'rep', '2026-04-15');
-- by pipeline: leads have no pipeline, so the lead columns are null.
--   Direct: 10 opps, 9 Qops; closed Qops D1 D7 D12 won, D2 D6 D9 D11 lost
SELECT dimension_value, leads, lead_to_opp_rate, opps, qualified_opps, qops_won, qops_lost
  FROM sales_kpi.funnel_rates('2026-01-01', '2026-04-01', 'pipeline', '2026-04-15');
-- a period with nothing in it: one row of zeros, rates null
SELECT * FROM sales_kpi.funnel_rates('2025-07-01', '2025-10-01', 'company', '2026-04-15');

-- ===========================================================================
-- pipeline_creation, weeks from Monday 2026-01-05 to 2026-02-16, as of 04-15
--   Jan 05: D1 1000, D2 2000, D3 3000, D4 400, D5 500 EUR (x1.10 = 550), D6 600,
--           D15 1500 -> 7 opps, 9050; all reached their second stage (D3 and
--           D15 by a skip, D5 after its reopening) -> 7/7
--           (D1 grew to 5000 later: the amount as created counts)
--   Jan 12: D16 (Gappy, G-Two), D10 (skip to Propose) -> 2, 1700, 2/2
--   Jan 19: D13 300, D14 200 EUR = 220: Partner has one open stage, no 1 -> 2 step
--   Jan 26: D7 (created Sunday 02-01) 700, won -> 1/1
--   Feb 02: nothing: a zero row
--   Feb 09: D8 800, still in Qualify -> 0/1
-- Wilson for 7/7: lower 7/(7 + 3.8415) = 0.6457, upper 1
-- ===========================================================================
SELECT dimension, dimension_value, period_start, period_end, opps, amount, two_stage_opps, reached_second,
       round(stage_one_to_two_rate::numeric, 4) AS rate, round(stage_one_to_two_lower::numeric, 4) AS lower,
       round(stage_one_to_two_upper::numeric, 4) AS upper
  FROM sales_kpi.pipeline_creation('2026-01-05', '2026-02-16', 'week', 'company', '2026-04-15');
-- as of 2026-02-12 D7 has not won yet (0/1) and D8 exists (created 02-10)
SELECT period_start, opps, two_stage_opps, reached_second
  FROM sales_kpi.pipeline_creation('2026-01-05', '2026-02-16', 'week', 'company', '2026-02-12')
 WHERE opps > 0;
-- by month and by rep at creation (D4 counts for Cy, who owned it then)
SELECT dimension_value, period_start, opps, amount, two_stage_opps, reached_second
  FROM sales_kpi.pipeline_creation('2026-01-01', '2026-03-01', 'month', 'rep', '2026-04-15');

-- ===========================================================================
-- loss_stage, Q1 2026 as of 2026-04-15: lost D2 (Discover, Price, Rival, 2000),
-- D6 (Propose, Timing, Rival, 600), D9 (Discover, No decision, 900), D11
-- (Propose, Price, Rival, 1100), D14 (Partner Register, Price, 200 EUR at the
-- March rate 1.20 = 240), D16 (Gappy G-Two, 1600).  D5 was lost in January but
-- reopened, so it is not lost as of 04-15.  Direct: 4 losses, 2 at each stage.
-- ===========================================================================
SELECT dimension_value, pipeline, stage, position, breakdown, lost_reason, competitor, deals, amount,
       round(share_rate::numeric, 4) AS share
  FROM sales_kpi.loss_stage('2026-01-01', '2026-04-01', 'company', '2026-04-15');
-- as of 2026-01-25 only D5 was lost (from Qualify, 500 EUR at 1.10)
SELECT pipeline, stage, breakdown, lost_reason, competitor, deals, amount, share_rate
  FROM sales_kpi.loss_stage('2026-01-01', '2026-04-01', 'company', '2026-01-25');
-- by team of the owner at the close: East (Ada D6, Ben D2 D11 D14), West (Cy D9 D16)
SELECT dimension_value, pipeline, stage, deals, amount
  FROM sales_kpi.loss_stage('2026-01-01', '2026-04-01', 'team', '2026-04-15')
 WHERE breakdown = 'stage';
-- a period with no closed deals
SELECT count(*) FROM sales_kpi.loss_stage('2025-07-01', '2025-10-01', 'company', '2026-04-15');

-- ===========================================================================
-- conversion_alerts on weekly cohorts built for it.  Direct pipeline, weeks of
-- Monday 06-01, 06-08, 06-15 (trailing) and 06-22 (latest); as of 2026-07-08
-- with a 7-day horizon the latest complete week is 06-22 .. 06-29 (its horizon
-- ends 07-06).
--   Qualify: 10 entries in each trailing week, 3 move to Discover 2 days
--     later; latest week 11 entries, 10 move within 2 days, 1 after 8 days
--     (too late).  p = 9/30 = 0.3, n = 11: 0.3 +- 3 sqrt(0.21/11) = 0.3 +- 0.4145
--     -> 0 .. 0.7145; 10/11 = 0.9091 is above.
--   Discover: 3 entries per trailing week, 2 move to Propose 3 days later;
--     latest week 10 entries (the late one enters in the next week), 1 moves:
--     p = 6/9 = 0.6667, n = 10: 0.6667 -+ 3 sqrt(0.2222/10) = 0.6667 -+ 0.4472
--     -> 0.2195 .. 1; 0.1 is below.
--   Propose: 2, 2, 2 entries then 1, none move on: p = 0, limits 0 .. 0,
--     rate 0: inside.
-- ===========================================================================
DELETE FROM sales_kpi.lead;
DELETE FROM sales_kpi.opportunity;
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, created_at)
SELECT 100 + w * 20 + j, 1, 1, 2, 'A' || w || '-' || j, 100,
       timestamptz '2026-06-01' + w * interval '7 days' + j * interval '1 hour'
  FROM generate_series(0, 3) w, generate_series(1, 11) j
 WHERE j <= 10 OR w = 3;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, 1, o.created_at FROM sales_kpi.opportunity o
UNION ALL   -- to Discover
SELECT o.opportunity_id, 2, o.created_at + CASE WHEN j = 11 THEN interval '8 days' ELSE interval '2 days' END
  FROM sales_kpi.opportunity o, LATERAL (SELECT (o.opportunity_id - 100) / 20 AS w, (o.opportunity_id - 100) % 20 AS j) k
 WHERE (k.w < 3 AND k.j <= 3) OR k.w = 3
UNION ALL   -- to Propose
SELECT o.opportunity_id, 3, o.created_at + interval '5 days'
  FROM sales_kpi.opportunity o, LATERAL (SELECT (o.opportunity_id - 100) / 20 AS w, (o.opportunity_id - 100) % 20 AS j) k
 WHERE (k.w < 3 AND k.j <= 2) OR (k.w = 3 AND k.j = 1);
SELECT dimension, dimension_value, period_start, period_end, pipeline, stage, position, next_stage,
       entered, converted, round(conversion_rate::numeric, 4) AS rate, baseline_entered,
       round(baseline_rate::numeric, 4) AS baseline, round(control_lower::numeric, 4) AS lower,
       round(control_upper::numeric, 4) AS upper, alert
  FROM sales_kpi.conversion_alerts('2026-07-08', 'company', 3, '7 days');
-- a 3-day horizon: the week of 06-29 is not complete either (07-06 + 3 days is
-- after 07-08), so the latest week is the same; Discover -> Propose takes
-- exactly 3 days, which is within the horizon (inclusive).  With weeks => 1
-- the baseline is the week of 06-15 alone: Qualify 3/10, Discover 2/3, Propose 0/2
SELECT stage, entered, converted, baseline_entered, round(baseline_rate::numeric, 4) AS baseline, alert
  FROM sales_kpi.conversion_alerts('2026-07-08', 'company', 1, '3 days');
-- no week complete yet in the data: no rows
SELECT count(*) FROM sales_kpi.conversion_alerts('2026-06-03', 'company', 3, '7 days');

-- ===========================================================================
-- the views (defaults: now, which is after all the data) exist and run
-- ===========================================================================
SELECT count(*) >= 0 AS ok FROM sales_kpi.stage_conversion;
SELECT count(*) >= 0 AS ok FROM sales_kpi.funnel_rates;
SELECT count(*) >= 0 AS ok FROM sales_kpi.pipeline_creation;
SELECT count(*) >= 0 AS ok FROM sales_kpi.loss_stage;
SELECT count(*) >= 0 AS ok FROM sales_kpi.conversion_alerts;

-- ===========================================================================
-- argument errors
-- ===========================================================================
SELECT * FROM sales_kpi.stage_conversion(variant => 'best');
SELECT * FROM sales_kpi.stage_conversion(dimension => 'planet');
SELECT * FROM sales_kpi.stage_conversion(dimension => NULL);
SELECT * FROM sales_kpi.stage_conversion('2026-04-01', '2026-01-01');
SELECT * FROM sales_kpi.stage_conversion(as_of => NULL);
SELECT * FROM sales_kpi.funnel_rates(dimension => 'planet');
SELECT * FROM sales_kpi.funnel_rates('2026-04-01', '2026-01-01');
SELECT * FROM sales_kpi.pipeline_creation(grain => 'day');
SELECT * FROM sales_kpi.pipeline_creation('2026-04-01', '2026-01-01');
SELECT * FROM sales_kpi.pipeline_creation(dimension => 'planet');
SELECT * FROM sales_kpi.loss_stage(dimension => 'planet');
SELECT * FROM sales_kpi.loss_stage('2026-04-01', '2026-01-01');
SELECT * FROM sales_kpi.conversion_alerts(weeks => 0);
SELECT * FROM sales_kpi.conversion_alerts(horizon => '-1 day');
SELECT * FROM sales_kpi.conversion_alerts(dimension => 'planet');
SELECT * FROM sales_kpi.conversion_alerts(as_of => NULL);
