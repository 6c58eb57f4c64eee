-- The C triggers of a move (stage_sync.c): the common case they handle
-- themselves (deal fields from the newest event, no check or snapshot for
-- the sync's own update, none for an update that changes no watched
-- field) agrees with what the general PL/pgSQL triggers do, and every
-- other case still reaches those: a user trigger that changes a forecast
-- field during the sync's update, a numeric stored with another scale, a
-- direct write of the stage fields, gated pipelines, misuse of the trigger
-- functions.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(22);

SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(400, 7, '2026-10-31', replace => true)$$, 'demo data loads');
UPDATE sales_kpi.pipeline SET gate_mode = 'off';

CREATE TEMP VIEW stage_mismatch AS
SELECT o.opportunity_id
  FROM sales_kpi.opportunity o
  LEFT JOIN LATERAL (SELECT e.stage_id, s.kind, e.entered_at
                       FROM sales_kpi.stage_event e JOIN sales_kpi.stage s USING (stage_id)
                      WHERE e.opportunity_id = o.opportunity_id
                      ORDER BY e.entered_at DESC, e.stage_event_id DESC LIMIT 1) n ON true
 WHERE (n.stage_id IS NOT NULL
        AND (o.stage_id IS DISTINCT FROM n.stage_id
             OR o.closed_at IS DISTINCT FROM CASE WHEN n.kind <> 'open' THEN n.entered_at END
             OR o.stage_entered_at IS DISTINCT FROM n.entered_at))
    OR (n.stage_id IS NULL AND o.stage_entered_at IS NOT NULL);

-- a deal of the first pipeline, with its stages
CREATE TEMP TABLE d AS
SELECT o.opportunity_id AS id, o.pipeline_id,
       (SELECT s.stage_id FROM sales_kpi.stage s WHERE s.pipeline_id = o.pipeline_id AND s.kind = 'open' ORDER BY s.position LIMIT 1) AS first_stage,
       (SELECT s.stage_id FROM sales_kpi.stage s WHERE s.pipeline_id = o.pipeline_id AND s.kind = 'open' ORDER BY s.position OFFSET 1 LIMIT 1) AS second_stage,
       (SELECT s.stage_id FROM sales_kpi.stage s WHERE s.pipeline_id = o.pipeline_id AND s.kind = 'won') AS won_stage,
       (SELECT s.stage_id FROM sales_kpi.stage s WHERE s.pipeline_id <> o.pipeline_id ORDER BY s.stage_id LIMIT 1) AS foreign_stage
  FROM sales_kpi.opportunity o
 WHERE o.closed_at IS NULL
 ORDER BY o.opportunity_id
 LIMIT 1;

-- a live move, a back-dated one, a closing one
\o /dev/null
SELECT sales_kpi.move_stage(id, second_stage) FROM d;
\o
SELECT is((SELECT (o.stage_id, o.stage_entered_at, o.closed_at) FROM sales_kpi.opportunity o JOIN d ON o.opportunity_id = d.id),
          (SELECT (second_stage, now(), NULL::timestamptz) FROM d),
          'a move sets the deal''s stage, the instant it entered it, and no close');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT id, first_stage, now() - interval '1 day' FROM d;
SELECT is((SELECT o.stage_id FROM sales_kpi.opportunity o JOIN d ON o.opportunity_id = d.id),
          (SELECT second_stage FROM d), 'a back-dated event leaves the newer stage in place');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT id, won_stage, now() FROM d;
SELECT is((SELECT (o.stage_id, o.closed_at) FROM sales_kpi.opportunity o JOIN d ON o.opportunity_id = d.id),
          (SELECT (won_stage, now()) FROM d),
          'an event at the same instant as the previous one wins by its id, and closes the deal');

-- the sync's own update takes no snapshot and is not refused
SELECT is((SELECT count(*) FROM sales_kpi.opportunity_history h JOIN d ON h.opportunity_id = d.id
            WHERE h.changed_at = now()),
          0::bigint, 'moves without an amount take no snapshot');

-- bulk: many deals, several events each, in one statement, then deleted
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, s.stage_id,
       least(o.created_at + sales_kpi.demo_random(11, g) * interval '300 days', now())
  FROM generate_series(1, 1200) g
  JOIN (SELECT x.*, row_number() OVER (ORDER BY x.opportunity_id) AS k FROM sales_kpi.opportunity x) o
    ON o.k = 1 + floor(sales_kpi.demo_random(12, g) * 400)::bigint
  JOIN LATERAL (SELECT st.stage_id FROM sales_kpi.stage st WHERE st.pipeline_id = o.pipeline_id
                 ORDER BY st.stage_id
                OFFSET floor(sales_kpi.demo_random(13, g)
                             * (SELECT count(*) FROM sales_kpi.stage c WHERE c.pipeline_id = o.pipeline_id))
                 LIMIT 1) s ON true;
SELECT is_empty('SELECT * FROM stage_mismatch', 'after 1,200 events in one statement every deal agrees with its newest event');
DELETE FROM sales_kpi.stage_event e USING d WHERE e.opportunity_id = d.id;
SELECT is((SELECT (o.stage_id, o.stage_entered_at) FROM sales_kpi.opportunity o JOIN d ON o.opportunity_id = d.id),
          (SELECT (won_stage, NULL::timestamptz) FROM d),
          'a deal whose events are all deleted keeps its stage and has no stage_entered_at');
SELECT is_empty('SELECT * FROM stage_mismatch', 'after the deletion every deal agrees with its newest event');

-- the same statement through the general trigger (a pipeline with gates
-- on) gives the same deals
UPDATE sales_kpi.pipeline SET gate_mode = 'warn' WHERE pipeline_id = (SELECT pipeline_id FROM d);
SET client_min_messages = error;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, s.stage_id, least(o.created_at + interval '40 days', now())
  FROM sales_kpi.opportunity o
  JOIN LATERAL (SELECT st.stage_id FROM sales_kpi.stage st WHERE st.pipeline_id = o.pipeline_id
                 ORDER BY st.position DESC LIMIT 1) s ON true
 WHERE o.opportunity_id % 4 = 0;
RESET client_min_messages;
SELECT is_empty('SELECT * FROM stage_mismatch', 'events for gated and ungated pipelines in one statement: every deal agrees');
UPDATE sales_kpi.pipeline SET gate_mode = 'off';

-- a stage of another pipeline and a future date still reach the general
-- trigger's errors
SELECT throws_ok(format('INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (%s, %s, now())',
                        id, foreign_stage), '23503', NULL, 'a stage of another pipeline is refused') FROM d;
SELECT throws_ok(format('INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (%s, %s, now() + interval ''2 days'')',
                        id, first_stage), '23514', NULL, 'an event two days ahead is refused') FROM d;
SELECT lives_ok(format('INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (%s, %s, now() + interval ''1 hour'')',
                       id, first_stage), 'an event an hour ahead (within the tolerance) is taken') FROM d;
SELECT is((SELECT o.stage_entered_at FROM sales_kpi.opportunity o JOIN d ON o.opportunity_id = d.id),
          now() + interval '1 hour', 'and the deal entered its stage then');

-- updates the sync did not make go through the general trigger
SELECT throws_ok(format('UPDATE sales_kpi.opportunity SET stage_id = %s WHERE opportunity_id = %s', second_stage, id),
                 '23514', NULL, 'a direct change of the stage is refused') FROM d;
SELECT lives_ok(format('UPDATE sales_kpi.opportunity SET stage_entered_at = stage_entered_at, name = ''renamed'' WHERE opportunity_id = %s', id),
                'an update that changes no watched field is taken') FROM d;
SELECT is((SELECT count(*) FROM sales_kpi.opportunity_history h JOIN d ON h.opportunity_id = d.id WHERE h.changed_at = now()),
          0::bigint, 'and takes no snapshot');
UPDATE sales_kpi.opportunity o SET amount = 1234.5 FROM d WHERE o.opportunity_id = d.id;
UPDATE sales_kpi.opportunity o SET amount = 1234.50 FROM d WHERE o.opportunity_id = d.id;
SELECT is((SELECT array_agg(h.amount::text) FROM sales_kpi.opportunity_history h JOIN d ON h.opportunity_id = d.id
            WHERE h.changed_at = now()),
          ARRAY['1234.5'], 'an amount stored with another scale is the same amount: one snapshot');

-- a user's trigger that changes a forecast field while the sync updates
-- the deal: the change is not taken for the sync's own
CREATE FUNCTION pg_temp.bump_amount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stage_id IS DISTINCT FROM OLD.stage_id THEN
        NEW.amount := OLD.amount + 1;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER bump_amount BEFORE UPDATE ON sales_kpi.opportunity
    FOR EACH ROW EXECUTE FUNCTION pg_temp.bump_amount();
\o /dev/null
SELECT sales_kpi.move_stage(id, second_stage, now() + interval '2 hours') FROM d;
\o
SELECT is((SELECT h.amount FROM sales_kpi.opportunity_history h JOIN d ON h.opportunity_id = d.id
            ORDER BY h.changed_at DESC LIMIT 1),
          1235.5, 'an amount a user''s trigger changed during the sync leaves its snapshot');
DROP TRIGGER bump_amount ON sales_kpi.opportunity;

-- a user's trigger that deletes the deal's won event while the sync updates
-- the deal: the values the sync read are stale, and the general check
-- refuses them
CREATE FUNCTION pg_temp.veto_won() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.closed_at IS NOT NULL AND OLD.closed_at IS NULL THEN
        DELETE FROM sales_kpi.stage_event e USING sales_kpi.stage s
         WHERE e.opportunity_id = NEW.opportunity_id AND s.stage_id = e.stage_id AND s.kind = 'won';
    END IF;
    RETURN NEW;
END;
$$;
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, name) SELECT 990001, pipeline_id, 'vetoed' FROM d;
\o /dev/null
SELECT sales_kpi.move_stage(990001, first_stage, now() - interval '2 minutes') FROM d;
\o
CREATE TRIGGER veto_won BEFORE UPDATE ON sales_kpi.opportunity
    FOR EACH ROW EXECUTE FUNCTION pg_temp.veto_won();
SELECT throws_ok(format('SELECT sales_kpi.move_stage(990001, %s, now() - interval ''1 minute'')', won_stage),
                 '23514', NULL, 'a sync whose deal''s events a user''s trigger changed meanwhile is checked, and refused') FROM d;
DROP TRIGGER veto_won ON sales_kpi.opportunity;

-- direct calls and misuse
SELECT lives_ok($$SELECT sales_kpi_internal.sync_opportunity_stage(NULL), sales_kpi_internal.sync_opportunity_stage('{}'),
                         sales_kpi_internal.sync_opportunity_stage('{NULL,1,NULL}'), sales_kpi_internal.sync_opportunity_stage('{{1,2},{3,4}}')$$,
                'sync_opportunity_stage takes a null, empty, null-holding or two-dimensional array');
SELECT is_empty('SELECT * FROM stage_mismatch', 'and leaves every deal agreeing with its newest event');
CREATE TABLE pg_temp.lookalike (stage_event_id bigint, opportunity_id bigint, entered_at timestamptz);
CREATE TRIGGER lookalike AFTER INSERT ON pg_temp.lookalike REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.stage_event_after_insert();
SELECT throws_ok($$INSERT INTO pg_temp.lookalike VALUES (1, 1, now())$$, '39P01', NULL,
                 'the trigger refuses a table that is not the extension''s stage_event');

SELECT * FROM finish();
ROLLBACK;
