-- rep_timeline, rep_volatility, last_minute_share and org_attainment on demo
-- data, each against an independent plain-SQL formulation written here
-- (closed deals rebuilt with DISTINCT ON over the histories, months cut with
-- date_trunc in UTC, MRR movements from a dense month grid), at the present
-- and at past instants, for the whole company and by a breakdown.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SET LOCAL TimeZone = 'UTC';
SELECT plan(16);
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 29, '2026-10-31', replace => true)$$, 'demo data loads');

CREATE TEMP TABLE instants (as_of timestamptz);
INSERT INTO instants VALUES ('2026-10-31 23:00+00'), ('2025-08-17 12:00+00');

-- deals closed as the history stood at each instant: the newest event not
-- after it is won or lost; owner at the close, amount known at the instant
CREATE TEMP TABLE ref_closed AS
SELECT i.as_of, e.opportunity_id, e.entered_at AS closed_at, s.kind AS outcome, o.created_at,
       o.kind AS deal_kind, o.account_id,
       coalesce((SELECT h.owner_id FROM sales_kpi.opportunity_history h
                  WHERE h.opportunity_id = e.opportunity_id AND h.changed_at <= e.entered_at
                  ORDER BY h.changed_at DESC LIMIT 1), o.owner_id) AS owner_id,
       sales_kpi.to_base(coalesce((SELECT h.amount FROM sales_kpi.opportunity_history h
                                    WHERE h.opportunity_id = e.opportunity_id AND h.changed_at <= i.as_of
                                    ORDER BY h.changed_at DESC LIMIT 1), o.amount),
                         o.currency, e.entered_at::date) AS amount_base
  FROM instants i
  JOIN LATERAL (SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id, ev.entered_at
                  FROM sales_kpi.stage_event ev
                 WHERE ev.entered_at <= i.as_of
                 ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC) e ON true
  JOIN sales_kpi.stage s ON s.stage_id = e.stage_id AND s.kind IN ('won', 'lost')
  JOIN sales_kpi.opportunity o ON o.opportunity_id = e.opportunity_id;
SELECT ok((SELECT count(DISTINCT as_of) = 2 AND count(*) > 1000 FROM ref_closed), 'the reference has closed deals at both instants');

-- rep_timeline by rep, monthly from 2025-01 to 2026-11
CREATE TEMP TABLE ref_timeline AS
WITH c AS (
    SELECT c.as_of, date_trunc('month', c.closed_at) AS ps, r.name AS rep, r.team,
           count(*) FILTER (WHERE c.outcome = 'won') AS won,
           count(*) FILTER (WHERE c.outcome = 'lost') AS lost,
           coalesce(sum(c.amount_base) FILTER (WHERE c.outcome = 'won'), 0) AS bookings,
           avg(extract(epoch FROM c.closed_at - c.created_at) / 86400) FILTER (WHERE c.outcome = 'won') AS cycle
      FROM ref_closed c JOIN sales_kpi.rep r ON r.rep_id = c.owner_id
     WHERE c.closed_at >= '2025-01-01' AND c.closed_at < '2026-11-01'
     GROUP BY 1, 2, 3, 4
), a AS (
    SELECT i.as_of, date_trunc('month', a.occurred_at) AS ps, r.name AS rep, r.team, count(*) AS n
      FROM instants i
      JOIN sales_kpi.activity a ON a.occurred_at <= i.as_of
       AND a.occurred_at >= '2025-01-01' AND a.occurred_at < '2026-11-01'
      JOIN sales_kpi.rep r ON r.rep_id = a.rep_id
     GROUP BY 1, 2, 3, 4
)
SELECT coalesce(c.as_of, a.as_of) AS as_of, coalesce(c.ps, a.ps) AS ps, coalesce(c.rep, a.rep) AS rep,
       coalesce(c.team, a.team) AS team, coalesce(c.bookings, 0) AS bookings,
       coalesce(c.won, 0) AS won, coalesce(c.lost, 0) AS lost,
       c.won::float8 / nullif(c.won + c.lost, 0) AS win_rate, c.cycle::float8 AS cycle,
       coalesce(a.n, 0) AS activities
  FROM c FULL JOIN a ON a.as_of = c.as_of AND a.ps = c.ps AND a.rep = c.rep;

SELECT set_eq(
    $$SELECT i.as_of, t.period_start, t.dimension_value, t.peer_group, round(t.bookings, 4) AS b, t.won, t.lost,
             round(t.win_rate::numeric, 9) AS w, round(t.mean_cycle_days::numeric, 6) AS c, t.activities
        FROM instants i, sales_kpi.rep_timeline('2025-01-01', '2026-11-01', 'month', 'rep', i.as_of) t$$,
    $$SELECT as_of, ps, rep, team, round(bookings, 4) AS b, won, lost, round(win_rate::numeric, 9) AS w,
             round(cycle::numeric, 6) AS c, activities FROM ref_timeline$$,
    'rep_timeline: bookings, won, lost, win rate, cycle and activities per rep and month agree, now and in the past');
SELECT ok((SELECT count(DISTINCT as_of) = 2 AND count(*) > 200 FROM ref_timeline), 'the timeline reference is not empty');

-- percentile ranks: (number of team peers with a lower value) / (peers - 1)
SELECT is((SELECT count(*)
             FROM instants i, sales_kpi.rep_timeline('2025-01-01', '2026-11-01', 'month', 'rep', i.as_of) t
            WHERE t.bookings_percentile IS DISTINCT FROM
                  (SELECT CASE WHEN count(*) = 1 THEN 0
                               ELSE (count(*) FILTER (WHERE r.bookings < t.bookings))::float8 / (count(*) - 1) END
                     FROM ref_timeline r
                    WHERE r.as_of = i.as_of AND r.ps = t.period_start AND r.team = t.peer_group)
               OR t.cycle_percentile IS DISTINCT FROM
                  (SELECT CASE WHEN t.mean_cycle_days IS NULL THEN NULL WHEN count(*) = 1 THEN 0
                               ELSE (count(*) FILTER (WHERE round(r.cycle::numeric, 9) > round(t.mean_cycle_days::numeric, 9)))::float8
                                    / (count(*) - 1) END
                     FROM ref_timeline r
                    WHERE r.as_of = i.as_of AND r.ps = t.period_start AND r.team = t.peer_group
                      AND r.cycle IS NOT NULL)),
          0::bigint, 'bookings and cycle percentiles are the share of team peers ranked below');

-- by team, as of now: one row per team and month with the sums of its reps
SELECT set_eq(
    $$SELECT t.period_start, t.dimension_value, round(t.bookings, 4) AS b, t.won, t.lost, t.activities
        FROM sales_kpi.rep_timeline('2025-01-01', '2026-11-01', 'month', 'team', '2026-10-31 23:00+00') t$$,
    $$SELECT ps, team, round(sum(bookings), 4) AS b, sum(won)::bigint AS w, sum(lost)::bigint AS l, sum(activities)::bigint AS a
        FROM ref_timeline WHERE as_of = '2026-10-31 23:00+00' GROUP BY ps, team$$,
    'rep_timeline by team sums its reps');

-- rep_volatility: the twelve months before the month of as_of
CREATE TEMP TABLE ref_vol AS
SELECT i.as_of, v.rep, sum(v.b) AS bookings, stddev_pop(v.b) / nullif(avg(v.b), 0) AS cv
  FROM instants i
  CROSS JOIN LATERAL (
        SELECT r.name AS rep, m.m,
               coalesce((SELECT sum(c.amount_base) FROM ref_closed c
                          WHERE c.as_of = i.as_of AND c.owner_id = r.rep_id AND c.outcome = 'won'
                            AND date_trunc('month', c.closed_at) = m.m), 0) AS b
          FROM sales_kpi.rep r
         CROSS JOIN generate_series(date_trunc('month', i.as_of) - interval '12 months',
                                    date_trunc('month', i.as_of) - interval '1 month', interval '1 month') m(m)
         WHERE EXISTS (SELECT 1 FROM ref_closed c
                        WHERE c.as_of = i.as_of AND c.owner_id = r.rep_id
                          AND c.closed_at >= date_trunc('month', i.as_of) - interval '12 months'
                          AND c.closed_at < date_trunc('month', i.as_of))) v
 GROUP BY 1, 2;
SELECT set_eq(
    $$SELECT i.as_of, v.dimension_value, round(v.bookings, 4) AS b, round(v.volatility::numeric, 9) AS v, v.months
        FROM instants i, sales_kpi.rep_volatility(i.as_of, 'rep') v$$,
    $$SELECT as_of, rep, round(bookings, 4) AS b, round(cv::numeric, 9) AS v, 12::bigint FROM ref_vol$$,
    'rep_volatility: coefficient of variation of twelve monthly bookings (zeros included) per rep');
SELECT ok((SELECT count(DISTINCT as_of) = 2 AND count(*) > 20 AND count(cv) > 20 FROM ref_vol), 'the volatility reference is not empty');

-- last_minute_share for two quarters, company and by team
SELECT set_eq(
    $$SELECT q.s, l.dimension_value, l.won, l.last_minute_won, round(l.bookings, 4) AS b,
             round(l.last_minute_share::numeric, 9) AS share
        FROM (VALUES (timestamptz '2026-04-01+00'), ('2025-01-01+00')) q(s),
             sales_kpi.last_minute_share(q.s, q.s + interval '3 months', 'team', '2026-10-31 23:00+00') l$$,
    $$SELECT q.s, r.team, count(*) AS won,
             count(*) FILTER (WHERE c.closed_at >= q.s + interval '3 months' - (q.s + interval '3 months' - q.s) * 0.1)
                 AS last_minute_won,
             round(sum(c.amount_base), 4) AS b,
             round((coalesce(sum(c.amount_base) FILTER (WHERE c.closed_at >= q.s + interval '3 months'
                                    - (q.s + interval '3 months' - q.s) * 0.1), 0) / sum(c.amount_base))::numeric, 9) AS share
        FROM (VALUES (timestamptz '2026-04-01+00'), ('2025-01-01+00')) q(s)
        JOIN ref_closed c ON c.as_of = '2026-10-31 23:00+00' AND c.outcome = 'won'
         AND c.closed_at >= q.s AND c.closed_at < q.s + interval '3 months'
        JOIN sales_kpi.rep r ON r.rep_id = c.owner_id
       GROUP BY q.s, r.team$$,
    'last_minute_share: the wins and the share of each team''s bookings closed in the last tenth of the quarter');
SELECT ok((SELECT count(*) > 0 AND bool_and(last_minute_share > 0 AND last_minute_share < 1)
             FROM sales_kpi.last_minute_share('2026-04-01', '2026-07-01', 'company', '2026-10-31 23:00+00')),
          'the company''s last-minute share is a fraction strictly between 0 and 1');

-- org_attainment: MRR movements from a dense month grid per account
CREATE TEMP TABLE ref_mrr AS
WITH bounds AS (SELECT max(month) AS last_month FROM sales_kpi.recurring_revenue),
grid AS (
    SELECT a.account_id, m::date AS month, coalesce(rr.mrr, 0) AS mrr
      FROM (SELECT account_id, min(month) AS first_month FROM sales_kpi.recurring_revenue GROUP BY 1) a
     CROSS JOIN bounds b
     CROSS JOIN generate_series(a.first_month, b.last_month, interval '1 month') m
      LEFT JOIN sales_kpi.recurring_revenue rr ON rr.account_id = a.account_id AND rr.month = m::date
), moves AS (
    SELECT g.account_id, g.month, g.mrr,
           coalesce(lag(g.mrr) OVER (PARTITION BY g.account_id ORDER BY g.month), 0) AS prev,
           coalesce(max(g.mrr) OVER (PARTITION BY g.account_id ORDER BY g.month
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING), 0) AS earlier_max
      FROM grid g
)
SELECT account_id, month,
       CASE WHEN prev > 0 AND mrr > prev THEN mrr - prev ELSE 0 END AS expansion,
       CASE WHEN prev = 0 AND mrr > 0 AND earlier_max > 0 THEN mrr ELSE 0 END AS reactivation,
       CASE WHEN mrr > 0 AND mrr < prev THEN prev - mrr ELSE 0 END AS contraction,
       CASE WHEN mrr = 0 THEN prev ELSE 0 END AS churn
  FROM moves;
SELECT ok((SELECT sum(churn) > 0 AND sum(reactivation) > 0 AND sum(expansion) > 0 FROM ref_mrr),
          'the demo revenue has expansion, churn and reactivation');

SELECT set_eq(
    $$SELECT q.s, round(o.new_business_bookings, 4) AS b, o.expansion_mrr, o.reactivation_mrr, o.contraction_mrr,
             o.churn_mrr, round(o.net_new_revenue, 4) AS n, round(o.quota, 4) AS q
        FROM (VALUES (timestamptz '2026-04-01+00'), ('2025-07-01+00')) q(s),
             sales_kpi.org_attainment(q.s, q.s + interval '3 months', 'company', '2026-10-31 23:00+00') o$$,
    $$SELECT q.s, round(b.bookings, 4) AS b, m.e, m.r, m.c, m.ch, round(b.bookings + m.e + m.r - m.c - m.ch, 4) AS n,
             round((SELECT sum(qt.amount * (least(qt.period_end, (q.s + interval '3 months')::date)
                                            - greatest(qt.period_start, q.s::date))::numeric
                               / (qt.period_end - qt.period_start))
                      FROM sales_kpi.quota qt
                     WHERE qt.period_start < (q.s + interval '3 months')::date AND qt.period_end > q.s::date), 4)
        FROM (VALUES (timestamptz '2026-04-01+00'), ('2025-07-01+00')) q(s)
        CROSS JOIN LATERAL (SELECT coalesce(sum(c.amount_base), 0) AS bookings FROM ref_closed c
                             WHERE c.as_of = '2026-10-31 23:00+00' AND c.outcome = 'won' AND c.deal_kind = 'new'
                               AND c.closed_at >= q.s AND c.closed_at < q.s + interval '3 months') b
        CROSS JOIN LATERAL (SELECT sum(x.expansion) AS e, sum(x.reactivation) AS r, sum(x.contraction) AS c,
                                   sum(x.churn) AS ch FROM ref_mrr x
                             WHERE x.month >= q.s::date AND x.month < (q.s + interval '3 months')::date) m$$,
    'org_attainment: new-business bookings, MRR movements and quota of the company for two quarters');

-- as of a past instant: months that had not begun are left out
SELECT set_eq(
    $$SELECT round(o.new_business_bookings, 4) AS b, o.expansion_mrr - o.contraction_mrr - o.churn_mrr + o.reactivation_mrr
        FROM sales_kpi.org_attainment('2025-07-01', '2025-10-01', 'company', '2025-08-17 12:00+00') o$$,
    $$SELECT round((SELECT coalesce(sum(c.amount_base), 0) FROM ref_closed c
                     WHERE c.as_of = '2025-08-17 12:00+00' AND c.outcome = 'won' AND c.deal_kind = 'new'
                       AND c.closed_at >= '2025-07-01' AND c.closed_at < '2025-10-01'), 4),
             (SELECT sum(x.expansion + x.reactivation - x.contraction - x.churn) FROM ref_mrr x
               WHERE x.month >= '2025-07-01' AND x.month <= '2025-08-01')$$,
    'org_attainment as of a past instant: bookings then known, July and August MRR only');

-- by team: the teams add up to the company (every account with MRR
-- movements has a won deal, or falls under (none)) and attainment is net
-- new revenue over the team's quota
SELECT is((SELECT round(sum(net_new_revenue), 4)
             FROM sales_kpi.org_attainment('2026-04-01', '2026-07-01', 'team', '2026-10-31 23:00+00')),
          (SELECT round(net_new_revenue, 4)
             FROM sales_kpi.org_attainment('2026-04-01', '2026-07-01', 'company', '2026-10-31 23:00+00')),
          'org_attainment by team adds up to the company');
SELECT is((SELECT count(*) FROM sales_kpi.org_attainment('2026-04-01', '2026-07-01', 'team', '2026-10-31 23:00+00') o
            WHERE o.attainment IS DISTINCT FROM (o.net_new_revenue / nullif(o.quota, 0))::float8
               OR o.quota IS DISTINCT FROM
                  (SELECT sum(q.quota) FROM sales_kpi.quota_in_period('2026-04-01', '2026-07-01') q
                     JOIN sales_kpi.rep r ON r.rep_id = q.rep_id WHERE r.team = o.dimension_value)),
          0::bigint, 'team attainment is net new revenue over the summed quota of the team''s reps');

-- by rep: each account's movements of a month go to the owner at the
-- close of its newest deal won before the month ended, '(none)' without
-- one; bookings to the owner at the close of each new-business win
SELECT set_eq(
    $$SELECT o.dimension_value, round(o.new_business_bookings, 4) AS b, o.expansion_mrr, o.reactivation_mrr,
             o.contraction_mrr, o.churn_mrr
        FROM sales_kpi.org_attainment('2026-04-01', '2026-07-01', 'rep', '2026-10-31 23:00+00') o$$,
    $$WITH credited AS (
          SELECT DISTINCT ON (x.account_id, x.month) x.*, c.owner_id
            FROM ref_mrr x
            LEFT JOIN ref_closed c
                   ON c.as_of = '2026-10-31 23:00+00' AND c.outcome = 'won' AND c.account_id = x.account_id
                  AND c.closed_at < x.month + interval '1 month'
           WHERE x.month >= '2026-04-01' AND x.month < '2026-07-01'
             AND x.expansion + x.reactivation + x.contraction + x.churn > 0
           ORDER BY x.account_id, x.month, c.closed_at DESC, c.opportunity_id DESC
      ), moves AS (
          SELECT coalesce(r.name, '(none)') AS rep, sum(cr.expansion) AS e, sum(cr.reactivation) AS re,
                 sum(cr.contraction) AS c, sum(cr.churn) AS ch
            FROM credited cr LEFT JOIN sales_kpi.rep r ON r.rep_id = cr.owner_id
           GROUP BY 1
      ), booked AS (
          SELECT r.name AS rep, sum(c.amount_base) AS b
            FROM ref_closed c JOIN sales_kpi.rep r ON r.rep_id = c.owner_id
           WHERE c.as_of = '2026-10-31 23:00+00' AND c.outcome = 'won' AND c.deal_kind = 'new'
             AND c.closed_at >= '2026-04-01' AND c.closed_at < '2026-07-01'
           GROUP BY 1
      ), quota AS (
          SELECT DISTINCT r.name AS rep FROM sales_kpi.quota_in_period('2026-04-01', '2026-07-01') q
            JOIN sales_kpi.rep r ON r.rep_id = q.rep_id
      ), keys AS (
          SELECT rep FROM moves UNION SELECT rep FROM booked UNION SELECT rep FROM quota
      )
      SELECT k.rep, round(coalesce(b.b, 0), 4) AS b, coalesce(m.e, 0) AS e, coalesce(m.re, 0) AS re,
             coalesce(m.c, 0) AS c, coalesce(m.ch, 0) AS ch
        FROM keys k LEFT JOIN moves m ON m.rep = k.rep LEFT JOIN booked b ON b.rep = k.rep$$,
    'org_attainment by rep: MRR movements credited to the owner of the account''s newest win, bookings to the owner at the close');

SELECT * FROM finish();
ROLLBACK;
