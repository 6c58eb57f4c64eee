-- Stage moves keep opportunity.stage_id and closed_at equal to what the
-- newest stage event says: forward, skip, regress, won, lost, reopen,
-- back-dated inserts, corrections; and the history snapshots.
\i sql/fixture.psql

CREATE VIEW deal AS
SELECT o.opportunity_id AS id, s.name AS stage, s.kind, o.closed_at, o.stage_entered_at, o.amount
  FROM sales_kpi.opportunity o LEFT JOIN sales_kpi.stage s USING (stage_id)
 ORDER BY o.opportunity_id;

INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, created_at, expected_close)
VALUES (1, 1, 2, 'A', 1000, '2026-01-05 09:00', '2026-03-31'),
       (1, 2, 3, 'B', 5000, '2026-01-06 09:00', '2026-04-30');
-- no history yet: no stage
SELECT * FROM deal;

-- creation and forward moves
SELECT sales_kpi.move_stage(1, 1, '2026-01-05 09:00');
SELECT sales_kpi.move_stage(1, 2, '2026-01-12 10:00');
SELECT * FROM deal WHERE id = 1;
-- skip: Discover -> Negotiate
SELECT sales_kpi.move_stage(1, 4, '2026-01-20 10:00');
SELECT * FROM deal WHERE id = 1;
-- regress: Negotiate -> Propose
SELECT sales_kpi.move_stage(1, 3, '2026-01-25 10:00');
SELECT * FROM deal WHERE id = 1;
-- won, with a new amount: closed_at is the moment of the move
SELECT sales_kpi.move_stage(1, 5, '2026-02-10 15:30', 1200);
SELECT * FROM deal WHERE id = 1;
-- reopened after the win: open again, closed_at cleared
SELECT sales_kpi.move_stage(1, 4, '2026-02-20 08:00');
SELECT * FROM deal WHERE id = 1;
-- lost
SELECT sales_kpi.move_stage(1, 6, '2026-03-05 12:00');
SELECT * FROM deal WHERE id = 1;

-- back-dated insert of older history changes nothing current
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (1, 2, '2026-01-15 10:00');
SELECT * FROM deal WHERE id = 1;
-- a back-dated insert that becomes the newest event does
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (1, 3, '2026-03-06 12:00');
SELECT * FROM deal WHERE id = 1;
-- same instant: the later stage_event_id is the newer event
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (1, 6, '2026-03-06 12:00');
SELECT * FROM deal WHERE id = 1;

-- many events for several deals in one statement, in no particular order
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, amount) VALUES
    (2, 5, '2026-03-01', 5000),
    (2, 1, '2026-01-06 09:00', 5000),
    (2, 3, '2026-02-01', 5000);
SELECT * FROM deal;

-- corrections: deleting the newest event falls back to the one before;
-- moving an event in time re-derives the stage
DELETE FROM sales_kpi.stage_event WHERE opportunity_id = 2 AND stage_id = 5;
SELECT * FROM deal WHERE id = 2;
UPDATE sales_kpi.stage_event SET entered_at = '2026-03-02' WHERE opportunity_id = 2 AND stage_id = 1;
SELECT * FROM deal WHERE id = 2;

-- the stage fields cannot be set against the history
UPDATE sales_kpi.opportunity SET stage_id = 4 WHERE opportunity_id = 2;
UPDATE sales_kpi.opportunity SET closed_at = '2026-03-03' WHERE opportunity_id = 2;
UPDATE sales_kpi.opportunity SET pipeline_id = 2, stage_id = 7 WHERE opportunity_id = 2;
UPDATE sales_kpi.opportunity SET stage_entered_at = '2026-03-03' WHERE opportunity_id = 2;
-- nor may an event name a stage of another pipeline
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (2, 8, '2026-03-10');
SELECT * FROM deal WHERE id = 2;

-- move_stage argument errors
SELECT sales_kpi.move_stage(NULL, 1);
SELECT sales_kpi.move_stage(1, NULL);
SELECT sales_kpi.move_stage(1, 1, NULL);
SELECT sales_kpi.move_stage(1, 1, 'infinity');
SELECT sales_kpi.move_stage(1, 1, '2026-04-01', -1);
SELECT sales_kpi.move_stage(42, 1);
SELECT sales_kpi.move_stage(1, 42);
SELECT sales_kpi.move_stage(1, 7);

-- history: the creation snapshot at created_at, the amount of the win at the
-- time of the win, later edits at the time of the edit (several edits in one
-- transaction make one snapshot), nothing for edits of other columns
BEGIN;
UPDATE sales_kpi.opportunity SET expected_close = '2026-05-31' WHERE opportunity_id = 2;
UPDATE sales_kpi.opportunity SET amount = 5500 WHERE opportunity_id = 2;
UPDATE sales_kpi.opportunity SET competitor = 'Initech' WHERE opportunity_id = 2;
SELECT opportunity_id, changed_at = now() AS edited_now,
       CASE WHEN changed_at = now() THEN NULL ELSE changed_at END AS changed_at,
       amount, expected_close, forecast_category, owner_id
  FROM sales_kpi.opportunity_history
 ORDER BY opportunity_id, changed_at;
COMMIT;
-- a loader may write history first: the deal takes the values of its
-- newest snapshot, and setting them again adds nothing
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (1, '2026-03-07', 1300, '2026-03-31', 2);
SELECT amount, expected_close, owner_id, snapshot_at FROM sales_kpi.opportunity WHERE opportunity_id = 1;
UPDATE sales_kpi.opportunity SET amount = 1300 WHERE opportunity_id = 1;
-- snapshot_at is the newest snapshot's time and cannot be set otherwise
UPDATE sales_kpi.opportunity SET snapshot_at = '2026-01-01' WHERE opportunity_id = 1;
-- an older snapshot is history only: the deal keeps its newest values
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (1, '2026-03-06', 1250, '2026-03-31', 3);
SELECT amount, owner_id FROM sales_kpi.opportunity WHERE opportunity_id = 1;
-- a snapshot for an instant that has one replaces it
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (1, '2026-01-05 09:00', 900, '2026-03-31', 2);
SELECT opportunity_id, changed_at, amount, expected_close, owner_id
  FROM sales_kpi.opportunity_history WHERE opportunity_id = 1 ORDER BY changed_at;
-- and when it is the newest, the deal follows it
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (1, '2026-03-07', 1400, '2026-04-30', 2);
SELECT amount, expected_close, owner_id, snapshot_at FROM sales_kpi.opportunity WHERE opportunity_id = 1;
-- deleting snapshots: the deal follows the newest left, and without any it
-- keeps its values but has no snapshot time
DELETE FROM sales_kpi.opportunity_history WHERE opportunity_id = 1 AND changed_at = '2026-03-07';
SELECT amount, owner_id, snapshot_at FROM sales_kpi.opportunity WHERE opportunity_id = 1;
DELETE FROM sales_kpi.opportunity_history WHERE opportunity_id = 1;
SELECT amount, owner_id, snapshot_at FROM sales_kpi.opportunity WHERE opportunity_id = 1;

-- deleting a deal takes its history along
DELETE FROM sales_kpi.opportunity WHERE opportunity_id = 1;
SELECT count(*) AS events_left FROM sales_kpi.stage_event WHERE opportunity_id = 1;
DROP VIEW deal;
