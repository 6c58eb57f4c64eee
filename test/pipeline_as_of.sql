-- pipeline_as_of on demo data: now it is the deals' current state; in the
-- past it agrees with a set-based reconstruction (DISTINCT ON over the
-- histories) at several instants, for the whole company and for teams,
-- column by column.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(15);
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


-- every column, for the company and for two teams, at several instants
-- (including now and a year ago), against a DISTINCT ON reconstruction
CREATE TEMP TABLE instant AS
SELECT at FROM (VALUES (timestamptz '2023-12-01 00:00+00'), ('2024-06-30 12:00+00'), ('2025-10-31 23:59:59+00'),
                       ('2026-01-15 10:00+00'), ('2026-10-30 18:00+00'), (now())) a(at);
CREATE TEMP TABLE team_pick AS
SELECT team FROM (SELECT DISTINCT team FROM sales_kpi.rep WHERE role = 'ae') t ORDER BY team LIMIT 2;
CREATE TEMP TABLE full_reference AS
SELECT a.at, o.opportunity_id, o.pipeline_id, h.owner_id, e.stage_id, s.position, s.kind, s.kind = 'open' AS is_open,
       e.entered_at, h.amount, o.currency,
       sales_kpi.to_base(h.amount, o.currency, (a.at AT TIME ZONE sales_kpi.reporting_timezone())::date) AS amount_base,
       h.expected_close, coalesce(h.forecast_category, s.forecast_category) AS forecast_category, r.team
  FROM instant a
  JOIN LATERAL (SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id, ev.entered_at
                  FROM sales_kpi.stage_event ev
                 WHERE ev.entered_at <= a.at
                 ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e ON true
  JOIN sales_kpi.opportunity o ON o.opportunity_id = e.opportunity_id AND o.created_at <= a.at
  JOIN sales_kpi.stage s ON s.stage_id = e.stage_id
  LEFT JOIN (SELECT a2.at AS hat, x.*
               FROM instant a2
               JOIN LATERAL (SELECT DISTINCT ON (hi.opportunity_id) hi.opportunity_id, hi.amount, hi.expected_close,
                                    hi.forecast_category, hi.owner_id
                               FROM sales_kpi.opportunity_history hi
                              WHERE hi.changed_at <= a2.at
                              ORDER BY hi.opportunity_id, hi.changed_at DESC) x ON true) h
         ON h.hat = a.at AND h.opportunity_id = e.opportunity_id
  LEFT JOIN sales_kpi.rep r ON r.rep_id = h.owner_id;
SELECT set_eq($$SELECT a.at, p.* FROM instant a, sales_kpi.pipeline_as_of(a.at) p$$,
              $$SELECT at, opportunity_id, pipeline_id, owner_id, stage_id, position, kind, is_open, entered_at, amount,
                       currency, amount_base, expected_close, forecast_category FROM full_reference$$,
              'every column at six instants, now included, agrees with the reconstruction');
SELECT set_eq($$SELECT a.at, t.team, p.* FROM instant a, team_pick t, sales_kpi.pipeline_as_of(a.at, t.team) p$$,
              $$SELECT at, team, opportunity_id, pipeline_id, owner_id, stage_id, position, kind, is_open, entered_at, amount,
                       currency, amount_base, expected_close, forecast_category FROM full_reference
                 WHERE team IN (SELECT team FROM team_pick)$$,
              'two teams at six instants: every column agrees with the reconstruction');
SELECT ok((SELECT count(DISTINCT at) = 6 AND count(DISTINCT team) = 2 AND count(*) FILTER (WHERE is_open) > 100
             FROM full_reference WHERE team IN (SELECT team FROM team_pick)), 'the team reconstruction is not empty');
-- deals whose newest snapshot was corrected directly, without touching the
-- row: the row follows, and both are what the history says
UPDATE sales_kpi.opportunity_history SET amount = amount + 1, owner_id = (SELECT min(rep_id) FROM sales_kpi.rep)
 WHERE (opportunity_id, changed_at) IN (SELECT opportunity_id, max(changed_at) FROM sales_kpi.opportunity_history
                                         WHERE opportunity_id IN (11, 12) GROUP BY 1);
SELECT set_eq($$SELECT opportunity_id, amount, owner_id FROM sales_kpi.pipeline_as_of(now()) WHERE opportunity_id IN (11, 12)$$,
              $$SELECT DISTINCT ON (opportunity_id) opportunity_id, amount, owner_id FROM sales_kpi.opportunity_history
                 WHERE opportunity_id IN (11, 12) ORDER BY opportunity_id, changed_at DESC$$,
              'snapshots corrected directly are what the pipeline shows');
SELECT set_eq($$SELECT opportunity_id, amount, owner_id FROM sales_kpi.opportunity WHERE opportunity_id IN (11, 12)$$,
              $$SELECT DISTINCT ON (opportunity_id) opportunity_id, amount, owner_id FROM sales_kpi.opportunity_history
                 WHERE opportunity_id IN (11, 12) ORDER BY opportunity_id, changed_at DESC$$,
              'the deals follow their corrected newest snapshot');
-- deleting the newest snapshot takes the deal back to the one before
DELETE FROM sales_kpi.opportunity_history
 WHERE (opportunity_id, changed_at) IN (SELECT opportunity_id, max(changed_at) FROM sales_kpi.opportunity_history
                                         WHERE opportunity_id = 11 GROUP BY 1)
   AND (SELECT count(*) FROM sales_kpi.opportunity_history WHERE opportunity_id = 11) > 1;
SELECT set_eq($$SELECT opportunity_id, amount, owner_id FROM sales_kpi.opportunity WHERE opportunity_id = 11$$,
              $$SELECT DISTINCT ON (opportunity_id) opportunity_id, amount, owner_id FROM sales_kpi.opportunity_history
                 WHERE opportunity_id = 11 ORDER BY opportunity_id, changed_at DESC$$,
              'a deal follows the deletion of its newest snapshot');
-- only the open deals
SELECT set_eq($$SELECT a.at, p.* FROM instant a, sales_kpi.pipeline_as_of(a.at, open_only => true) p$$,
              $$SELECT a.at, p.* FROM instant a, sales_kpi.pipeline_as_of(a.at) p WHERE p.is_open$$,
              'open_only: the open deals at six instants');
SELECT set_eq($$SELECT a.at, t.team, p.* FROM instant a, team_pick t,
                       sales_kpi.pipeline_as_of(a.at, t.team, open_only => true) p$$,
              $$SELECT a.at, t.team, p.* FROM instant a, team_pick t, sales_kpi.pipeline_as_of(a.at, t.team) p
                 WHERE p.is_open$$,
              'open_only: the open deals of two teams at six instants');

SELECT * FROM finish();
ROLLBACK;
