-- data_quality_findings and gate_violations on demo data (with a few rows
-- broken on purpose, bypassing constraints and triggers inside this
-- transaction), each against an independent plain-SQL formulation written
-- here: previous events found with a correlated LATERAL look-up instead of
-- window functions, open-stage ordinals counted with a subquery.  At the
-- present and at past instants.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SET LOCAL TimeZone = 'UTC';
SELECT plan(14);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 31, '2026-10-31', replace => true)$$, 'demo data loads');

-- break some rows, each kind of rule at least once
ALTER TABLE sales_kpi.opportunity DROP CONSTRAINT opportunity_amount_check;
ALTER TABLE sales_kpi.stage_event DROP CONSTRAINT stage_event_amount_check;
ALTER TABLE sales_kpi.opportunity_history DROP CONSTRAINT opportunity_history_amount_check;
ALTER TABLE sales_kpi.activity DROP CONSTRAINT activity_duration_s_check;
SET LOCAL session_replication_role = replica;
UPDATE sales_kpi.opportunity SET owner_id = NULL WHERE opportunity_id % 500 = 7;
UPDATE sales_kpi.opportunity SET amount = -amount - 1 WHERE opportunity_id % 700 = 11;
UPDATE sales_kpi.opportunity SET stage_entered_at = stage_entered_at - interval '1 day'
 WHERE opportunity_id % 650 = 4;
UPDATE sales_kpi.opportunity SET closed_at = NULL WHERE opportunity_id IN
    (SELECT opportunity_id FROM sales_kpi.opportunity WHERE closed_at IS NOT NULL ORDER BY opportunity_id LIMIT 3);
UPDATE sales_kpi.opportunity SET closed_at = created_at + interval '9 days' WHERE opportunity_id IN
    (SELECT opportunity_id FROM sales_kpi.opportunity WHERE closed_at IS NULL ORDER BY opportunity_id DESC LIMIT 3);
UPDATE sales_kpi.stage_event SET amount = -5 WHERE stage_event_id % 1000 = 3;
UPDATE sales_kpi.opportunity_history SET amount = -1 WHERE opportunity_id % 900 = 5;
UPDATE sales_kpi.activity SET duration_s = -duration_s - 1 WHERE activity_id % 2000 = 17 AND duration_s IS NOT NULL;
DELETE FROM sales_kpi.opportunity_history WHERE opportunity_id % 800 = 13;
DELETE FROM sales_kpi.stage_event WHERE opportunity_id % 1000 = 19;
-- back-dated events and events after a close, recorded last
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, s.stage_id, o.created_at + interval '1 hour'
  FROM sales_kpi.opportunity o
  JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'open' AND s.position = 2
 WHERE o.opportunity_id % 300 = 1;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, s.stage_id, o.closed_at + interval '1 day'
  FROM sales_kpi.opportunity o
  JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'lost'
 WHERE o.closed_at IS NOT NULL AND o.opportunity_id % 400 = 3;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, s.stage_id, o.created_at - interval '2 days'
  FROM sales_kpi.opportunity o
  JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'open' AND s.position = 1
 WHERE o.opportunity_id % 600 = 2;
SET LOCAL session_replication_role = origin;

CREATE TEMP TABLE instants (as_of timestamptz);
INSERT INTO instants VALUES ('2026-10-31 23:00+00'), ('2025-09-15 08:30+00'), ('2024-06-30 00:00+00');

CREATE TEMP TABLE ord AS
SELECT s.stage_id, s.name, s.kind,
       CASE WHEN s.kind = 'open'
            THEN (SELECT count(*) FROM sales_kpi.stage x
                   WHERE x.pipeline_id = s.pipeline_id AND x.kind = 'open' AND x.position <= s.position) END AS ordinal
  FROM sales_kpi.stage s;

CREATE TEMP TABLE ref_findings AS
-- stage events with their previous event (LATERAL, not a window)
WITH ev AS (
    SELECT i.as_of, e.stage_event_id, e.opportunity_id, e.entered_at, e.amount, s.kind, s.ordinal,
           p.entered_at AS prev_at, ps.kind AS prev_kind, ps.ordinal AS prev_ordinal
      FROM instants i
      JOIN sales_kpi.stage_event e ON e.entered_at <= i.as_of
      JOIN ord s ON s.stage_id = e.stage_id
      LEFT JOIN LATERAL (SELECT x.stage_id, x.entered_at FROM sales_kpi.stage_event x
                          WHERE x.opportunity_id = e.opportunity_id
                            AND (x.entered_at, x.stage_event_id) < (e.entered_at, e.stage_event_id)
                          ORDER BY x.entered_at DESC, x.stage_event_id DESC LIMIT 1) p ON true
      LEFT JOIN ord ps ON ps.stage_id = p.stage_id
)
SELECT as_of, 'stage_event' AS table_name, 'stage_event_id=' || stage_event_id AS key, r AS rule
  FROM ev, LATERAL (VALUES
        (CASE WHEN EXISTS (SELECT 1 FROM sales_kpi.stage_event f
                            WHERE f.opportunity_id = ev.opportunity_id AND f.stage_event_id < ev.stage_event_id
                              AND f.entered_at > ev.entered_at AND f.entered_at <= ev.as_of)
              THEN 'event_out_of_order' END),
        (CASE WHEN prev_kind IN ('won', 'lost') AND (kind <> 'open' OR prev_at = entered_at) THEN 'event_after_close' END),
        (CASE WHEN prev_kind = 'open' AND kind = 'open' AND ordinal <= prev_ordinal THEN 'regression' END),
        (CASE WHEN prev_kind = 'open' AND kind = 'open' AND ordinal > prev_ordinal + 1 THEN 'skipped_stage' END),
        (CASE WHEN amount < 0 THEN 'negative_amount' END)) v(r)
 WHERE r IS NOT NULL
UNION ALL
SELECT i.as_of, 'opportunity', 'opportunity_id=' || o.opportunity_id, v.r
  FROM instants i
  JOIN sales_kpi.opportunity o ON o.created_at <= i.as_of
  LEFT JOIN ord cs ON cs.stage_id = o.stage_id
  LEFT JOIN LATERAL (SELECT x.stage_id, x.entered_at, xs.kind FROM sales_kpi.stage_event x
                       JOIN ord xs ON xs.stage_id = x.stage_id
                      WHERE x.opportunity_id = o.opportunity_id AND x.entered_at <= i.as_of
                      ORDER BY x.entered_at DESC, x.stage_event_id DESC LIMIT 1) n ON true
  CROSS JOIN LATERAL (VALUES
        (CASE WHEN n.stage_id IS NULL THEN 'no_stage_event' END),
        (CASE WHEN EXISTS (SELECT 1 FROM sales_kpi.stage_event x WHERE x.opportunity_id = o.opportunity_id
                             AND x.entered_at <= i.as_of AND x.entered_at < o.created_at)
              THEN 'event_before_creation' END),
        (CASE WHEN o.closed_at IS NOT NULL AND coalesce(cs.kind, 'open') = 'open' THEN 'closed_without_terminal_stage' END),
        (CASE WHEN o.closed_at IS NULL AND cs.kind IN ('won', 'lost') THEN 'terminal_stage_without_close' END),
        (CASE WHEN n.stage_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM sales_kpi.stage_event x
                                    WHERE x.opportunity_id = o.opportunity_id AND x.entered_at > i.as_of)
                   AND (o.stage_id IS DISTINCT FROM n.stage_id
                        OR o.closed_at IS DISTINCT FROM (CASE WHEN n.kind <> 'open' THEN n.entered_at END)
                        OR o.stage_entered_at IS DISTINCT FROM n.entered_at)
              THEN 'stage_out_of_sync' END),
        (CASE WHEN o.amount < 0 THEN 'negative_amount' END),
        (CASE WHEN o.owner_id IS NULL THEN 'missing_owner' END),
        (CASE WHEN NOT EXISTS (SELECT 1 FROM sales_kpi.opportunity_history h
                                WHERE h.opportunity_id = o.opportunity_id AND h.changed_at <= o.created_at)
              THEN 'missing_snapshot' END)) v(r)
 WHERE v.r IS NOT NULL
UNION ALL
SELECT i.as_of, 'opportunity_history', format('opportunity_id=%s,changed_at=%s', h.opportunity_id, h.changed_at),
       'negative_amount'
  FROM instants i JOIN sales_kpi.opportunity_history h ON h.changed_at <= i.as_of AND h.amount < 0
UNION ALL
SELECT i.as_of, 'activity', 'activity_id=' || a.activity_id, 'negative_duration'
  FROM instants i JOIN sales_kpi.activity a ON a.occurred_at <= i.as_of AND a.duration_s < 0;

SELECT set_eq(
    $$SELECT i.as_of, f.table_name, f.key, f.rule FROM instants i, sales_kpi.data_quality_findings(i.as_of) f$$,
    'SELECT * FROM ref_findings',
    'data_quality_findings agrees with the independent formulation at three instants');
SELECT is((SELECT count(DISTINCT (table_name, rule)) FROM ref_findings WHERE as_of = '2026-10-31 23:00+00'),
          15::bigint, 'every data rule but the stage gap is hit in the broken demo data');
SELECT ok((SELECT count(DISTINCT as_of) = 3 FROM ref_findings), 'the reference has findings at each instant');
SELECT is((SELECT count(*) FROM sales_kpi.data_quality_findings('2026-10-31 23:00+00')
            WHERE opportunity_id IN (SELECT opportunity_id FROM sales_kpi.opportunity WHERE opportunity_id % 300 = 1)
              AND rule = 'event_out_of_order'),
          (SELECT count(*) FROM sales_kpi.opportunity WHERE opportunity_id % 300 = 1 AND opportunity_id % 1000 <> 19),
          'each back-dated event recorded last is out of order');

-- gates: moves in [2025-01-01, 2026-11-01) with required milestones of
-- passed stages not completed by the move
CREATE TEMP TABLE ref_gates AS
SELECT i.as_of, e.stage_event_id, e.opportunity_id,
       count(*) AS missing,
       count(*) FILTER (WHERE me.completed_at IS NOT NULL) AS late,
       -- the owner at the move (else the event's rep, else the current owner)
       (SELECT r.team FROM sales_kpi.rep r
         WHERE r.rep_id = coalesce((SELECT h.owner_id FROM sales_kpi.opportunity_history h
                                     WHERE h.opportunity_id = e.opportunity_id AND h.changed_at <= e.entered_at
                                     ORDER BY h.changed_at DESC LIMIT 1),
                                   e.rep_id,
                                   (SELECT o.owner_id FROM sales_kpi.opportunity o WHERE o.opportunity_id = e.opportunity_id))) AS team
  FROM (VALUES (timestamptz '2026-10-31 23:00+00'), ('2025-09-15 08:30+00')) i(as_of)
  JOIN sales_kpi.stage_event e ON e.entered_at <= i.as_of AND e.entered_at >= '2025-01-01' AND e.entered_at < '2026-11-01'
  JOIN sales_kpi.stage t ON t.stage_id = e.stage_id
  JOIN LATERAL (SELECT x.stage_id FROM sales_kpi.stage_event x
                 WHERE x.opportunity_id = e.opportunity_id
                   AND (x.entered_at, x.stage_event_id) < (e.entered_at, e.stage_event_id)
                 ORDER BY x.entered_at DESC, x.stage_event_id DESC LIMIT 1) p ON true
  JOIN sales_kpi.stage f ON f.stage_id = p.stage_id AND f.kind = 'open'
  JOIN sales_kpi.stage ps ON ps.pipeline_id = f.pipeline_id AND ps.kind = 'open' AND ps.position >= f.position
   AND (t.kind = 'won' OR (t.kind = 'open' AND t.position > f.position AND ps.position < t.position))
  JOIN sales_kpi.milestone m ON m.stage_id = ps.stage_id AND m.required
  LEFT JOIN sales_kpi.milestone_event me ON me.opportunity_id = e.opportunity_id AND me.milestone_id = m.milestone_id
   AND me.completed_at <= i.as_of
 WHERE me.completed_at IS NULL OR me.completed_at > e.entered_at
 GROUP BY i.as_of, e.stage_event_id, e.opportunity_id, e.entered_at, e.rep_id;

SELECT set_eq(
    $$SELECT i.as_of, g.stage_event_id, g.opportunity_id, g.missing_count, g.completed_late_count
        FROM (VALUES (timestamptz '2026-10-31 23:00+00'), ('2025-09-15 08:30+00')) i(as_of),
             sales_kpi.gate_violations('2025-01-01', '2026-11-01', 'company', i.as_of) g$$,
    'SELECT as_of, stage_event_id, opportunity_id, missing, late FROM ref_gates',
    'gate_violations agrees with the independent formulation, now and in the past');
SELECT ok((SELECT count(DISTINCT as_of) = 2 AND count(*) > 100 AND sum(late) > 0 FROM ref_gates),
          'the gate reference has violations at both instants, some completed late');
SELECT set_eq(
    $$SELECT g.stage_event_id, g.dimension_value
        FROM sales_kpi.gate_violations('2025-01-01', '2026-11-01', 'team', '2026-10-31 23:00+00') g$$,
    $$SELECT stage_event_id, coalesce(team, '(none)') FROM ref_gates WHERE as_of = '2026-10-31 23:00+00'$$,
    'by team: the team of the deal''s owner at the move');
SELECT is((SELECT count(*) FROM sales_kpi.gate_violations('2025-01-01', '2026-11-01', 'company', '2026-10-31 23:00+00')
            WHERE gate_mode <> 'off'), 0::bigint, 'the demo pipelines have their gates off, and violations are still found');

-- the ordered passes in C against window functions over the same history
CREATE TEMP TABLE ref_walk AS
SELECT i.as_of, e.stage_event_id, e.opportunity_id, e.stage_id, e.entered_at, e.amount, e.rep_id,
       lag(e.stage_id) OVER w AS prev_stage_id, lag(e.entered_at) OVER w AS prev_entered_at,
       min(e.stage_event_id) OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS min_later_id,
       (lead(e.stage_event_id) OVER w) IS NULL AS is_newest,
       first_value(e.entered_at) OVER w AS first_entered_at, first_value(e.stage_event_id) OVER w AS first_event_id
  FROM instants i
  JOIN sales_kpi.stage_event e ON e.entered_at <= i.as_of
WINDOW w AS (PARTITION BY i.as_of, e.opportunity_id ORDER BY e.entered_at, e.stage_event_id);
SELECT set_eq(
    $$SELECT i.as_of, w.* FROM instants i, sales_kpi_internal.stage_event_walk(i.as_of, NULL, NULL, '{}', '{}', true) w$$,
    $$SELECT * FROM ref_walk
       WHERE min_later_id < stage_event_id OR amount < 0 OR entered_at = prev_entered_at$$,
    'stage_event_walk with suspects: out-of-order events, negative amounts, same instants');
SELECT ok((SELECT count(*) FILTER (WHERE min_later_id < stage_event_id) > 0
              AND count(*) FILTER (WHERE amount < 0) > 0 FROM ref_walk),
          'the history has out-of-order events and negative amounts');
SELECT set_eq(
    $$SELECT i.as_of, w.* FROM instants i,
             sales_kpi_internal.stage_event_walk(i.as_of, '2024-01-01', '2026-01-01',
                                        (SELECT array_agg(s.stage_id ORDER BY s.stage_id, t.stage_id)
                                           FROM sales_kpi.stage s, sales_kpi.stage t
                                          WHERE s.pipeline_id = t.pipeline_id AND s.position + 1 = t.position),
                                        (SELECT array_agg(t.stage_id ORDER BY s.stage_id, t.stage_id)
                                           FROM sales_kpi.stage s, sales_kpi.stage t
                                          WHERE s.pipeline_id = t.pipeline_id AND s.position + 1 = t.position),
                                        false) w$$,
    $$SELECT r.* FROM ref_walk r
        JOIN sales_kpi.stage s ON s.stage_id = r.prev_stage_id
        JOIN sales_kpi.stage t ON t.stage_id = r.stage_id AND t.pipeline_id = s.pipeline_id AND t.position = s.position + 1
       WHERE r.entered_at >= '2024-01-01' AND r.entered_at < '2026-01-01'$$,
    'stage_event_walk with pairs and a range: exactly the moves between the listed stages in the range');
SELECT set_eq(
    $$SELECT g.stage_event_id, g.missing_milestones
        FROM sales_kpi.gate_violations('2025-01-01', '2026-11-01', 'company', '2026-10-31 23:00+00') g$$,
    $$SELECT e.stage_event_id,
             string_agg(format('%s: %s', ps.name, m.name), ', ' ORDER BY ps.position, m.position)
        FROM ref_walk e
        JOIN sales_kpi.stage t ON t.stage_id = e.stage_id
        JOIN sales_kpi.stage f ON f.stage_id = e.prev_stage_id AND f.kind = 'open'
        JOIN sales_kpi.stage ps ON ps.pipeline_id = f.pipeline_id AND ps.kind = 'open' AND ps.position >= f.position
         AND (t.kind = 'won' OR (t.kind = 'open' AND t.position > f.position AND ps.position < t.position))
        JOIN sales_kpi.milestone m ON m.stage_id = ps.stage_id AND m.required
        LEFT JOIN sales_kpi.milestone_event me ON me.opportunity_id = e.opportunity_id
         AND me.milestone_id = m.milestone_id AND me.completed_at <= e.as_of
       WHERE e.as_of = '2026-10-31 23:00+00' AND e.entered_at >= '2025-01-01' AND e.entered_at < '2026-11-01'
         AND (me.completed_at IS NULL OR me.completed_at > e.entered_at)
       GROUP BY e.stage_event_id$$,
    'gate_violations names the missing milestones in stage and milestone order');

-- the whole-history pass gives the same rows read whole or in two halves
SELECT bag_eq($$SELECT * FROM sales_kpi_internal.stage_history_check(now(), '{1}', '{3}', '{5,6}')$$,
              $$SELECT * FROM sales_kpi_internal.stage_history_check(now(), '{1}', '{3}', '{5,6}', NULL, 700)
                UNION ALL
                SELECT * FROM sales_kpi_internal.stage_history_check(now(), '{1}', '{3}', '{5,6}', 701, NULL)$$,
              'stage_history_check: the two halves of the deals give the rows of one pass');

SELECT * FROM finish();
ROLLBACK;
