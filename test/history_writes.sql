-- Writes dated in the past never overwrite newer history: a back-dated
-- move_stage (with or without an amount) and snapshots inserted between two
-- others leave a deal's fields as its newest snapshot says; a deal inserted
-- with snapshot_at set brings its own history; a bulk update after a
-- one-row update (plans cached at one row) records every change.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(27);

SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(300, 3, '2026-10-31', replace => true)$$, 'demo data loads');

CREATE TEMP TABLE fx AS
SELECT p.pipeline_id,
       (SELECT s.stage_id FROM sales_kpi.stage s WHERE s.pipeline_id = p.pipeline_id AND s.kind = 'open' ORDER BY s.position LIMIT 1) AS first_stage,
       (SELECT s.stage_id FROM sales_kpi.stage s WHERE s.pipeline_id = p.pipeline_id AND s.kind = 'open' ORDER BY s.position OFFSET 1 LIMIT 1) AS second_stage,
       (SELECT s.stage_id FROM sales_kpi.stage s WHERE s.pipeline_id = p.pipeline_id AND s.kind = 'won') AS won_stage,
       (SELECT min(r.rep_id) FROM sales_kpi.rep r) AS rep_a,
       (SELECT max(r.rep_id) FROM sales_kpi.rep r) AS rep_b,
       (SELECT min(a.account_id) FROM sales_kpi.account a) AS account_id
  FROM sales_kpi.pipeline p
 WHERE p.gate_mode IS DISTINCT FROM 'enforce'
 ORDER BY p.pipeline_id
 LIMIT 1;

-- A loader's order (the case that overwrote won amounts): the close
-- snapshot first, with the amount at the close, then the moves from the
-- oldest, the first with the list price.
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, created_at, expected_close)
SELECT 900001, pipeline_id, account_id, rep_a, 'loaded won deal', 100, '2026-01-01', '2026-03-31' FROM fx;
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
SELECT 900001, '2026-03-01', 90, '2026-03-31', rep_a FROM fx;
\o /dev/null
SELECT sales_kpi.move_stage(900001, first_stage, '2026-01-01', 100) FROM fx;
\o
\o /dev/null
SELECT sales_kpi.move_stage(900001, won_stage, '2026-03-01') FROM fx;
\o

SELECT is((SELECT amount FROM sales_kpi.opportunity WHERE opportunity_id = 900001), 90::numeric,
          'a move dated before the newest snapshot leaves the amount of the newest snapshot');
SELECT is((SELECT snapshot_at FROM sales_kpi.opportunity WHERE opportunity_id = 900001), '2026-03-01'::timestamptz,
          'and its snapshot time');
SELECT is((SELECT count(*) FROM sales_kpi.opportunity_history WHERE opportunity_id = 900001 AND changed_at > '2026-03-01'),
          0::bigint, 'no snapshot is added after the newest one');
SELECT is((SELECT string_agg(changed_at::date || ':' || amount, ',' ORDER BY changed_at)
             FROM sales_kpi.opportunity_history WHERE opportunity_id = 900001),
          '2026-01-01:100,2026-03-01:90', 'the history holds each amount at its own instant');
SELECT is((SELECT amount FROM sales_kpi.stage_event WHERE opportunity_id = 900001 AND entered_at = '2026-03-01'),
          90::numeric, 'a move without an amount records the amount in force at the move');
SELECT is((SELECT closed_at FROM sales_kpi.opportunity WHERE opportunity_id = 900001), '2026-03-01'::timestamptz,
          'the deal is won at its close');

-- A deal edited over time: created at 100, raised to 200 on 2026-02-01,
-- handed to rep_b on 2026-03-01.
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, created_at, expected_close)
SELECT 900002, pipeline_id, account_id, rep_a, 'edited deal', 100, '2026-01-01', '2026-06-30' FROM fx;
\o /dev/null
SELECT sales_kpi.move_stage(900002, first_stage, '2026-01-01') FROM fx;
\o
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
SELECT 900002, '2026-02-01'::timestamptz, 200, '2026-06-30'::date, rep_a FROM fx
UNION ALL
SELECT 900002, '2026-03-01', 200, '2026-06-30', rep_b FROM fx;
CREATE TEMP TABLE before_edits AS
SELECT amount, expected_close, owner_id, snapshot_at FROM sales_kpi.opportunity WHERE opportunity_id = 900002;

-- a back-dated move with a new amount, between two snapshots
\o /dev/null
SELECT sales_kpi.move_stage(900002, second_stage, '2026-01-15', 150) FROM fx;
\o
SELECT is((SELECT row(amount, expected_close, owner_id, snapshot_at)::text FROM sales_kpi.opportunity WHERE opportunity_id = 900002),
          (SELECT row(amount, expected_close, owner_id, snapshot_at)::text FROM before_edits),
          'a back-dated move with an amount leaves the deal''s fields alone');
SELECT is((SELECT row(amount, owner_id)::text FROM sales_kpi.opportunity_history
            WHERE opportunity_id = 900002 AND changed_at = '2026-01-15'),
          (SELECT row(150::numeric, rep_a)::text FROM fx),
          'and records its amount at its own instant, with the owner of then');
SELECT is((SELECT rep_id FROM sales_kpi.stage_event WHERE opportunity_id = 900002 AND entered_at = '2026-01-15'),
          (SELECT rep_a FROM fx), 'the back-dated event names the owner of then, not the current one');
-- a back-dated move without an amount records the amount of then
\o /dev/null
SELECT sales_kpi.move_stage(900002, first_stage, '2026-02-15') FROM fx;
\o
SELECT is((SELECT amount FROM sales_kpi.stage_event WHERE opportunity_id = 900002 AND entered_at = '2026-02-15'),
          200::numeric, 'a back-dated move without an amount records the amount in force then');

-- corrections written directly between two snapshots: amount, expected
-- close, owner
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
SELECT 900002, '2026-02-10', 180, '2026-05-31', rep_b FROM fx;
SELECT is((SELECT row(amount, expected_close, owner_id, snapshot_at)::text FROM sales_kpi.opportunity WHERE opportunity_id = 900002),
          (SELECT row(amount, expected_close, owner_id, snapshot_at)::text FROM before_edits),
          'a correction dated between two snapshots leaves the deal''s fields alone');
UPDATE sales_kpi.opportunity_history SET amount = 210, expected_close = '2026-07-31'
 WHERE opportunity_id = 900002 AND changed_at = '2026-02-01';
SELECT is((SELECT row(amount, expected_close, owner_id, snapshot_at)::text FROM sales_kpi.opportunity WHERE opportunity_id = 900002),
          (SELECT row(amount, expected_close, owner_id, snapshot_at)::text FROM before_edits),
          'so does an update of an older snapshot');
-- a move dated after every snapshot does change them
\o /dev/null
SELECT sales_kpi.move_stage(900002, second_stage, '2026-04-01', 250) FROM fx;
\o
SELECT is((SELECT row(amount, owner_id, snapshot_at)::text FROM sales_kpi.opportunity WHERE opportunity_id = 900002),
          (SELECT row(250::numeric, rep_b, '2026-04-01'::timestamptz)::text FROM fx),
          'a move dated after the newest snapshot sets the amount, keeping the owner of then');

-- A deal inserted with snapshot_at set brings its own history (a restore).
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, created_at, expected_close, snapshot_at)
SELECT 900003, pipeline_id, account_id, rep_b, 'restored deal', 300, '2026-01-01', '2026-06-30', '2026-02-01' FROM fx;
SELECT is((SELECT count(*) FROM sales_kpi.opportunity_history WHERE opportunity_id = 900003), 0::bigint,
          'a deal inserted with snapshot_at set gets no creation snapshot');
SELECT is((SELECT count(*) FROM sales_kpi.check_consistency() c WHERE c.table_name = 'opportunity' AND c.row_key LIKE '%900003%'), 1::bigint,
          'check_consistency reports it until its history arrives');
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
SELECT 900003, '2026-01-01'::timestamptz, 250, '2026-06-30'::date, rep_a FROM fx
UNION ALL
SELECT 900003, '2026-02-01', 300, '2026-06-30', rep_b FROM fx;
SELECT is((SELECT row(amount, owner_id, snapshot_at)::text FROM sales_kpi.opportunity WHERE opportunity_id = 900003),
          (SELECT row(300::numeric, rep_b, '2026-02-01'::timestamptz)::text FROM fx),
          'its history, once loaded, is what it says');
SELECT is((SELECT count(*) FROM sales_kpi.check_consistency() c WHERE c.table_name = 'opportunity' AND c.row_key LIKE '%900003%'), 0::bigint,
          'and it is consistent');
SELECT is((SELECT count(*) FROM sales_kpi.opportunity_history WHERE opportunity_id = 900004), 0::bigint,
          'no history for a deal not yet inserted');
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, created_at)
SELECT 900004, pipeline_id, account_id, rep_b, 'new deal', 10, '2026-05-01' FROM fx;
SELECT is((SELECT string_agg(changed_at::date || ':' || amount, ',') FROM sales_kpi.opportunity_history WHERE opportunity_id = 900004),
          '2026-05-01:10', 'a deal inserted without snapshot_at gets its creation snapshot');

-- A snapshot for an instant that has one replaces it, also within one
-- statement (the later row wins), and the deal follows its newest one.
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
SELECT 900003, '2026-02-01'::timestamptz, 310, '2026-06-30'::date, rep_b FROM fx
UNION ALL
SELECT 900003, '2026-02-01'::timestamptz, 320, '2026-06-30'::date, rep_b FROM fx;
SELECT is((SELECT string_agg(changed_at::date || ':' || amount, ',' ORDER BY changed_at)
             FROM sales_kpi.opportunity_history WHERE opportunity_id = 900003),
          '2026-01-01:250,2026-02-01:320', 'a snapshot at an instant that has one replaces it, the later of one statement last');
SELECT is((SELECT amount FROM sales_kpi.opportunity WHERE opportunity_id = 900003), 320::numeric,
          'and the deal says what the replaced newest snapshot says');
SELECT throws_ok($$SELECT sales_kpi_internal.opportunity_history_before_insert()$$, '39P01',
                 NULL, 'the trigger function cannot be called directly');

-- One-row update, then a bulk one: the plans the triggers cached at one row
-- must record every change of the bulk update too.
UPDATE sales_kpi.opportunity SET amount = amount + 1 WHERE opportunity_id = 900004;
CREATE TEMP TABLE bulk AS
SELECT opportunity_id FROM sales_kpi.opportunity WHERE opportunity_id < 900000 ORDER BY opportunity_id LIMIT 250;
UPDATE sales_kpi.opportunity o SET amount = o.amount + 7, expected_close = '2027-01-31'
  FROM bulk b WHERE o.opportunity_id = b.opportunity_id;
SELECT is((SELECT count(*) FROM sales_kpi.opportunity_history h JOIN bulk b USING (opportunity_id)
            WHERE h.changed_at = now() AND h.expected_close = '2027-01-31'),
          250::bigint, 'a bulk update after a one-row update leaves one snapshot per deal');
SELECT is((SELECT count(*) FROM sales_kpi.check_consistency()), 0::bigint,
          'check_consistency finds nothing at the end');

-- the extension's trigger functions act only for its tables: attached to
-- another table (a superuser can), they refuse to run
CREATE TABLE pg_temp.not_a_deal (LIKE sales_kpi.opportunity);
CREATE TRIGGER not_a_deal_insert AFTER INSERT ON pg_temp.not_a_deal REFERENCING NEW TABLE AS new_deals
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.opportunity_after_insert();
SELECT throws_ok($$INSERT INTO pg_temp.not_a_deal SELECT * FROM sales_kpi.opportunity LIMIT 1$$, '39P01', NULL,
                 'opportunity_after_insert refuses to run for another table');
CREATE TABLE pg_temp.not_events (LIKE sales_kpi.stage_event);
CREATE TRIGGER not_events_delete AFTER DELETE ON pg_temp.not_events REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.stage_event_after_delete();
INSERT INTO pg_temp.not_events SELECT * FROM sales_kpi.stage_event LIMIT 1;
SELECT throws_ok($$DELETE FROM pg_temp.not_events$$, '39P01', NULL,
                 'stage_event_after_delete refuses to run for another table');

SELECT * FROM finish();
ROLLBACK;
