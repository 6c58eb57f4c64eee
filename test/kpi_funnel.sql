-- Funnel KPIs on demo data against independent plain-SQL formulations
-- (DISTINCT ON histories, EXISTS probes, explicit formulas), for the whole
-- company and by a dimension, at instants now and in the past.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(21);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 7, '2026-10-31', replace => true)$$, 'demo data loads');

-- open stages ranked 1..n per pipeline
CREATE TEMP VIEW ref_stage AS
SELECT s.stage_id, s.pipeline_id, s.kind, s.position,
       CASE WHEN s.kind = 'open' THEN (SELECT count(*) FROM sales_kpi.stage s2
                                        WHERE s2.pipeline_id = s.pipeline_id AND s2.kind = 'open'
                                          AND s2.position <= s.position) END::int AS rank,
       (SELECT count(*) FROM sales_kpi.stage s2 WHERE s2.pipeline_id = s.pipeline_id AND s2.kind = 'open')::int AS n
  FROM sales_kpi.stage s;

-- the instants and periods tested: Q3 2026 as of the end of the data, Q1 2025 as of
-- 2025-05-15 (history reconstruction), Q2 2026 as of 2026-08-20
CREATE TEMP TABLE cases (ps timestamptz, pe timestamptz, as_of timestamptz);
INSERT INTO cases VALUES ('2026-07-01', '2026-10-01', '2026-10-31 23:00'),
                         ('2025-01-01', '2025-04-01', '2025-05-15 12:00'),
                         ('2026-04-01', '2026-07-01', '2026-08-20 00:00');

-- every deal of every case, as its history stood at the case's as_of
CREATE TEMP TABLE ref_deal AS
SELECT c.ps, c.pe, c.as_of, o.opportunity_id, o.pipeline_id, o.created_at, o.source,
       last.kind AS outcome,
       CASE WHEN EXISTS (SELECT 1 FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
                          WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of AND s.kind = 'won')
            THEN (SELECT n FROM ref_stage WHERE pipeline_id = o.pipeline_id LIMIT 1)
            ELSE (SELECT max(s.rank) FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
                   WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of) END AS reach,
       (SELECT max(s.position) FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
         WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of AND s.kind = 'open') AS top_position,
       EXISTS (SELECT 1 FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
                WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of AND s.kind = 'won') AS ever_won,
       -- strict: the largest k such that every stage j <= k was entered, each for the first time no earlier
       -- than the stage before it
       (SELECT coalesce(max(k), 0) FROM generate_series(1, (SELECT n FROM ref_stage WHERE pipeline_id = o.pipeline_id LIMIT 1)) k
         WHERE NOT EXISTS (
               SELECT 1 FROM generate_series(1, k) j
                WHERE NOT EXISTS (SELECT 1 FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
                                   WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of
                                     AND s.pipeline_id = o.pipeline_id AND s.rank = j)
                   OR (j > 1 AND (SELECT min(e.entered_at) FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
                                   WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of AND s.rank = j)
                               < (SELECT min(e.entered_at) FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
                                   WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of AND s.rank = j - 1)))) AS strict_reach,
       coalesce((SELECT h.owner_id FROM sales_kpi.opportunity_history h
                  WHERE h.opportunity_id = o.opportunity_id AND h.changed_at <= c.as_of
                  ORDER BY h.changed_at DESC LIMIT 1), o.owner_id) AS owner_now
  FROM cases c
  -- the deals a case can need: created in the period, moved in it, or the deal of a lead created in it
  JOIN sales_kpi.opportunity o
    ON o.created_at <= c.as_of
   AND (o.created_at >= c.ps AND o.created_at < c.pe
        OR EXISTS (SELECT 1 FROM sales_kpi.stage_event e
                    WHERE e.opportunity_id = o.opportunity_id AND e.entered_at >= c.ps AND e.entered_at < c.pe)
        OR EXISTS (SELECT 1 FROM sales_kpi.lead l
                    WHERE l.opportunity_id = o.opportunity_id AND l.created_at >= c.ps AND l.created_at < c.pe))
  JOIN LATERAL (SELECT DISTINCT ON (e.opportunity_id) s.kind
                  FROM sales_kpi.stage_event e JOIN ref_stage s USING (stage_id)
                 WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of
                 ORDER BY e.opportunity_id, e.entered_at DESC, e.stage_event_id DESC) last ON true;
CREATE INDEX ON ref_deal (as_of, opportunity_id);
ANALYZE ref_deal;

-- ---------------------------------------------------------------------------
-- stage_conversion: every variant, by company and by team (owner at as_of)
-- ---------------------------------------------------------------------------
CREATE TEMP VIEW ref_conversion AS
WITH d AS (
    SELECT v.variant, rd.*, CASE WHEN v.variant = 'strict' THEN nullif(rd.strict_reach, 0) ELSE rd.reach END AS rk,
           dm.dimension, CASE dm.dimension WHEN 'company' THEN 'all' ELSE coalesce(r.team, '(none)') END AS value
      FROM ref_deal rd
      LEFT JOIN sales_kpi.rep r ON r.rep_id = rd.owner_now
     CROSS JOIN (VALUES ('all'), ('decided'), ('strict')) v(variant)
     CROSS JOIN (VALUES ('company'), ('team')) dm(dimension)
     WHERE rd.created_at >= rd.ps AND rd.created_at < rd.pe
), k AS (
    SELECT DISTINCT d.variant, d.dimension, d.value, d.as_of, d.pipeline_id, s.rank, s.n
      FROM d JOIN ref_stage s ON s.pipeline_id = d.pipeline_id AND s.rank IS NOT NULL
)
SELECT k.variant, k.dimension, k.value, k.as_of, k.pipeline_id, k.rank,
       x.reached, x.advanced, x.open_here, x.won,
       round((x.advanced::numeric / nullif(x.reached - CASE WHEN k.variant = 'decided' THEN x.open_here ELSE 0 END, 0)), 6) AS conv,
       round((x.reached::numeric / nullif(x.first - CASE WHEN k.variant = 'decided' THEN x.open_below ELSE 0 END, 0)), 6) AS cum,
       round((x.won::numeric / nullif(x.reached - CASE WHEN k.variant = 'decided' THEN x.open_reached ELSE 0 END, 0)), 6) AS win
  FROM k
  CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE d.rk >= k.rank) AS reached,
               CASE WHEN k.rank < k.n THEN count(*) FILTER (WHERE d.rk >= k.rank + 1) END AS advanced,
               count(*) FILTER (WHERE d.rk = k.rank AND d.outcome = 'open') AS open_here,
               count(*) FILTER (WHERE d.rk >= k.rank AND d.outcome = 'won') AS won,
               count(*) FILTER (WHERE d.rk >= 1) AS first,
               count(*) FILTER (WHERE d.rk < k.rank AND d.outcome = 'open') AS open_below,
               count(*) FILTER (WHERE d.rk >= k.rank AND d.outcome = 'open') AS open_reached
          FROM d
         WHERE d.variant = k.variant AND d.dimension = k.dimension AND d.value = k.value AND d.as_of = k.as_of
           AND d.pipeline_id = k.pipeline_id) x;

SELECT set_eq($$SELECT v.variant, f.dimension, f.dimension_value, c.as_of, f.pipeline_id, f.step,
                       f.reached, f.advanced, f.open_deals, f.won,
                       round(f.conversion_rate::numeric, 6) AS conv, round(f.cumulative_rate::numeric, 6) AS cum,
                       round(f.win_rate::numeric, 6) AS win
                  FROM cases c, (VALUES ('all'), ('decided'), ('strict')) v(variant),
                       (VALUES ('company'), ('team')) dm(dimension),
                       sales_kpi.stage_conversion(c.ps, c.pe, dm.dimension, c.as_of, v.variant) f
                 WHERE f.reached > 0 OR dm.dimension = 'team'$$,
              $$SELECT * FROM ref_conversion WHERE reached > 0 OR dimension = 'team'$$,
              'stage_conversion: every variant, company and team, now and in the past, agrees with the reference');
SELECT ok((SELECT count(DISTINCT as_of) = 3 AND count(DISTINCT value) > 2 AND count(*) FILTER (WHERE reached > 0) > 100
             AND count(*) FILTER (WHERE variant = 'strict' AND reached > 0) > 20
             FROM ref_conversion), 'the conversion reference covers three instants, several teams and the strict variant');
SELECT ok(coalesce((SELECT bool_or(a.reached <> s.reached)
                      FROM ref_conversion a JOIN ref_conversion s USING (dimension, value, as_of, pipeline_id, rank)
                     WHERE a.variant = 'all' AND s.variant = 'strict'), false),
          'the strict variant differs from all on this data (skips exist)');
SELECT ok(coalesce((SELECT bool_or(f.open_deals > 0 AND f.conversion_rate IS NOT NULL)
                      FROM sales_kpi.stage_conversion('2026-07-01', '2026-10-01', 'company', '2026-10-31 23:00', 'decided') f), false),
          'decided conversion leaves out open deals that exist');
-- history reconstruction matters: the 2025 cohort as of 2025-05-15 differs from the same cohort now
SELECT ok(coalesce((SELECT bool_or(p.reached <> n.reached OR p.won <> n.won)
                      FROM sales_kpi.stage_conversion('2025-01-01', '2025-04-01', 'company', '2025-05-15 12:00') p
                      JOIN sales_kpi.stage_conversion('2025-01-01', '2025-04-01', 'company', '2026-10-31 23:00') n
                     USING (pipeline_id, step)), false),
          'the past as_of sees a different history than now');
-- a won deal counts at every open stage; every stage row of a pipeline is present
SELECT is((SELECT count(*) FROM sales_kpi.stage_conversion('2026-07-01', '2026-10-01', 'company', '2026-10-31 23:00')),
          (SELECT count(*) FROM sales_kpi.stage WHERE kind = 'open'), 'one row per open stage of every pipeline');
SELECT ok((SELECT bool_and(f.won = w.won)
             FROM sales_kpi.stage_conversion('2026-07-01', '2026-10-01', 'company', '2026-10-31 23:00') f
             JOIN (SELECT pipeline_id, count(*) FILTER (WHERE outcome = 'won') AS won FROM ref_deal
                    WHERE as_of = '2026-10-31 23:00' AND created_at >= '2026-07-01' AND created_at < '2026-10-01'
                    GROUP BY 1) w USING (pipeline_id)), 'won deals count at every stage');

-- ---------------------------------------------------------------------------
-- funnel_rates: company and by source
-- ---------------------------------------------------------------------------
CREATE TEMP VIEW ref_closed AS
SELECT c.ps, c.pe, c.as_of, o.opportunity_id, o.source, e.kind AS outcome
  FROM cases c
  JOIN sales_kpi.opportunity o ON true
  JOIN LATERAL (SELECT DISTINCT ON (ev.opportunity_id) s.kind, ev.entered_at
                  FROM sales_kpi.stage_event ev JOIN sales_kpi.stage s USING (stage_id)
                 WHERE ev.opportunity_id = o.opportunity_id AND ev.entered_at <= c.as_of
                 ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e
    ON e.kind IN ('won', 'lost') AND e.entered_at >= c.ps AND e.entered_at < c.pe;

CREATE TEMP VIEW ref_rates AS
WITH q AS (
    SELECT rd.as_of, rd.opportunity_id, rd.ever_won OR rd.top_position >= p.qualified_position AS qop
      FROM ref_deal rd JOIN sales_kpi.pipeline p USING (pipeline_id)
), facts AS (
    SELECT c.as_of, dm.dimension, CASE dm.dimension WHEN 'company' THEN 'all' ELSE coalesce(l.source, '(none)') END AS value,
           1 AS lead, (l.converted_at <= c.as_of)::int AS conv,
           coalesce((l.converted_at <= c.as_of AND q.qop), false)::int AS qlead,
           0 AS opp, 0 AS qopp, NULL::boolean AS qwon, 0 AS won
      FROM cases c CROSS JOIN (VALUES ('company'), ('source')) dm(dimension)
      JOIN sales_kpi.lead l ON l.created_at >= c.ps AND l.created_at < c.pe AND l.created_at <= c.as_of
      LEFT JOIN q ON q.as_of = c.as_of AND q.opportunity_id = l.opportunity_id
    UNION ALL
    SELECT rd.as_of, dm.dimension, CASE dm.dimension WHEN 'company' THEN 'all' ELSE coalesce(rd.source, '(none)') END,
           0, 0, 0, 1, coalesce(q.qop, false)::int, NULL, 0
      FROM ref_deal rd CROSS JOIN (VALUES ('company'), ('source')) dm(dimension)
      JOIN q USING (as_of, opportunity_id)
     WHERE rd.created_at >= rd.ps AND rd.created_at < rd.pe
    UNION ALL
    SELECT rc.as_of, dm.dimension, CASE dm.dimension WHEN 'company' THEN 'all' ELSE coalesce(rc.source, '(none)') END,
           0, 0, 0, 0, 0, CASE WHEN q.qop THEN rc.outcome = 'won' END, (rc.outcome = 'won')::int
      FROM ref_closed rc CROSS JOIN (VALUES ('company'), ('source')) dm(dimension)
      JOIN q USING (as_of, opportunity_id)
), g AS (
    SELECT as_of, dimension, value, sum(lead) AS leads, sum(conv) AS conv, sum(qlead) AS qlead, sum(opp) AS opps,
           sum(qopp) AS qopps, count(*) FILTER (WHERE qwon) AS w, count(*) FILTER (WHERE NOT qwon) AS l, sum(won) AS won
      FROM facts GROUP BY 1, 2, 3
)
SELECT as_of, dimension, value, leads, conv, qlead, opps, qopps, w, l, won,
       round(conv::numeric / nullif(leads, 0), 6) AS r1, round(qlead::numeric / nullif(leads, 0), 6) AS r2,
       round(qopps::numeric / nullif(opps, 0), 6) AS r3, round(w::numeric / nullif(w + l, 0), 6) AS r4,
       -- Wilson 95%
       round(((w::numeric / nullif(w + l, 0) + 1.95996398454^2 / (2 * nullif(w + l, 0))
               - 1.95996398454 * sqrt(w::numeric * l / nullif(w + l, 0)^3 + 1.95996398454^2 / (4 * nullif(w + l, 0)^2)))
              / (1 + 1.95996398454^2 / nullif(w + l, 0)))::numeric, 4) AS lower,
       round((w + l)::numeric / nullif(won, 0), 6) AS per_win
  FROM g;

SELECT set_eq($$SELECT c.as_of, f.dimension, f.dimension_value, f.leads, f.converted_leads, f.qualified_leads, f.opps,
                       f.qualified_opps, f.qops_won, f.qops_lost, f.deals_won,
                       round(f.lead_to_opp_rate::numeric, 6) AS r1, round(f.lead_to_qop_rate::numeric, 6) AS r2,
                       round(f.opp_to_qop_rate::numeric, 6) AS r3, round(f.qop_win_rate::numeric, 6) AS r4,
                       round(f.qop_win_rate_lower::numeric, 4) AS lower, round(f.qops_per_win::numeric, 6) AS per_win
                  FROM cases c, (VALUES ('company'), ('source')) dm(dimension),
                       sales_kpi.funnel_rates(c.ps, c.pe, dm.dimension, c.as_of) f$$,
              'SELECT * FROM ref_rates',
              'funnel_rates: company and by source, now and in the past, agree with the reference');
SELECT ok((SELECT count(DISTINCT as_of) = 3 AND count(*) > 10 AND bool_and(leads > 0 OR value <> 'all')
                  AND sum(w) > 50 AND sum(qlead) > 20 FROM ref_rates),
          'the rates reference has leads, Qops and wins in every case');

-- ---------------------------------------------------------------------------
-- pipeline_creation: weekly company series and monthly by source
-- ---------------------------------------------------------------------------
CREATE TEMP VIEW ref_creation AS
SELECT c.as_of, g.grain, g.dimension,
       CASE g.dimension WHEN 'company' THEN 'all' ELSE coalesce(o.source, '(none)') END AS value,
       sales_kpi.period_start(o.created_at, g.grain) AS period_start,
       count(*) AS opps,
       sum(sales_kpi.to_base((SELECT h.amount FROM sales_kpi.opportunity_history h
                               WHERE h.opportunity_id = o.opportunity_id AND h.changed_at <= c.as_of
                               ORDER BY h.changed_at LIMIT 1), o.currency, o.created_at::date)) AS amount,
       count(*) FILTER (WHERE s.n >= 2) AS two_stage,
       count(*) FILTER (WHERE s.n >= 2 AND EXISTS (
             SELECT 1 FROM sales_kpi.stage_event e JOIN ref_stage rs USING (stage_id)
              WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= c.as_of
                AND (rs.rank >= 2 OR rs.kind = 'won'))) AS reached
  FROM cases c
 CROSS JOIN (VALUES ('week', 'company'), ('month', 'source')) g(grain, dimension)
  -- the periods of the grain overlapping [ps, pe), whole
  JOIN sales_kpi.opportunity o ON o.created_at >= sales_kpi.period_start(c.ps, g.grain)
                              AND o.created_at < sales_kpi.period_end(c.pe - interval '1 microsecond', g.grain)
                              AND o.created_at <= c.as_of
  JOIN (SELECT DISTINCT pipeline_id, n FROM ref_stage) s USING (pipeline_id)
 GROUP BY 1, 2, 3, 4, 5;

SELECT set_eq($$SELECT c.as_of, g.grain, f.dimension, f.dimension_value, f.period_start, f.opps, f.amount,
                       f.two_stage_opps, f.reached_second
                  FROM cases c, (VALUES ('week', 'company'), ('month', 'source')) g(grain, dimension),
                       sales_kpi.pipeline_creation(c.ps, c.pe, g.grain, g.dimension, c.as_of) f
                 WHERE f.opps > 0$$,
              'SELECT * FROM ref_creation',
              'pipeline_creation: weekly company and monthly by source agree with the reference');
SELECT ok((SELECT count(*) > 40 AND sum(reached) > 100 AND sum(reached) < sum(two_stage) FROM ref_creation),
          'the creation reference has weeks with reached and unreached deals');
SELECT ok((SELECT bool_and(f.stage_one_to_two_lower <= f.stage_one_to_two_rate AND f.stage_one_to_two_rate <= f.stage_one_to_two_upper
                           AND f.stage_one_to_two_rate = f.reached_second::float8 / f.two_stage_opps)
             FROM sales_kpi.pipeline_creation('2026-01-01', '2026-10-01', 'week', 'company', '2026-10-31 23:00') f
            WHERE f.two_stage_opps > 0), 'the 1 -> 2 rate is reached / two-stage opps, inside its interval');

-- ---------------------------------------------------------------------------
-- loss_stage: company (stage, lost_reason and competitor rows) and by source
-- ---------------------------------------------------------------------------
CREATE TEMP VIEW ref_loss AS
WITH l AS (
    SELECT rc.as_of, rc.opportunity_id, o.pipeline_id, o.source, coalesce(o.lost_reason, '(none)') AS reason,
           coalesce(o.competitor, '(none)') AS rival, ls.stage_id
      FROM ref_closed rc
      JOIN sales_kpi.opportunity o USING (opportunity_id)
      JOIN LATERAL (SELECT DISTINCT ON (e.opportunity_id) e.entered_at
                      FROM sales_kpi.stage_event e
                     WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= rc.as_of
                     ORDER BY e.opportunity_id, e.entered_at DESC, e.stage_event_id DESC) lost ON true
      LEFT JOIN LATERAL (SELECT DISTINCT ON (e.opportunity_id) e.stage_id
                           FROM sales_kpi.stage_event e JOIN sales_kpi.stage s USING (stage_id)
                          WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= lost.entered_at AND s.kind = 'open'
                          ORDER BY e.opportunity_id, e.entered_at DESC, e.stage_event_id DESC) ls ON true
     WHERE rc.outcome = 'lost'
)
SELECT as_of, 'company' AS dimension, 'all' AS value, pipeline_id, stage_id, 'stage' AS breakdown, NULL AS item, count(*) AS deals
  FROM l GROUP BY 1, 4, 5
UNION ALL
SELECT as_of, 'company', 'all', pipeline_id, stage_id, 'lost_reason', reason, count(*) FROM l GROUP BY 1, 4, 5, 7
UNION ALL
SELECT as_of, 'company', 'all', pipeline_id, stage_id, 'competitor', rival, count(*) FROM l GROUP BY 1, 4, 5, 7
UNION ALL
SELECT as_of, 'source', coalesce(source, '(none)'), pipeline_id, stage_id, 'stage', NULL, count(*) FROM l GROUP BY 1, 3, 4, 5;

SELECT set_eq($$SELECT c.as_of, f.dimension, f.dimension_value, f.pipeline_id, f.stage_id, f.breakdown,
                       coalesce(f.lost_reason, f.competitor) AS item, f.deals
                  FROM cases c, (VALUES ('company'), ('source')) dm(dimension),
                       sales_kpi.loss_stage(c.ps, c.pe, dm.dimension, c.as_of) f
                 WHERE dm.dimension = 'company' OR f.breakdown = 'stage'$$,
              'SELECT * FROM ref_loss',
              'loss_stage: stage, reason and competitor rows, and by source, agree with the reference');
SELECT ok((SELECT count(DISTINCT as_of) = 3 AND count(DISTINCT stage_id) > 5 AND sum(deals) FILTER (WHERE breakdown = 'stage') > 200
             FROM ref_loss), 'the loss reference covers many stages in every case');
SELECT ok((SELECT bool_and(abs(f.amount - x.amount) < 0.000001)
             FROM (SELECT stage_id, sum(amount) AS amount FROM sales_kpi.loss_stage('2026-07-01', '2026-10-01', 'company', '2026-10-31 23:00')
                    WHERE breakdown = 'lost_reason' GROUP BY 1) f
             JOIN (SELECT stage_id, amount FROM sales_kpi.loss_stage('2026-07-01', '2026-10-01', 'company', '2026-10-31 23:00')
                    WHERE breakdown = 'stage') x USING (stage_id)), 'reason rows add up to their stage row');

-- ---------------------------------------------------------------------------
-- conversion_alerts: 8 trailing weeks, 21-day horizon, company and by source
-- ---------------------------------------------------------------------------
CREATE TEMP VIEW ref_alerts AS
WITH b AS (
    SELECT a.as_of, '21 days'::interval AS h, 8 AS weeks,
           sales_kpi.period_start(a.as_of - interval '21 days', 'week') AS latest_end
      FROM (VALUES (timestamptz '2026-10-31 23:00'), ('2025-05-15 12:00')) a(as_of)
), entries AS (
    -- every entry into an open stage in the weeks read is one trial
    SELECT b.as_of, e.opportunity_id, s.pipeline_id, s.rank, o.source,
           sales_kpi.period_start(e.entered_at, 'week') AS week,
           EXISTS (SELECT 1 FROM sales_kpi.stage_event e2 JOIN ref_stage s2 USING (stage_id)
                    WHERE e2.opportunity_id = e.opportunity_id
                      AND e2.entered_at BETWEEN e.entered_at AND e.entered_at + b.h
                      AND (s2.rank > s.rank OR s2.kind = 'won')) AS conv,
           b.latest_end
      FROM b
      JOIN sales_kpi.stage_event e ON e.entered_at >= b.latest_end - (b.weeks + 1) * interval '7 days'
                                  AND e.entered_at < b.latest_end
      JOIN ref_stage s ON s.stage_id = e.stage_id AND s.kind = 'open'
      JOIN sales_kpi.opportunity o ON o.opportunity_id = e.opportunity_id
), x AS (
    SELECT en.as_of, dm.dimension, CASE dm.dimension WHEN 'company' THEN 'all' ELSE coalesce(en.source, '(none)') END AS value,
           en.pipeline_id, en.rank,
           count(*) FILTER (WHERE en.week = en.latest_end - interval '7 days') AS n,
           count(*) FILTER (WHERE en.week = en.latest_end - interval '7 days' AND en.conv) AS c,
           count(*) FILTER (WHERE en.week < en.latest_end - interval '7 days') AS bn,
           count(*) FILTER (WHERE en.week < en.latest_end - interval '7 days' AND en.conv) AS bc
      FROM entries en CROSS JOIN (VALUES ('company'), ('source')) dm(dimension)
     GROUP BY 1, 2, 3, 4, 5
)
SELECT as_of, dimension, value, pipeline_id, rank, n, c, bn, bc,
       CASE WHEN n > 0 AND bn > 0 THEN
            CASE WHEN c::float8 / n > least(1, bc::float8 / bn + 3 * sqrt((bc::float8 / bn) * (1 - bc::float8 / bn) / n)) THEN 'above'
                 WHEN c::float8 / n < greatest(0, bc::float8 / bn - 3 * sqrt((bc::float8 / bn) * (1 - bc::float8 / bn) / n)) THEN 'below' END
       END AS alert
  FROM x;

SELECT set_eq($$SELECT a.as_of, dm.dimension, f.dimension_value, f.pipeline_id,
                       (SELECT rank FROM ref_stage WHERE stage_id = f.stage_id) AS rank, f.entered, f.converted,
                       f.baseline_entered, coalesce(round(f.baseline_rate * f.baseline_entered), 0) AS bc, f.alert
                  FROM (VALUES (timestamptz '2026-10-31 23:00'), ('2025-05-15 12:00')) a(as_of),
                       (VALUES ('company'), ('source')) dm(dimension),
                       sales_kpi.conversion_alerts(a.as_of, dm.dimension, 8, '21 days') f$$,
              $$SELECT as_of, dimension, value, pipeline_id, rank, n, c, bn, bc::float8, alert FROM ref_alerts$$,
              'conversion_alerts: cohorts, baselines and flags agree with the reference');
SELECT ok((SELECT count(DISTINCT as_of) = 2 AND sum(n) > 50 AND sum(bn) > 400 AND count(*) > 30 FROM ref_alerts),
          'the alerts reference has entries in the latest and the trailing weeks');
SELECT ok((SELECT bool_and(f.control_lower <= f.baseline_rate AND f.baseline_rate <= f.control_upper
                           AND (f.alert IS NULL) = (f.conversion_rate BETWEEN f.control_lower AND f.control_upper))
             FROM sales_kpi.conversion_alerts('2026-10-31 23:00', 'source', 8, '21 days') f
            WHERE f.entered > 0 AND f.baseline_entered > 0), 'limits bracket the baseline; alert iff outside');

-- ---------------------------------------------------------------------------
-- the views are the functions with their defaults
-- ---------------------------------------------------------------------------
SELECT set_eq('SELECT * FROM sales_kpi.loss_stage', 'SELECT * FROM sales_kpi.loss_stage()', 'view loss_stage = loss_stage()');
SELECT set_eq('SELECT * FROM sales_kpi.stage_conversion', 'SELECT * FROM sales_kpi.stage_conversion()',
              'view stage_conversion = stage_conversion()');

SELECT * FROM finish();
ROLLBACK;
