-- stage_durations, stage_norms and stalled_deals on demo data against
-- plain-SQL reconstructions written here (DISTINCT ON and window functions
-- over the whole stage history), now and at two past instants, for the
-- whole company and broken down by rep and team.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SET LOCAL TimeZone = 'UTC';
SELECT plan(17);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 7, '2026-10-31', replace => true)$$, 'demo data loads');
-- a fifth of the deals get their history re-inserted newest first, so that
-- stage_event_id order contradicts time order
SELECT lives_ok($$WITH gone AS (DELETE FROM sales_kpi.stage_event WHERE opportunity_id % 5 = 0 RETURNING *)
                  INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, amount, rep_id)
                  SELECT opportunity_id, stage_id, entered_at, amount, rep_id FROM gone
                   ORDER BY entered_at DESC, stage_event_id DESC$$, 'histories re-inserted out of order');
SELECT ok((SELECT count(*) > 100 FROM (SELECT stage_event_id < lag(stage_event_id) OVER (PARTITION BY opportunity_id ORDER BY entered_at) AS back
                                          FROM sales_kpi.stage_event) x WHERE back),
          'many events have a lower id than the event before them');

CREATE TEMP TABLE instant (at timestamptz);
INSERT INTO instant VALUES (now()), ('2025-09-15 08:30+00'), ('2026-05-01 00:00+00');

-- every event with the next event of its deal, over the whole history
CREATE TEMP TABLE ref_event AS
SELECT i.at, e.opportunity_id, e.stage_id, s.kind, e.entered_at,
       lead(e.entered_at) OVER (PARTITION BY i.at, e.opportunity_id ORDER BY e.entered_at, e.stage_event_id) AS next_at,
       row_number() OVER (PARTITION BY i.at, e.opportunity_id ORDER BY e.entered_at DESC, e.stage_event_id DESC) AS newest
  FROM instant i
  JOIN sales_kpi.stage_event e ON e.entered_at <= i.at
  JOIN sales_kpi.stage s ON s.stage_id = e.stage_id;
-- each deal as it stood: stage from the newest event, fields from the newest snapshot
CREATE TEMP TABLE ref_deal AS
SELECT ev.at, ev.opportunity_id, ev.stage_id, ev.kind, ev.entered_at AS stage_entered_at,
       h.owner_id, h.expected_close
  FROM ref_event ev
  JOIN sales_kpi.opportunity o ON o.opportunity_id = ev.opportunity_id AND o.created_at <= ev.at
  LEFT JOIN LATERAL (SELECT hi.owner_id, hi.expected_close FROM sales_kpi.opportunity_history hi
                      WHERE hi.opportunity_id = ev.opportunity_id AND hi.changed_at <= ev.at
                      ORDER BY hi.changed_at DESC LIMIT 1) h ON true
 WHERE ev.newest = 1;

-- stage_durations
CREATE TEMP TABLE ref_durations AS
SELECT ev.at, ev.opportunity_id, ev.stage_id, count(*) AS stays,
       max(ev.entered_at) AS latest_entered_at,
       sum(extract(epoch FROM coalesce(ev.next_at, ev.at) - ev.entered_at) / 86400) AS total_days,
       (array_agg(extract(epoch FROM coalesce(ev.next_at, ev.at) - ev.entered_at) / 86400
                  ORDER BY ev.entered_at DESC))[1] AS latest_days,
       bool_or(ev.next_at IS NULL) AS is_current
  FROM ref_event ev
  JOIN ref_deal d ON d.at = ev.at AND d.opportunity_id = ev.opportunity_id AND d.kind = 'open'
 WHERE ev.kind = 'open'
 GROUP BY ev.at, ev.opportunity_id, ev.stage_id;
SELECT set_eq($$SELECT i.at, f.opportunity_id, f.stage_id, f.stays, f.latest_entered_at, f.is_current,
                       round(f.total_days::numeric, 6) AS total, round(f.latest_stay_days::numeric, 6) AS latest
                  FROM instant i, sales_kpi.stage_durations(i.at) f$$,
              $$SELECT at, opportunity_id, stage_id, stays, latest_entered_at, is_current,
                       round(total_days::numeric, 6) AS total, round(latest_days::numeric, 6) AS latest FROM ref_durations$$,
              'stage_durations: every open deal and open stage it has been in, at three instants');
SELECT ok((SELECT count(DISTINCT at) = 3 AND count(*) > 500 AND count(*) FILTER (WHERE stays > 1) > 10
             FROM ref_durations), 'the durations reference covers three instants, with returns to a stage');
SELECT set_eq($$SELECT f.opportunity_id, f.stage_id, f.stays, round(f.total_days::numeric, 6), f.is_open
                  FROM sales_kpi.stage_durations('2026-05-01', opportunity_ids =>
                       ARRAY(SELECT opportunity_id FROM sales_kpi.opportunity WHERE opportunity_id % 7 = 0)) f$$,
              $$SELECT ev.opportunity_id, ev.stage_id, count(*),
                       round(sum(extract(epoch FROM coalesce(ev.next_at, ev.at) - ev.entered_at) / 86400)::numeric, 6),
                       d.kind = 'open'
                  FROM ref_event ev JOIN ref_deal d USING (at, opportunity_id)
                 WHERE ev.at = '2026-05-01' AND ev.kind = 'open' AND ev.opportunity_id % 7 = 0
                 GROUP BY ev.opportunity_id, ev.stage_id, d.kind$$,
              'stage_durations for given deals, open or closed');

-- stage_norms: stays of deals whose state at the instant is won, won in the last 365 days
CREATE TEMP TABLE ref_won_stay AS
SELECT ev.at, d.opportunity_id, o.pipeline_id, ev.stage_id,
       extract(epoch FROM ev.next_at - ev.entered_at) / 86400 AS days,
       r.name AS rep
  FROM ref_deal d
  JOIN sales_kpi.opportunity o ON o.opportunity_id = d.opportunity_id
  JOIN ref_event ev ON ev.at = d.at AND ev.opportunity_id = d.opportunity_id AND ev.kind = 'open'
  LEFT JOIN LATERAL (SELECT hi.owner_id FROM sales_kpi.opportunity_history hi
                      WHERE hi.opportunity_id = d.opportunity_id AND hi.changed_at <= d.stage_entered_at
                      ORDER BY hi.changed_at DESC LIMIT 1) w ON true
  LEFT JOIN sales_kpi.rep r ON r.rep_id = w.owner_id
 WHERE d.kind = 'won' AND d.stage_entered_at >= d.at - interval '365 days';
CREATE TEMP TABLE ref_norm AS
SELECT at, pipeline_id, stage_id, rep, n, mean_days,
       max(days) FILTER (WHERE rk = floor(0.5 * (n - 1))) AS p50,
       max(days) FILTER (WHERE rk = floor(0.75 * (n - 1))) AS p75,
       max(days) FILTER (WHERE rk = floor(0.9 * (n - 1))) AS p90
  FROM (SELECT s.*, row_number() OVER w - 1 AS rk, count(*) OVER (PARTITION BY at, pipeline_id, stage_id, rep) AS n,
               avg(days) OVER (PARTITION BY at, pipeline_id, stage_id, rep) AS mean_days
          FROM (SELECT at, pipeline_id, stage_id, days, 'all'::text AS rep FROM ref_won_stay
                UNION ALL
                SELECT at, pipeline_id, stage_id, days, coalesce(rep, '(none)') FROM ref_won_stay) s
        WINDOW w AS (PARTITION BY at, pipeline_id, stage_id, rep ORDER BY days)) x
 GROUP BY at, pipeline_id, stage_id, rep, n, mean_days;
CREATE TEMP TABLE got_norm AS
SELECT i.at, n.* FROM instant i, sales_kpi.stage_norms(i.at) n
UNION ALL
SELECT i.at, n.* FROM instant i, sales_kpi.stage_norms(i.at, 'rep') n;
SELECT set_eq($$SELECT at, pipeline_id, stage_id, dimension_value, stays, round(mean_days::numeric, 6)
                  FROM got_norm WHERE stays > 0$$,
              $$SELECT at, pipeline_id, stage_id, rep, n, round(mean_days::numeric, 6) FROM ref_norm$$,
              'stage_norms: count and mean of the won deals'' stays per stage, company and by rep (owner at the close)');
SELECT is((SELECT count(*) FROM got_norm g JOIN ref_norm r
             ON r.at = g.at AND r.pipeline_id = g.pipeline_id AND r.stage_id = g.stage_id AND r.rep = g.dimension_value
            WHERE NOT (abs(g.p50_days - r.p50) <= 0.01 * r.p50 + 1e-9
                       AND abs(g.p75_days - r.p75) <= 0.01 * r.p75 + 1e-9
                       AND abs(g.p90_days - r.p90) <= 0.01 * r.p90 + 1e-9)),
          0::bigint, 'stage_norms: p50, p75, p90 within 1% of the exact quantiles');
SELECT ok((SELECT count(DISTINCT at) = 3 AND count(*) > 100 FROM ref_norm WHERE rep <> 'all'),
          'the norms reference covers three instants and many reps');
SELECT is((SELECT count(*) FROM got_norm g WHERE g.dimension = 'company'),
          (SELECT count(*) * 3 FROM sales_kpi.stage WHERE kind = 'open'),
          'company norms list every open stage at every instant');
SELECT ok((SELECT bool_and(p50_days IS NULL AND p75_days IS NULL AND mean_days IS NULL) FROM got_norm WHERE stays = 0)
          AND (SELECT count(*) > 0 FROM sales_kpi.stage_norms('2026-05-01', lookback => '3 days') WHERE stays = 0),
          'stages without won stays in the lookback have null norms');

-- stalled_deals, with the norms above (checked against their reference)
CREATE TEMP TABLE ref_stalled AS
SELECT d.at, d.opportunity_id,
       array_remove(ARRAY[
           CASE WHEN extract(epoch FROM d.at - d.stage_entered_at) / 86400 > n.p75_days THEN 'over_norm' END,
           CASE WHEN mi.names IS NOT NULL THEN 'missing_milestones' END,
           CASE WHEN d.expected_close < d.at::date THEN 'past_expected_close' END], NULL) AS reasons,
       mi.names, r.team
  FROM ref_deal d
  JOIN got_norm n ON n.at = d.at AND n.dimension = 'company' AND n.stage_id = d.stage_id
  LEFT JOIN sales_kpi.rep r ON r.rep_id = d.owner_id
  LEFT JOIN LATERAL (SELECT array_agg(m.name ORDER BY m.position) AS names
                       FROM sales_kpi.milestone m
                      WHERE m.stage_id = d.stage_id AND m.required
                        AND NOT EXISTS (SELECT 1 FROM sales_kpi.milestone_event me
                                         WHERE me.opportunity_id = d.opportunity_id AND me.milestone_id = m.milestone_id
                                           AND me.completed_at <= d.at)) mi ON true
 WHERE d.kind = 'open';
SELECT set_eq($$SELECT i.at, s.opportunity_id, s.reasons, s.missing_milestones
                  FROM instant i, sales_kpi.stalled_deals(i.at) s$$,
              $$SELECT at, opportunity_id, reasons, names FROM ref_stalled WHERE cardinality(reasons) > 0$$,
              'stalled_deals: the open deals over the p75 norm, missing milestones or past their expected close');
SELECT ok((SELECT count(DISTINCT at) = 3 AND count(*) FILTER (WHERE 'over_norm' = ANY (reasons)) > 10
                  AND count(*) FILTER (WHERE 'missing_milestones' = ANY (reasons)) > 10
                  AND count(*) FILTER (WHERE 'past_expected_close' = ANY (reasons)) > 10
                  AND count(*) FILTER (WHERE cardinality(reasons) = 0) > 0
             FROM ref_stalled), 'the stalled reference has every reason, and healthy deals, at three instants');
SELECT set_eq($$SELECT s.opportunity_id, s.dimension_value FROM sales_kpi.stalled_deals('2025-09-15 08:30+00', 'team') s$$,
              $$SELECT opportunity_id, coalesce(team, '(none)') FROM ref_stalled
                 WHERE at = '2025-09-15 08:30+00' AND cardinality(reasons) > 0$$,
              'stalled_deals by team: the team of the owner at the instant');
SELECT is((SELECT count(*) FROM sales_kpi.stalled_deals s
            WHERE s.stage_days IS NULL OR s.stage_entered_at IS NULL
               OR ('past_expected_close' = ANY (s.reasons)) <> (s.overdue_days IS NOT NULL)
               OR ('missing_milestones' = ANY (s.reasons)) <> (s.missing_milestones IS NOT NULL)
               OR ('over_norm' = ANY (s.reasons)) <> coalesce(s.stage_days > s.norm_p75_days, false)),
          0::bigint, 'the view''s details agree with its reasons');

-- the building block: every stay of a list of deals, from one index scan
SELECT set_eq($$SELECT i.at, x.opportunity_id, x.stage_id, x.entered_at, x.left_at
                 FROM instant i,
                      sales_kpi_internal.stage_stays(i.at, ARRAY(SELECT o.opportunity_id FROM sales_kpi.opportunity o
                                                         WHERE o.opportunity_id % 3 = 0)) x$$,
              $$SELECT at, opportunity_id, stage_id, entered_at, next_at FROM ref_event
                 WHERE opportunity_id % 3 = 0$$,
              'stage_stays: each event of the deals asked for, ended by the next, at three instants');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.stage_stays(NULL, '{1}')$$, '22004',
                 'argument "as_of" must not be null', 'stage_stays: a null as_of is an error');

SELECT * FROM finish();
ROLLBACK;
