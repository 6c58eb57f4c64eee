-- Invariants of the stage history on demo data, kept through random bulk
-- moves (forward, backward, back-dated, closing, reopening) and deletions:
-- opportunity.stage_id/closed_at/stage_entered_at equal what the newest stage
-- event says, and the newest history snapshot equals the deal's forecast
-- fields and snapshot_at.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(10);

SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 5, '2026-10-31', replace => true)$$, 'demo data loads');

CREATE TEMP VIEW stage_mismatch AS
SELECT o.opportunity_id
  FROM sales_kpi.opportunity o
  JOIN LATERAL (SELECT e.stage_id, s.kind, e.entered_at
                  FROM sales_kpi.stage_event e JOIN sales_kpi.stage s USING (stage_id)
                 WHERE e.opportunity_id = o.opportunity_id
                 ORDER BY e.entered_at DESC, e.stage_event_id DESC LIMIT 1) n ON true
 WHERE o.stage_id IS DISTINCT FROM n.stage_id
    OR o.closed_at IS DISTINCT FROM CASE WHEN n.kind <> 'open' THEN n.entered_at END
    OR o.stage_entered_at IS DISTINCT FROM n.entered_at;

CREATE TEMP VIEW history_mismatch AS
SELECT o.opportunity_id
  FROM sales_kpi.opportunity o
  JOIN LATERAL (SELECT h.* FROM sales_kpi.opportunity_history h
                 WHERE h.opportunity_id = o.opportunity_id
                 ORDER BY h.changed_at DESC LIMIT 1) h ON true
 WHERE (h.amount, h.expected_close, h.forecast_category, h.owner_id, h.changed_at)
       IS DISTINCT FROM (o.amount, o.expected_close, o.forecast_category, o.owner_id, o.snapshot_at);

SELECT is_empty('SELECT * FROM stage_mismatch', 'demo: every deal agrees with its newest stage event');
SELECT is_empty('SELECT * FROM history_mismatch', 'demo: every deal agrees with its newest history snapshot');
SELECT is((SELECT count(*) FROM sales_kpi.opportunity o
            WHERE NOT EXISTS (SELECT 1 FROM sales_kpi.opportunity_history h
                               WHERE h.opportunity_id = o.opportunity_id AND h.changed_at = o.created_at)),
          0::bigint, 'demo: every deal has its creation snapshot');

-- 2000 random events (any stage of the deal's pipeline, any time in its
-- life, some later than everything) for 1000 random deals, in one statement
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, s.stage_id,
       -- (not after now: a stage event dated in the future is refused)
       least(o.created_at + (sales_kpi.demo_random(99, g * 4 + 1) * interval '500 days'), now())
  FROM generate_series(1, 2000) g
  JOIN sales_kpi.opportunity o
    ON o.opportunity_id = 1 + floor(sales_kpi.demo_random(99, g * 4) * 1000)::bigint * 3
  JOIN LATERAL (SELECT st.stage_id FROM sales_kpi.stage st
                 WHERE st.pipeline_id = o.pipeline_id
                 ORDER BY st.stage_id
                OFFSET floor(sales_kpi.demo_random(99, g * 4 + 2)
                             * (SELECT count(*) FROM sales_kpi.stage c WHERE c.pipeline_id = o.pipeline_id))
                 LIMIT 1) s ON true;
SELECT is_empty('SELECT * FROM stage_mismatch', 'after random bulk moves: every deal agrees with its newest event');
SELECT ok((SELECT count(*) FILTER (WHERE closed_at IS NULL) > 0 AND count(*) FILTER (WHERE closed_at IS NOT NULL) > 0
             FROM sales_kpi.opportunity WHERE opportunity_id % 3 = 1),
          'the random moves leave some of those deals open and some closed');

-- delete a third of the events of 500 deals (never all of a deal's)
DELETE FROM sales_kpi.stage_event e
 USING (SELECT stage_event_id,
               row_number() OVER (PARTITION BY opportunity_id ORDER BY stage_event_id) AS k
          FROM sales_kpi.stage_event WHERE opportunity_id % 6 = 1) d
 WHERE e.stage_event_id = d.stage_event_id AND d.k % 3 = 2;
SELECT is_empty('SELECT * FROM stage_mismatch', 'after deleting events: every deal agrees with its newest event');

-- shift events of some deals in time (back: a stage event dated in the
-- future is refused)
UPDATE sales_kpi.stage_event SET entered_at = entered_at - interval '17 days'
 WHERE opportunity_id % 7 = 0 AND stage_event_id % 2 = 0;
SELECT is_empty('SELECT * FROM stage_mismatch', 'after moving events in time: every deal agrees with its newest event');

-- bulk edits of forecast fields leave one snapshot each
UPDATE sales_kpi.opportunity SET expected_close = expected_close + 30, amount = amount + 1
 WHERE opportunity_id % 5 = 0;
SELECT is_empty('SELECT * FROM history_mismatch', 'after bulk edits: every deal agrees with its newest snapshot');
SELECT is((SELECT count(*) FROM sales_kpi.opportunity_history WHERE changed_at = now()),
          (SELECT count(*) FROM sales_kpi.opportunity WHERE opportunity_id % 5 = 0),
          'one snapshot per edited deal');

SELECT * FROM finish();
ROLLBACK;
