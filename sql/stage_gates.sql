-- Stage gates: a deal may not move past a stage whose required milestones
-- are incomplete.  Modes off / warn / enforce, per pipeline or by setting.
\i sql/fixture.psql

INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, created_at)
SELECT 1, 1, 2, 'G' || i, '2026-01-01' FROM generate_series(1, 6) i;
-- first events are history, not moves: never gated
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT i, 2, '2026-01-01' FROM generate_series(1, 6) i;

-- off (the default): the move happens silently
SHOW sales_kpi.stage_gate_mode;
SELECT sales_kpi.stage_gate_mode(1);
SELECT sales_kpi.move_stage(1, 3, '2026-01-10') > 0 AS moved;

-- warn, from the setting
SET sales_kpi.stage_gate_mode = 'warn';
SELECT sales_kpi.stage_gate_mode(1);
SELECT sales_kpi.move_stage(2, 3, '2026-01-10') > 0 AS moved;

-- enforce, from the pipeline (which wins over the setting)
UPDATE sales_kpi.pipeline SET gate_mode = 'enforce' WHERE pipeline_id = 1;
SET sales_kpi.stage_gate_mode = 'off';
SELECT sales_kpi.stage_gate_mode(1), sales_kpi.stage_gate_mode(2);
SELECT sales_kpi.move_stage(3, 3, '2026-01-10');
-- one required milestone done is not enough
INSERT INTO sales_kpi.milestone_event VALUES (3, 1, '2026-01-05');
SELECT sales_kpi.move_stage(3, 3, '2026-01-10');
-- a milestone completed after the move does not count
INSERT INTO sales_kpi.milestone_event VALUES (3, 2, '2026-01-11');
SELECT sales_kpi.move_stage(3, 3, '2026-01-10');
-- both done before the move: it passes (the optional milestone is not needed)
SELECT sales_kpi.move_stage(3, 3, '2026-01-12') > 0 AS moved;
-- skipping passes the skipped stage too: Propose -> Won needs Propose's and Negotiate's
SELECT sales_kpi.move_stage(3, 5, '2026-01-20');
INSERT INTO sales_kpi.milestone_event VALUES (3, 3, '2026-01-15'), (3, 5, '2026-01-18');
SELECT sales_kpi.move_stage(3, 5, '2026-01-20') > 0 AS moved;
-- regressions, losses and reopenings are never gated
SELECT sales_kpi.move_stage(4, 1, '2026-01-10') > 0 AS regressed;
SELECT sales_kpi.move_stage(5, 6, '2026-01-10') > 0 AS lost;
SELECT sales_kpi.move_stage(5, 1, '2026-01-11') > 0 AS reopened;
-- nor is a back-dated insert: it is history, not a move
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 4, '2025-12-31');
-- a direct insert is gated like move_stage
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (6, 4, '2026-01-10');

-- warn on several moves in one statement: one warning per move
UPDATE sales_kpi.pipeline SET gate_mode = 'warn' WHERE pipeline_id = 1;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
VALUES (1, 4, '2026-02-01'), (2, 5, '2026-02-01'), (6, 3, '2026-02-01');

SELECT o.opportunity_id, s.name AS stage
  FROM sales_kpi.opportunity o JOIN sales_kpi.stage s USING (stage_id)
 ORDER BY 1;
RESET sales_kpi.stage_gate_mode;
