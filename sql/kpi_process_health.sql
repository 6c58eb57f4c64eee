-- Process health: data_quality_findings and gate_violations on a fixture
-- worked out by hand.  Rules that constraints or triggers prevent are
-- provoked inside one transaction (constraints dropped, triggers bypassed
-- with session_replication_role = replica) that is rolled back at the end.
\i sql/fixture.psql

-- a third pipeline whose open positions have a gap: 1, 2, 4
INSERT INTO sales_kpi.pipeline (name, qualified_position) VALUES ('Gappy', 1);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability, forecast_category) VALUES
    (3, 'G1', 1, 'open', 0.1, 'pipeline'),     -- stage 10
    (3, 'G2', 2, 'open', 0.2, 'pipeline'),     -- stage 11
    (3, 'G4', 4, 'open', 0.4, 'pipeline'),     -- stage 12
    (3, 'GWon', 9, 'won', 1, 'closed'),        -- stage 13
    (3, 'GLost', 9, 'lost', 0, 'omitted');     -- stage 14

BEGIN;
ALTER TABLE sales_kpi.opportunity DROP CONSTRAINT opportunity_amount_check;
ALTER TABLE sales_kpi.opportunity_history DROP CONSTRAINT opportunity_history_amount_check;
ALTER TABLE sales_kpi.stage_event DROP CONSTRAINT stage_event_amount_check;
ALTER TABLE sales_kpi.activity DROP CONSTRAINT activity_duration_s_check;

INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, created_at) VALUES
    (1, 1, 2,    'D1 clean',                  1000, '2026-01-05'),  -- 1
    (1, 1, 2,    'D2 skip then regress',      1000, '2026-01-05'),  -- 2
    (1, 2, 3,    'D3 lost then won',          1000, '2026-01-05'),  -- 3
    (1, 2, 3,    'D4 won, reopened at once',  1000, '2026-01-05'),  -- 4
    (1, 1, 2,    'D5 back-dated event',       1000, '2026-01-05');  -- 5
-- deals 6 and 7 are loaded with the triggers off, their stage fields
-- contradicting their history
SET session_replication_role = replica;
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, created_at, stage_id, closed_at) VALUES
    (1, 2, 3, 'D6 closed in an open stage', 1000, '2026-01-05', 1, '2026-02-01'),  -- 6
    (1, 2, 3, 'D7 won but not closed',      1000, '2026-01-05', 5, NULL);           -- 7
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, owner_id) VALUES
    (6, '2026-01-05', 1000, 3), (7, '2026-01-05', 1000, 3);
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, rep_id) VALUES
    (6, 1, '2026-01-05', 3),                                 -- event 1
    (7, 1, '2026-01-05', 3), (7, 5, '2026-02-01', 3);        -- events 2, 3
RESET session_replication_role;
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, created_at) VALUES
    (1, 1, 2,    'D8 negative amount',        -100, '2026-01-05'),  -- 8
    (1, 1, NULL, 'D9 no owner',               1000, '2026-01-05'),  -- 9
    (1, 1, 2,    'D10 no stage event',        1000, '2026-01-20'),  -- 10
    (1, 1, 2,    'D11 snapshot deleted',      1000, '2026-01-05'),  -- 11
    (1, 2, 3,    'D12 event before creation', 1000, '2026-01-10'),  -- 12
    (3, 1, 2,    'D13 clean across the gap',  1000, '2026-01-05');  -- 13
DELETE FROM sales_kpi.opportunity_history WHERE opportunity_id = 11;

INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, rep_id, amount) VALUES
    (1, 1, '2026-01-05', 2, NULL),          -- 4
    (1, 2, '2026-01-10', 2, NULL),          -- 5
    (1, 3, '2026-01-20', 2, NULL),          -- 6
    (1, 5, '2026-02-01', 2, NULL),          -- 7
    (2, 1, '2026-01-05', 2, NULL),          -- 8
    (2, 3, '2026-01-10', 2, NULL),          -- 9: skips Discover
    (2, 2, '2026-01-15', 2, NULL),          -- 10: back from Propose to Discover
    (3, 1, '2026-01-05', 3, NULL),          -- 11
    (3, 6, '2026-02-01', 3, NULL),          -- 12: lost
    (3, 5, '2026-02-05', 3, NULL),          -- 13: won after lost, no reopening
    (4, 1, '2026-01-05', 3, NULL),          -- 14
    (4, 5, '2026-02-01 12:00', 3, NULL),    -- 15: won
    (4, 2, '2026-02-01 12:00', 3, NULL),    -- 16: reopened in the same instant
    (5, 1, '2026-01-05', 2, NULL),          -- 17
    (5, 3, '2026-01-20', 2, NULL),          -- 18
    (8, 1, '2026-01-05', 2, -100),          -- 19: negative amount
    (9, 1, '2026-01-05', NULL, NULL),       -- 20
    (9, 2, '2026-01-08', NULL, NULL),       -- 21
    (11, 1, '2026-01-05', 2, NULL),         -- 22
    (12, 1, '2026-01-05', 3, NULL),         -- 23: before the deal was created
    (13, 10, '2026-01-05', 2, NULL),        -- 24
    (13, 11, '2026-01-10', 2, NULL),        -- 25
    (13, 12, '2026-01-15', 2, NULL);        -- 26: G2 -> G4 is the next open stage, not a skip
-- recorded after event 18 but entered before it
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, rep_id) VALUES
    (5, 2, '2026-01-12', 2);                -- 27
INSERT INTO sales_kpi.milestone_event (opportunity_id, milestone_id, completed_at) VALUES
    (1, 1, '2026-01-08'), (1, 2, '2026-01-08'), (1, 3, '2026-01-15'), (1, 5, '2026-01-25'),
    (2, 1, '2026-01-20'),                   -- after deal 2 passed Discover
    (5, 1, '2026-01-11'), (5, 2, '2026-01-11');
INSERT INTO sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at, duration_s) VALUES
    (2, 1, 'call', '2026-01-06', 300),
    (3, 3, 'call', '2026-02-10', -30);      -- activity 2: negative duration

-- the triggers kept the normally loaded deals in line with their history
SELECT opportunity_id, stage_id, closed_at FROM sales_kpi.opportunity ORDER BY opportunity_id;

-- At 2026-03-01, expected (by hand):
--   stage_event 9  skipped_stage      Qualify (1) -> Propose (3), 1 skipped
--   stage_event 10 regression         Propose (3) -> Discover (2)
--   stage_event 13 event_after_close  Won after Lost
--   stage_event 16 event_after_close  Discover in the same instant as Won
--   stage_event 19 negative_amount    -100
--   stage_event 27 event_out_of_order entered before event 18, recorded after it
--   opportunity 6  closed_without_terminal_stage, stage_out_of_sync
--   opportunity 7  terminal_stage_without_close, stage_out_of_sync
--   opportunity 8  negative_amount; 9 missing_owner; 10 no_stage_event;
--   opportunity 11 missing_snapshot; 12 event_before_creation
--   opportunity_history (8, 2026-01-05) negative_amount
--   activity 2 negative_duration
--   stage: pipeline 3 positions 1, 2, 4
--   deals 1 and 13: nothing
SELECT table_name, key, rule, detail, opportunity_id, rep_id, found_at
  FROM sales_kpi.data_quality_findings('2026-03-01')
 ORDER BY table_name, opportunity_id, key, rule;
SELECT count(*) AS findings_for_clean_deals
  FROM sales_kpi.data_quality_findings('2026-03-01') WHERE opportunity_id IN (1, 13);

-- At 2026-01-12 the history is shorter: event 10 (regression), 13, 16, 27's
-- successor 18 and the activity are later, deal 10 does not exist yet, and
-- deal 7 moved after that instant (its row may run ahead: no
-- stage_out_of_sync).  Expected: skipped_stage 9, negative_amount 19;
-- opportunity 6 closed_without_terminal_stage + stage_out_of_sync, 7
-- terminal_stage_without_close, 8 negative_amount, 9 missing_owner,
-- 11 missing_snapshot, 12 event_before_creation; history 8; stage gap.
SELECT table_name, key, rule, opportunity_id, found_at
  FROM sales_kpi.data_quality_findings('2026-01-12')
 ORDER BY table_name, opportunity_id, key, rule;

-- the view is the function now
SELECT (SELECT count(*) FROM sales_kpi.data_quality_findings)
     = (SELECT count(*) FROM sales_kpi.data_quality_findings(now())) AS view_is_function;

-- Gate violations in January and February 2026, as of 2026-03-01:
--   deal 2, event 9, Qualify -> Propose: Discover's Pain confirmed and
--     Budget known missing (2), Pain confirmed completed later (1)
--   deal 4, event 15, Qualify -> Won: all four required milestones missing
--   deal 7, event 3, Qualify -> Won: all four missing
--   not: deal 1 (all complete in time), deal 5 (Discover's done 01-11,
--   before it left Discover on 01-20), deal 3 (lost, then lost -> won is
--   not a forward move from an open stage), regressions, first events.
SELECT dimension, dimension_value, period_start, period_end, opportunity_id, stage_event_id,
       pipeline_id, gate_mode, from_stage, to_stage, moved_at, rep_id, missing_milestones,
       missing_count, completed_late_count
  FROM sales_kpi.gate_violations('2026-01-01', '2026-03-01', 'company', '2026-03-01')
 ORDER BY opportunity_id;
-- by rep (owner at the move): Ben 1 (deal 2), Cy 2 (deals 4 and 7)
SELECT dimension_value, count(*), sum(missing_count)
  FROM sales_kpi.gate_violations('2026-01-01', '2026-03-01', 'rep', '2026-03-01')
 GROUP BY 1 ORDER BY 1;
-- January only: deal 2
SELECT opportunity_id, missing_count, completed_late_count
  FROM sales_kpi.gate_violations('2026-01-01', '2026-02-01', 'company', '2026-03-01');
-- as of 2026-01-18: deal 2's milestone completed on 01-20 is not known yet
SELECT opportunity_id, missing_count, completed_late_count
  FROM sales_kpi.gate_violations('2026-01-01', '2026-03-01', 'company', '2026-01-18');
-- the gate mode in force is reported, not applied: warn on Direct
UPDATE sales_kpi.pipeline SET gate_mode = 'warn' WHERE pipeline_id = 1;
SELECT DISTINCT gate_mode FROM sales_kpi.gate_violations('2026-01-01', '2026-03-01', 'company', '2026-03-01');

ROLLBACK;

-- argument errors
SELECT * FROM sales_kpi.data_quality_findings(NULL);
SELECT * FROM sales_kpi.gate_violations('2026-01-01', '2026-03-01', 'planet', '2026-03-01');
SELECT * FROM sales_kpi.gate_violations('2026-03-01', '2026-01-01', 'company', '2026-03-01');
-- the constraints dropped in the transaction are back
SELECT count(*) FROM pg_constraint
 WHERE conname IN ('opportunity_amount_check', 'opportunity_history_amount_check',
                   'stage_event_amount_check', 'activity_duration_s_check');
