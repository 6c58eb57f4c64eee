-- pipeline_flow on demo data: its deal-level categories agree with an
-- independent plain-SQL classification of DISTINCT ON reconstructions at
-- both instants (company and teams, default and explicit windows), and the
-- totals reconcile (start + flows = end, by deals and amount) for many
-- random (from, to, team) triples, in both modes and by rep.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(12);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 21, '2026-10-31', replace => true)$$, 'demo data loads');

-- cases: (from, to, team, close_before or NULL for the default window)
CREATE TEMP TABLE flow_case AS
SELECT k, f::timestamptz AS f, t::timestamptz AS t, team, cb::date AS cb
  FROM (VALUES (1, '2025-01-01', '2025-04-01', NULL, NULL),
               (3, '2026-07-01', '2026-10-31', NULL, 'infinity'),
               (4, '2024-06-01', '2026-06-01', (SELECT max(team) FROM sales_kpi.rep WHERE role = 'ae'), NULL),
               (5, '2026-04-01', '2026-06-30', NULL, '2026-09-30'),
               (6, '2026-09-01', '2026-09-01', NULL, NULL)) v(k, f, t, team, cb);
-- case 2: around the first hand-over, 30 days or more after creation, of a
-- deal still open a week later (moved_out and moved_in by rep)
INSERT INTO flow_case
SELECT 2, h.changed_at - interval '20 days', h.changed_at + interval '1 day', NULL, 'infinity'
  FROM sales_kpi.opportunity_history h
  JOIN sales_kpi.opportunity o ON o.opportunity_id = h.opportunity_id
 WHERE (o.closed_at IS NULL OR o.closed_at > h.changed_at + interval '7 days')
   AND h.changed_at > o.created_at + interval '30 days'
   AND (SELECT p.owner_id FROM sales_kpi.opportunity_history p
         WHERE p.opportunity_id = h.opportunity_id AND p.changed_at < h.changed_at
         ORDER BY p.changed_at DESC LIMIT 1) <> h.owner_id
 ORDER BY h.changed_at, h.opportunity_id LIMIT 1;

-- each deal at each instant, rebuilt with DISTINCT ON over the histories
CREATE TEMP TABLE flow_state AS
SELECT c.k, w.side, e.opportunity_id, s.kind, s.position, h.amount, h.expected_close, r.team AS owner_team,
       coalesce(r.name, '(none)') AS owner_name,
       sales_kpi.to_base(h.amount, o.currency, (c.t AT TIME ZONE sales_kpi.reporting_timezone())::date) AS base,
       coalesce(c.cb, (date_trunc('quarter', c.f AT TIME ZONE sales_kpi.reporting_timezone()) + interval '3 months')::date) AS window_end
  FROM flow_case c
 CROSS JOIN (VALUES ('s'), ('e')) w(side)
 CROSS JOIN LATERAL (SELECT CASE w.side WHEN 's' THEN c.f ELSE c.t END AS at) i
  JOIN LATERAL (SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id
                  FROM sales_kpi.stage_event ev WHERE ev.entered_at <= i.at
                 ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e ON true
  JOIN sales_kpi.opportunity o ON o.opportunity_id = e.opportunity_id AND o.created_at <= i.at
  JOIN sales_kpi.stage s ON s.stage_id = e.stage_id
  LEFT JOIN LATERAL (SELECT hi.amount, hi.expected_close, hi.owner_id
                       FROM sales_kpi.opportunity_history hi
                      WHERE hi.opportunity_id = e.opportunity_id AND hi.changed_at <= i.at
                      ORDER BY hi.changed_at DESC LIMIT 1) h ON true
  LEFT JOIN sales_kpi.rep r ON r.rep_id = h.owner_id;
ANALYZE flow_state;

CREATE TEMP TABLE flow_pair AS
SELECT c.k, d.opportunity_id, s.kind AS kind_s, e.kind AS kind_e, s.position AS pos_s, e.position AS pos_e,
       coalesce(s.base, 0) AS amt_s, coalesce(e.base, 0) AS amt_e, s.opportunity_id IS NOT NULL AS known_s,
       s.owner_name AS rep_s, e.owner_name AS rep_e,
       coalesce(s.kind = 'open' AND (s.expected_close IS NULL OR s.expected_close < s.window_end), false) AS win_s,
       coalesce(e.kind = 'open' AND (e.expected_close IS NULL OR e.expected_close < e.window_end), false) AS win_e,
       coalesce(s.kind = 'open' AND (s.expected_close IS NULL OR s.expected_close < s.window_end)
                AND (c.team IS NULL OR s.owner_team = c.team), false) AS in_s,
       coalesce(e.kind = 'open' AND (e.expected_close IS NULL OR e.expected_close < e.window_end)
                AND (c.team IS NULL OR e.owner_team = c.team), false) AS in_e
  FROM flow_case c
  JOIN (SELECT DISTINCT k, opportunity_id FROM flow_state) d ON d.k = c.k
  LEFT JOIN flow_state s ON s.k = c.k AND s.side = 's' AND s.opportunity_id = d.opportunity_id
  LEFT JOIN flow_state e ON e.k = c.k AND e.side = 'e' AND e.opportunity_id = d.opportunity_id;

-- the primary classification, written out plainly
CREATE TEMP TABLE flow_reference AS
SELECT k, opportunity_id,
       CASE WHEN in_s AND in_e THEN
                 CASE WHEN amt_e > amt_s THEN 'amount_up' WHEN amt_e < amt_s THEN 'amount_down'
                      WHEN kind_s = 'open' AND kind_e = 'open' AND pos_e > pos_s THEN 'advanced'
                      WHEN kind_s = 'open' AND kind_e = 'open' AND pos_e < pos_s THEN 'regressed'
                      ELSE 'unchanged' END
            WHEN in_s THEN
                 CASE WHEN kind_e = 'won' THEN 'won' WHEN kind_e = 'lost' THEN 'lost'
                      WHEN NOT win_e THEN 'pushed' ELSE 'moved_out' END
            ELSE CASE WHEN NOT known_s THEN 'created' WHEN kind_s <> 'open' THEN 'reopened'
                      WHEN NOT win_s THEN 'pulled_in' ELSE 'moved_in' END
       END AS category,
       CASE WHEN in_s AND in_e THEN 0 WHEN in_s THEN -1 ELSE 1 END AS deal_change,
       round(CASE WHEN in_s AND in_e THEN amt_e - amt_s WHEN in_s THEN -amt_s ELSE amt_e END, 6) AS amount
  FROM flow_pair WHERE in_s OR in_e
UNION ALL
SELECT k, opportunity_id, 'start', NULL, round(amt_s, 6) FROM flow_pair WHERE in_s
UNION ALL
SELECT k, opportunity_id, 'end', NULL, round(amt_e, 6) FROM flow_pair WHERE in_e;

-- by rep: a deal that changes hands leaves one rep's pipeline and enters the other's
CREATE TEMP TABLE flow_reference_rep AS
SELECT k, rep_e AS rep, opportunity_id,
       CASE WHEN amt_e > amt_s THEN 'amount_up' WHEN amt_e < amt_s THEN 'amount_down'
            WHEN kind_s = 'open' AND kind_e = 'open' AND pos_e > pos_s THEN 'advanced'
            WHEN kind_s = 'open' AND kind_e = 'open' AND pos_e < pos_s THEN 'regressed'
            ELSE 'unchanged' END AS category,
       0 AS deal_change, round(amt_e - amt_s, 6) AS amount
  FROM flow_pair WHERE in_s AND in_e AND rep_s = rep_e
UNION ALL
SELECT k, rep_s, opportunity_id,
       CASE WHEN kind_e = 'won' THEN 'won' WHEN kind_e = 'lost' THEN 'lost'
            WHEN NOT win_e THEN 'pushed' ELSE 'moved_out' END, -1, round(-amt_s, 6)
  FROM flow_pair WHERE in_s AND NOT (in_e AND rep_s = rep_e)
UNION ALL
SELECT k, rep_e, opportunity_id,
       CASE WHEN NOT known_s THEN 'created' WHEN kind_s <> 'open' THEN 'reopened'
            WHEN NOT win_s THEN 'pulled_in' ELSE 'moved_in' END, 1, round(amt_e, 6)
  FROM flow_pair WHERE in_e AND NOT (in_s AND rep_s = rep_e);

CREATE TEMP TABLE flow_primary AS
SELECT c.k, d.opportunity_id, d.category, d.deal_change, round(d.amount, 6) AS amount
  FROM flow_case c,
       sales_kpi.pipeline_flow_deals(c.f, c.t, 'primary', 'company', c.team, c.cb) d;
CREATE TEMP TABLE flow_all AS
SELECT c.k, d.opportunity_id, d.category, d.deal_change, d.amount
  FROM flow_case c,
       sales_kpi.pipeline_flow_deals(c.f, c.t, 'all', 'company', c.team, c.cb) d;

SELECT set_eq('SELECT * FROM flow_primary', 'SELECT * FROM flow_reference',
              'primary: every deal, its category and amount agree with a plain-SQL classification (six cases)');
SELECT ok((SELECT count(DISTINCT k) = 6 AND count(*) > 1000 FROM flow_reference), 'the reference covers all six cases');
SELECT ok((SELECT count(DISTINCT category) >= 12 FROM flow_reference),
          'the reference has most categories (pulled_in is rare in the demo data; the regression test has it)');
SELECT set_eq($$SELECT c.k, d.dimension_value, d.opportunity_id, d.category, d.deal_change, round(d.amount, 6)
                  FROM flow_case c, sales_kpi.pipeline_flow_deals(c.f, c.t, 'primary', 'rep', c.team, c.cb) d
                 WHERE d.category NOT IN ('start', 'end')$$,
              'SELECT * FROM flow_reference_rep',
              'primary by rep: deals changing hands move out of one rep and into another');
SELECT ok((SELECT count(*) FILTER (WHERE category = 'moved_in') > 0 AND count(*) FILTER (WHERE category = 'moved_out') > 0
             FROM flow_reference_rep), 'by rep, deals move in and out');
SELECT ok((SELECT bool_and(category IN ('start', 'unchanged', 'end')) FROM flow_primary WHERE k = 6)
          AND (SELECT count(*) > 0 FROM flow_primary WHERE k = 6), 'from = to: every deal unchanged');
-- all mode: each deal's primary category is among its categories, and its
-- flows add up to its end amount minus its start amount (nothing twice)
SELECT is((SELECT count(*) FROM (SELECT k, opportunity_id, category FROM flow_primary
                                 EXCEPT SELECT k, opportunity_id, category FROM flow_all) x),
          0::bigint, 'all: every deal keeps its primary category');
SELECT is((SELECT count(*)
             FROM (SELECT k, opportunity_id,
                          coalesce(sum(amount) FILTER (WHERE category NOT IN ('start', 'end')), 0) AS flows,
                          coalesce(sum(amount) FILTER (WHERE category = 'end'), 0)
                          - coalesce(sum(amount) FILTER (WHERE category = 'start'), 0) AS net,
                          coalesce(sum(deal_change), 0) AS dc,
                          count(*) FILTER (WHERE category = 'end') - count(*) FILTER (WHERE category = 'start') AS dn
                     FROM flow_all GROUP BY 1, 2) x
            WHERE flows <> net OR dc <> dn),
          0::bigint, 'all: per deal, the flows are exactly the change from start to end');
SELECT ok((SELECT count(*) FILTER (WHERE n > 2) > 0 FROM (SELECT k, opportunity_id, count(*) n FROM flow_all
                                                          WHERE category NOT IN ('start', 'end') GROUP BY 1, 2) x),
          'all: some deals have several categories');

-- reconciliation for random (from, to, team), both modes, company and by rep
SELECT setseed(0.42);
CREATE TEMP TABLE flow_random AS
SELECT g, f, f + (random() * 400) * interval '1 day' AS t,
       CASE WHEN random() < 0.5 THEN NULL
            ELSE (SELECT team FROM sales_kpi.rep WHERE role = 'ae' ORDER BY team OFFSET (g * 7) % 20 LIMIT 1) END AS team
  FROM (SELECT g, timestamptz '2024-01-01' + (random() * 1000) * interval '1 day' AS f
          FROM generate_series(1, 24) g) x;
CREATE TEMP TABLE flow_recon AS
SELECT r.g, m.mode, d.dimension, p.dimension_value,
       sum(p.deals) FILTER (WHERE p.category = 'start') AS start_deals,
       sum(p.deal_change) AS deal_change,
       sum(p.deals) FILTER (WHERE p.category = 'end') AS end_deals,
       sum(p.amount) FILTER (WHERE p.category = 'start') AS start_amount,
       sum(p.amount) FILTER (WHERE p.category NOT IN ('start', 'end')) AS flow_amount,
       sum(p.amount) FILTER (WHERE p.category = 'end') AS end_amount
  FROM flow_random r
 CROSS JOIN (VALUES ('primary'), ('all')) m(mode)
 CROSS JOIN (VALUES ('company'), ('rep')) d(dimension)
 CROSS JOIN LATERAL sales_kpi.pipeline_flow(r.f, r.t, m.mode, d.dimension, r.team) p
 GROUP BY 1, 2, 3, 4;
SELECT is((SELECT count(*) FROM flow_recon
            WHERE start_deals + deal_change IS DISTINCT FROM end_deals
               OR start_amount + flow_amount IS DISTINCT FROM end_amount),
          0::bigint, 'start + flows = end, by deals and by amount, for 24 random (from, to, team) in both modes, company and by rep');
SELECT ok((SELECT count(DISTINCT g) = 24 AND count(*) FILTER (WHERE start_deals > 0 AND end_deals > 0) > 100
                  AND count(*) FILTER (WHERE deal_change <> 0) > 50
             FROM flow_recon), 'the random cases are not empty');

SELECT * FROM finish();
ROLLBACK;
