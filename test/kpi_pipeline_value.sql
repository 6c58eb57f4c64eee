-- Pipeline value and forecast KPIs on demo data against independent plain-SQL
-- formulations: the state at each instant is rebuilt with DISTINCT ON over the
-- histories, rates are looked up in fx_rate directly, stays are paired with a
-- correlated "next event" sub-query and the historical shares are counted per
-- deal, at three instants (two in the past) and with breakdowns.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(21);
SET LOCAL TimeZone = 'UTC';
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 5, '2026-10-31', replace => true)$$, 'demo data loads');

CREATE TEMP TABLE at_list (at) AS
VALUES (timestamptz '2025-09-15 08:30+00'), ('2026-03-01 00:00+00'), ('2026-10-31 12:00+00');

-- the rate of a currency on a day, straight from fx_rate
CREATE FUNCTION pg_temp.rate(cur text, d date) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN cur = 'USD' THEN 1
                ELSE (SELECT f.rate FROM sales_kpi.fx_rate f WHERE f.currency = cur AND f.valid_from <= d
                       ORDER BY f.valid_from DESC LIMIT 1) END
$$;

-- every deal open at each instant, rebuilt from the histories
CREATE TEMP TABLE ref_open AS
SELECT a.at, o.opportunity_id, o.pipeline_id, e.stage_id, e.entered_at, s.position, s.probability,
       h.owner_id, h.expected_close, coalesce(h.forecast_category, s.forecast_category) AS category,
       h.amount * pg_temp.rate(o.currency, a.at::date) AS amount,
       floor(extract(epoch FROM a.at - e.entered_at) / 86400)::int AS days
  FROM at_list a
  JOIN LATERAL (SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id, ev.entered_at
                  FROM sales_kpi.stage_event ev WHERE ev.entered_at <= a.at
                 ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e ON true
  JOIN LATERAL (SELECT DISTINCT ON (hi.opportunity_id) hi.*
                  FROM sales_kpi.opportunity_history hi WHERE hi.changed_at <= a.at
                 ORDER BY hi.opportunity_id, hi.changed_at DESC) h ON h.opportunity_id = e.opportunity_id
  JOIN sales_kpi.opportunity o ON o.opportunity_id = e.opportunity_id AND o.created_at <= a.at
  JOIN sales_kpi.stage s ON s.stage_id = e.stage_id AND s.kind = 'open';

-- milestone weighting: p moves toward the next open stage (or 1 after the last one),
-- rounded to 6 decimals
CREATE TEMP TABLE ref_milestone AS
SELECT r.at, r.opportunity_id, x.req, x.done,
       CASE WHEN x.req = 0 THEN r.probability
            ELSE round(r.probability * (x.req - x.done) / x.req + x.next_p * x.done / x.req, 6) END AS p
  FROM ref_open r
  CROSS JOIN LATERAL (
        SELECT (SELECT count(*) FROM sales_kpi.milestone m WHERE m.stage_id = r.stage_id AND m.required) AS req,
               (SELECT count(*) FROM sales_kpi.milestone m
                  JOIN sales_kpi.milestone_event me ON me.milestone_id = m.milestone_id
                 WHERE m.stage_id = r.stage_id AND m.required AND me.opportunity_id = r.opportunity_id
                   AND me.completed_at <= r.at) AS done,
               coalesce((SELECT n.probability FROM sales_kpi.stage n
                          WHERE n.pipeline_id = r.pipeline_id AND n.kind = 'open'
                            AND n.position = (SELECT min(n2.position) FROM sales_kpi.stage n2
                                               WHERE n2.pipeline_id = r.pipeline_id AND n2.kind = 'open'
                                                 AND n2.position > r.position)), 1) AS next_p) x;

-- historical weighting: the deals whose state at the instant is a close inside the year before it,
-- their stays (each event to the next one) and each deal's longest stay per stage in whole days
CREATE TEMP TABLE ref_sample AS
SELECT a.at, e.opportunity_id, s.kind = 'won' AS won
  FROM at_list a
  JOIN LATERAL (SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id, ev.entered_at
                  FROM sales_kpi.stage_event ev WHERE ev.entered_at <= a.at
                 ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e ON true
  JOIN sales_kpi.stage s ON s.stage_id = e.stage_id AND s.kind IN ('won', 'lost')
 WHERE e.entered_at >= a.at - interval '365 days' AND e.entered_at < a.at;
CREATE TEMP TABLE ref_longest AS
SELECT sd.at, sd.opportunity_id, sd.won, ev.stage_id,
       floor(max(extract(epoch FROM (SELECT min(nx.entered_at) FROM sales_kpi.stage_event nx
                                       WHERE nx.opportunity_id = ev.opportunity_id AND nx.entered_at <= sd.at
                                         AND (nx.entered_at, nx.stage_event_id) > (ev.entered_at, ev.stage_event_id))
                                - ev.entered_at)) / 86400)::int AS days
  FROM ref_sample sd
  JOIN sales_kpi.stage_event ev ON ev.opportunity_id = sd.opportunity_id AND ev.entered_at <= sd.at
  JOIN sales_kpi.stage s ON s.stage_id = ev.stage_id AND s.kind = 'open'
 GROUP BY 1, 2, 3, 4;
CREATE INDEX ON ref_longest (at, stage_id, days);
CREATE TEMP TABLE ref_historical AS
SELECT r.at, r.opportunity_id, x.n, x.w,
       CASE WHEN x.n >= 5 THEN round(x.w::numeric / x.n, 6) ELSE r.probability END AS p
  FROM ref_open r
  CROSS JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE l.won) AS w
                        FROM ref_longest l
                       WHERE l.at = r.at AND l.stage_id = r.stage_id AND l.days >= r.days) x;

SELECT ok(coalesce((SELECT count(DISTINCT at) = 3 AND min(c) > 50
                      FROM (SELECT at, count(*) AS c FROM ref_open GROUP BY at) x), false),
          'the reference has open deals at all three instants');
SELECT ok(coalesce((SELECT count(*) FILTER (WHERE x.n >= 5 AND x.p <> r.probability::float8) > 20
                      FROM ref_historical x JOIN ref_open r USING (at, opportunity_id)), false)
          AND coalesce((SELECT count(*) FILTER (WHERE done > 0 AND req > 0) > 20 FROM ref_milestone), false),
          'historical and milestone probabilities differ from the stage probability for many deals');

-- 1. stage pipeline value, whole company, every open stage
SELECT set_eq(
    $$SELECT a.at AS c1, v.stage_id AS c2, v.deals AS c3, round(v.amount, 4) AS c4, round(v.weighted_amount, 4) AS c5 FROM at_list a, sales_kpi.stage_pipeline_value(a.at) v$$,
    $$SELECT a.at AS c1, s.stage_id AS c2, count(r.opportunity_id) AS c3, round(coalesce(sum(r.amount), 0), 4) AS c4, round(coalesce(sum(r.amount * s.probability), 0), 4) AS c5 FROM at_list a CROSS JOIN sales_kpi.stage s
        LEFT JOIN ref_open r ON r.at = a.at AND r.stage_id = s.stage_id
       WHERE s.kind = 'open' GROUP BY 1, 2$$,
    'stage_pipeline_value at three instants: count, amount and weighted amount per open stage');
-- 2. ... by team of the owner at the instant
SELECT set_eq(
    $$SELECT v.dimension_value AS c1, v.stage_id AS c2, v.deals AS c3, round(v.amount, 4) AS c4 FROM sales_kpi.stage_pipeline_value('2025-09-15 08:30+00', 'team') v WHERE v.deals > 0$$,
    $$SELECT coalesce(rp.team, '(none)') AS c1, r.stage_id AS c2, count(*) AS c3, round(sum(r.amount), 4) AS c4 FROM ref_open r LEFT JOIN sales_kpi.rep rp ON rp.rep_id = r.owner_id
       WHERE r.at = '2025-09-15 08:30+00' GROUP BY 1, 2$$,
    'stage_pipeline_value by team, in the past');

-- 3. deal probabilities
SELECT set_eq(
    $$SELECT a.at AS c1, d.opportunity_id AS c2, d.stage_id AS c3, d.owner_id AS c4, round(d.amount, 4) AS c5, d.stage_probability AS c6, d.milestones_done AS c7, d.milestones_required AS c8, round(d.milestone_probability::float8::numeric, 6) AS c9 FROM at_list a, sales_kpi.deal_probability(a.at, '365 days', 5) d$$,
    $$SELECT r.at AS c1, r.opportunity_id AS c2, r.stage_id AS c3, r.owner_id AS c4, round(r.amount, 4) AS c5, r.probability AS c6, m.done::int AS c7, m.req::int AS c8, round(m.p::numeric, 6) AS c9 FROM ref_open r JOIN ref_milestone m USING (at, opportunity_id)$$,
    'deal_probability: each open deal with its stage and milestone probability');
SELECT set_eq(
    $$SELECT a.at AS c1, d.opportunity_id AS c2, d.historical_deals AS c3, d.historical_won AS c4, round(d.historical_probability::float8::numeric, 6) AS c5 FROM at_list a, sales_kpi.deal_probability(a.at, '365 days', 5) d$$,
    $$SELECT at AS c1, opportunity_id AS c2, n AS c3, w AS c4, round(p::numeric, 6) AS c5 FROM ref_historical$$,
    'deal_probability: historical probability from the deals closed in the year before');

-- on big tables the sample is every k-th deal id, k = ceil(max id / sample_ids): here k = 3
SELECT set_eq(
    $$SELECT d.opportunity_id AS c1, d.historical_deals AS c2, d.historical_won AS c3,
             d.historical_probability AS c4
        FROM sales_kpi_internal.pipeline_value_open_deals('2026-03-01', '365 days', 5, false, true, 1000) d$$,
    $$SELECT r.opportunity_id AS c1, x.n AS c2, x.w AS c3,
             CASE WHEN x.n >= 5 THEN round(x.w::numeric / x.n, 6) ELSE r.probability END AS c4
        FROM ref_open r
        CROSS JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE l.won) AS w
                              FROM ref_longest l
                             WHERE l.at = r.at AND l.stage_id = r.stage_id AND l.days >= r.days
                               AND l.opportunity_id % 3 = 0) x
       WHERE r.at = '2026-03-01'$$,
    'historical probability from every third deal id when the table is sampled');

-- 4. weighted pipeline value per pipeline under each weighting
SELECT set_eq(
    $$SELECT w.weighting AS c1, v.dimension_value AS c2, v.deals AS c3, round(v.amount, 4) AS c4, round(v.weighted_amount, 4) AS c5 FROM (VALUES ('stage'), ('milestone'), ('historical')) w(weighting),
             sales_kpi.weighted_pipeline_value('2026-03-01', 'pipeline', w.weighting, '365 days', 5) v$$,
    $$SELECT w.weighting AS c1, p.name AS c2, count(*) AS c3, round(sum(r.amount), 4) AS c4, round(sum(r.amount * CASE w.weighting WHEN 'stage' THEN r.probability
                                                    WHEN 'milestone' THEN m.p::numeric
                                                    ELSE h.p::numeric END), 4) AS c5 FROM (VALUES ('stage'), ('milestone'), ('historical')) w(weighting)
        CROSS JOIN ref_open r
        JOIN ref_milestone m USING (at, opportunity_id)
        JOIN ref_historical h USING (at, opportunity_id)
        JOIN sales_kpi.pipeline p ON p.pipeline_id = r.pipeline_id
       WHERE r.at = '2026-03-01' GROUP BY 1, 2$$,
    'weighted_pipeline_value by pipeline, three weightings');

-- bookings of a period as the history stood at an instant: the deal's state then is a won
-- close inside the period, credited to the owner at the close, amount known then at the close-date rate
CREATE FUNCTION pg_temp.ref_bookings(lo timestamptz, hi timestamptz, at timestamptz)
RETURNS TABLE (opportunity_id bigint, owner_id bigint, amount numeric) LANGUAGE sql STABLE AS $$
    SELECT e.opportunity_id, w.owner_id, h.amount * pg_temp.rate(o.currency, e.entered_at::date)
      FROM (SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id, ev.entered_at
              FROM sales_kpi.stage_event ev WHERE ev.entered_at <= at
             ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e
      JOIN sales_kpi.stage s ON s.stage_id = e.stage_id AND s.kind = 'won'
      JOIN sales_kpi.opportunity o ON o.opportunity_id = e.opportunity_id
      JOIN LATERAL (SELECT hi.owner_id FROM sales_kpi.opportunity_history hi
                     WHERE hi.opportunity_id = e.opportunity_id AND hi.changed_at <= e.entered_at
                     ORDER BY hi.changed_at DESC LIMIT 1) w ON true
      JOIN LATERAL (SELECT hi.amount FROM sales_kpi.opportunity_history hi
                     WHERE hi.opportunity_id = e.opportunity_id AND hi.changed_at <= at
                     ORDER BY hi.changed_at DESC LIMIT 1) h ON true
     WHERE e.entered_at >= lo AND e.entered_at < hi
$$;
-- quota of each rep for a period of whole days: quota rows prorated by the days inside it
CREATE FUNCTION pg_temp.ref_quota(lo date, hi date) RETURNS TABLE (rep_id bigint, quota numeric)
LANGUAGE sql STABLE AS $$
    SELECT q.rep_id, sum(q.amount * (least(q.period_end, hi) - greatest(q.period_start, lo))
                         / (q.period_end - q.period_start))
      FROM sales_kpi.quota q WHERE q.period_start < hi AND q.period_end > lo GROUP BY q.rep_id
$$;

-- the Q1 2026 parts per rep as of 2026-03-01
CREATE TEMP TABLE ref_q1_rep AS
WITH pipe AS (
    SELECT rp.name AS rep, count(*) AS deals, sum(r.amount) AS amount,
           sum(r.amount * r.probability) AS stage_w, sum(r.amount * m.p::numeric) AS milestone_w,
           sum(r.amount * h.p::numeric) AS historical_w,
           sum(r.amount) FILTER (WHERE r.category = 'closed') AS closed_c,
           sum(r.amount) FILTER (WHERE r.category = 'commit') AS commit_c,
           sum(r.amount) FILTER (WHERE r.category = 'best_case') AS best_c,
           sum(r.amount) FILTER (WHERE r.category = 'pipeline') AS pipeline_c
      FROM ref_open r
      JOIN ref_milestone m USING (at, opportunity_id)
      JOIN ref_historical h USING (at, opportunity_id)
      JOIN sales_kpi.rep rp ON rp.rep_id = r.owner_id
     WHERE r.at = '2026-03-01' AND r.expected_close >= '2026-01-01' AND r.expected_close < '2026-04-01'
     GROUP BY 1
), booked AS (
    SELECT rp.name AS rep, sum(b.amount) AS bookings
      FROM pg_temp.ref_bookings('2026-01-01', '2026-04-01', '2026-03-01') b
      JOIN sales_kpi.rep rp ON rp.rep_id = b.owner_id GROUP BY 1
), quota AS (
    SELECT rp.name AS rep, sum(q.quota) AS quota
      FROM pg_temp.ref_quota('2026-01-01', '2026-04-01') q JOIN sales_kpi.rep rp USING (rep_id) GROUP BY 1
)
SELECT rep, coalesce(p.deals, 0) AS deals, coalesce(p.amount, 0) AS amount, coalesce(b.bookings, 0) AS bookings,
       q.quota, coalesce(p.stage_w, 0) AS stage_w, coalesce(p.milestone_w, 0) AS milestone_w,
       coalesce(p.historical_w, 0) AS historical_w, coalesce(p.closed_c, 0) AS closed_c,
       coalesce(p.commit_c, 0) AS commit_c, coalesce(p.best_c, 0) AS best_c, coalesce(p.pipeline_c, 0) AS pipeline_c
  FROM pipe p FULL JOIN booked b USING (rep) FULL JOIN quota q USING (rep);

SELECT ok(coalesce((SELECT count(*) FILTER (WHERE quota IS NOT NULL AND bookings > 0 AND deals > 0) >= 5
                      FROM ref_q1_rep), false),
          'Q1 2026 as of 2026-03-01: several reps with quota, bookings and pipeline');

-- 5. pipeline coverage per rep
SELECT set_eq(
    $$SELECT c.dimension_value AS c1, c.pipeline_deals AS c2, round(c.pipeline_amount, 4) AS c3, round(c.quota, 4) AS c4, round(c.bookings, 4) AS c5, round(c.coverage::numeric, 8) AS c6 FROM sales_kpi.pipeline_coverage('2026-01-01', '2026-04-01', 'rep', '2026-03-01') c$$,
    $$SELECT rep AS c1, deals AS c2, round(amount, 4) AS c3, round(quota, 4) AS c4, round(bookings, 4) AS c5, round(CASE WHEN quota - bookings > 0 THEN amount / (quota - bookings) END, 8) AS c6 FROM ref_q1_rep$$,
    'pipeline_coverage per rep: pipeline expected in the quarter / (quota - bookings)');
-- 6. pace per rep under the milestone weighting
SELECT set_eq(
    $$SELECT p.dimension_value AS c1, round(p.bookings, 4) AS c2, round(p.quota, 4) AS c3, round(p.elapsed_share::numeric, 10) AS c4, round(p.pace::numeric, 8) AS c5, round(p.projected, 4) AS c6, round(p.gap, 4) AS c7 FROM sales_kpi.quota_pace('2026-01-01', '2026-04-01', 'rep', '2026-03-01', 'milestone') p$$,
    $$SELECT rep AS c1, round(bookings, 4) AS c2, round(quota, 4) AS c3, round(59.0 / 90, 10) AS c4, round((bookings / nullif(quota * 59 / 90, 0))::numeric, 8) AS c5, round(bookings + milestone_w, 4) AS c6, round(quota - bookings - milestone_w, 4) AS c7 FROM ref_q1_rep$$,
    'quota_pace per rep: bookings, quota, elapsed share, pace, projected and gap');
-- 7. forecast per rep, and for the company
SELECT set_eq(
    $$SELECT f.dimension_value AS c1, round(f.bookings, 4) AS c2, f.open_deals AS c3, round(f.stage_forecast, 4) AS c4, round(f.milestone_forecast, 4) AS c5, round(f.historical_forecast, 4) AS c6, round(f.forecast_lower, 4) AS c7, round(f.forecast_upper, 4) AS c8, round(f.closed, 4) AS c9, round(f.commit, 4) AS c10, round(f.best_case, 4) AS c11, round(f.pipeline, 4) AS c12 FROM sales_kpi.forecast('2026-01-01', '2026-04-01', 'rep', '2026-03-01', '365 days', 5) f$$,
    $$SELECT rep AS c1, round(bookings, 4) AS c2, deals AS c3, round(bookings + stage_w, 4) AS c4, round(bookings + milestone_w, 4) AS c5, round(bookings + historical_w, 4) AS c6, round(bookings + least(stage_w, historical_w), 4) AS c7, round(bookings + greatest(stage_w, historical_w), 4) AS c8, round(bookings + closed_c, 4) AS c9, round(bookings + closed_c + commit_c, 4) AS c10, round(bookings + closed_c + commit_c + best_c, 4) AS c11, round(bookings + closed_c + commit_c + best_c + pipeline_c, 4) AS c12 FROM ref_q1_rep$$,
    'forecast per rep: closed won + weighted pipeline, range, category roll-ups');
SELECT set_eq(
    $$SELECT round(f.bookings, 4) AS c1, f.open_deals AS c2, round(f.stage_forecast, 4) AS c3, round(f.historical_forecast, 4) AS c4 FROM sales_kpi.forecast('2026-01-01', '2026-04-01', 'company', '2026-03-01', '365 days', 5) f$$,
    $$SELECT round(sum(bookings), 4) AS c1, sum(deals)::bigint AS c2, round(sum(bookings + stage_w), 4) AS c3, round(sum(bookings + historical_w), 4) AS c4 FROM ref_q1_rep$$,
    'forecast for the company is the sum over reps');

-- 8. now: the current quarter from the deals' current rows
SELECT set_eq(
    $$SELECT round(c.pipeline_amount, 4) AS c1, c.pipeline_deals AS c2 FROM sales_kpi.pipeline_coverage('2026-10-01', '2027-01-01', 'company', '2026-11-15') c$$,
    $$SELECT round(coalesce(sum(o.amount * pg_temp.rate(o.currency, '2026-11-15')), 0), 4) AS c1, count(*) AS c2 FROM sales_kpi.opportunity o
       WHERE o.closed_at IS NULL AND o.stage_id IS NOT NULL
         AND o.expected_close >= '2026-10-01' AND o.expected_close < '2027-01-01'$$,
    'pipeline_coverage of the current quarter: the open deals'' current rows');
SELECT set_eq(
    $$SELECT round(q.bookings, 4) AS c1, round(q.quota, 4) AS c2 FROM sales_kpi.quota_pace('2026-10-01', '2027-01-01', 'company', '2026-11-15') q$$,
    $$SELECT round(coalesce(sum(o.amount * pg_temp.rate(o.currency, o.closed_at::date)), 0), 4) AS c1, (SELECT round(sum(quota), 4) FROM pg_temp.ref_quota('2026-10-01', '2027-01-01')) AS c2 FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind = 'won'
       WHERE o.closed_at >= '2026-10-01' AND o.closed_at < '2026-11-15'$$,
    'quota_pace of the current quarter: won amount so far and the quota');

-- 9. breakdown rows add up to the company row
SELECT is((SELECT round(sum(weighted_amount), 6) FROM sales_kpi.weighted_pipeline_value('2025-09-15 08:30+00', 'segment', 'historical', '365 days', 5)),
          (SELECT round(weighted_amount, 6) FROM sales_kpi.weighted_pipeline_value('2025-09-15 08:30+00', 'company', 'historical', '365 days', 5)),
          'weighted pipeline by segment adds up to the company');
SELECT is((SELECT sum(deals)::bigint FROM sales_kpi.stage_pipeline_value('2026-10-31 12:00+00', 'region')),
          (SELECT count(*) FROM ref_open WHERE at = '2026-10-31 12:00+00'),
          'stage pipeline by region counts every open deal once');
SELECT is((SELECT count(*) FROM sales_kpi.deal_probability), (SELECT count(*) FROM sales_kpi.opportunity WHERE closed_at IS NULL AND stage_id IS NOT NULL),
          'the deal_probability view lists every open deal');

-- Amounts converted at rates of many decimals: open JPY deals with cents at
-- a rate of 8 decimals (10 in the base currency), weighted by computed
-- probabilities.  Those are rounded to 6 decimals, so the exact weighted
-- sums keep room for their integer digits; with 20 decimals (a division),
-- the sums below needed more than 38 digits and failed with 22003.
INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate) VALUES ('JPY', '2026-10-30', 0.00675432);
UPDATE sales_kpi.opportunity SET amount = amount * 1000 + 0.37
 WHERE currency = 'JPY' AND closed_at IS NULL AND stage_id IS NOT NULL;
SELECT lives_ok($$SELECT * FROM sales_kpi.weighted_pipeline_value(weighting => 'historical', min_sample => 5);
                  SELECT * FROM sales_kpi.forecast('2026-10-01', '2027-10-01', min_sample => 5)$$,
                'weighted pipeline and forecast answer for JPY amounts with cents at a rate of 8 decimals');
SELECT ok((SELECT bool_and(historical_probability = round(historical_probability, 6)
                           AND milestone_probability = round(milestone_probability, 6))
             FROM sales_kpi.deal_probability(min_sample => 5)),
          'computed probabilities have at most 6 decimals');

SELECT * FROM finish();
ROLLBACK;
