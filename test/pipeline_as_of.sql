-- pipeline_as_of on demo data: now it is the deals' current state; in the
-- past it agrees with a set-based reconstruction (DISTINCT ON over the
-- histories) at several instants, for the whole company and for a team.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(7);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(2000, 13, '2026-10-31', replace => true)$$, 'demo data loads');

SELECT is((SELECT count(*) FROM sales_kpi.pipeline_as_of(now()) p
             JOIN sales_kpi.opportunity o USING (opportunity_id)
            WHERE (p.stage_id, p.amount, p.owner_id, p.expected_close, p.is_open)
                  IS DISTINCT FROM (o.stage_id, o.amount, o.owner_id, o.expected_close, o.closed_at IS NULL)),
          0::bigint, 'as of now, every deal is as its row says');
SELECT is((SELECT count(*) FROM sales_kpi.pipeline_as_of(now())),
          (SELECT count(*) FROM sales_kpi.opportunity WHERE stage_id IS NOT NULL), 'as of now, every deal with a history is there');

CREATE TEMP VIEW reference AS
SELECT a.at, e.opportunity_id, e.stage_id, h.amount, h.owner_id, h.expected_close
  FROM (VALUES (timestamptz '2024-06-30 12:00+00'), ('2025-09-15 08:30+00'), ('2026-05-01 00:00+00')) a(at)
  JOIN LATERAL (SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id
                  FROM sales_kpi.stage_event ev
                 WHERE ev.entered_at <= a.at
                 ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e ON true
  JOIN LATERAL (SELECT DISTINCT ON (hi.opportunity_id) hi.opportunity_id, hi.amount, hi.owner_id, hi.expected_close
                  FROM sales_kpi.opportunity_history hi
                 WHERE hi.changed_at <= a.at
                 ORDER BY hi.opportunity_id, hi.changed_at DESC) h ON h.opportunity_id = e.opportunity_id
  JOIN sales_kpi.opportunity o ON o.opportunity_id = e.opportunity_id AND o.created_at <= a.at;

SELECT set_eq($$SELECT a.at, p.opportunity_id, p.stage_id, p.amount, p.owner_id, p.expected_close
                  FROM (VALUES (timestamptz '2024-06-30 12:00+00'), ('2025-09-15 08:30+00'), ('2026-05-01 00:00+00')) a(at),
                       sales_kpi.pipeline_as_of(a.at) p$$,
              'SELECT * FROM reference',
              'at three past instants, every deal agrees with a set-based reconstruction');
SELECT ok((SELECT count(DISTINCT at) = 3 AND count(*) > 1000 FROM reference), 'the reconstruction covers all three instants');
SELECT set_eq($$SELECT p.opportunity_id FROM sales_kpi.pipeline_as_of('2025-09-15 08:30+00', 'APAC 1') p$$,
              $$SELECT r.opportunity_id FROM reference r JOIN sales_kpi.rep ON rep.rep_id = r.owner_id
                 WHERE r.at = '2025-09-15 08:30+00' AND rep.team = 'APAC 1'$$,
              'one team: the deals its reps owned at the instant');
SELECT ok((SELECT count(*) > 10 FROM sales_kpi.pipeline_as_of('2025-09-15 08:30+00', 'APAC 1')),
          'that team owned deals at the instant');

SELECT * FROM finish();
ROLLBACK;
