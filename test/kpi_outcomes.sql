-- Outcome KPIs on demo data against independent plain-SQL formulations:
-- closed_deals() against a DISTINCT ON reconstruction of the histories (and
-- closed_deals() against a reconstruction), then win_rate, deal_size,
-- quota_attainment, sales_cycle and cohort_win_rate at several as_of
-- instants (now and two in the past) and for breakdowns.  Before comparing,
-- some closed deals change owner and amount after their close and one gets
-- a stage event after now, so the slow paths are exercised too.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(23);
SET LOCAL TimeZone = 'UTC';
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(3000, 11, '2026-10-31', replace => true)$$, 'demo data loads');

-- history made after the close: twenty deals closed in Q1 2026 change
-- owner (snapshot at now()), five change amount, one is reopened tomorrow
CREATE TEMP TABLE edited AS
SELECT o.opportunity_id, o.owner_id AS old_owner,
       (SELECT r.rep_id FROM sales_kpi.rep r WHERE r.rep_id <> o.owner_id AND r.role = 'ae'
         ORDER BY r.rep_id LIMIT 1) AS new_owner,
       row_number() OVER (ORDER BY o.opportunity_id) AS n
  FROM sales_kpi.opportunity o JOIN sales_kpi.stage s USING (stage_id)
 WHERE o.closed_at >= '2026-01-01' AND o.closed_at < '2026-04-01' AND s.kind IN ('won', 'lost')
   AND o.opportunity_id % 7 = 0
 ORDER BY o.opportunity_id
 LIMIT 20;
UPDATE sales_kpi.opportunity o SET owner_id = e.new_owner FROM edited e WHERE e.opportunity_id = o.opportunity_id;
UPDATE sales_kpi.opportunity o SET amount = o.amount + 1000 FROM edited e
 WHERE e.opportunity_id = o.opportunity_id AND e.n <= 5;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, (SELECT min(st.stage_id) FROM sales_kpi.stage st
                           WHERE st.pipeline_id = o.pipeline_id AND st.kind = 'open'), now() + interval '1 day'
  FROM sales_kpi.opportunity o JOIN edited e USING (opportunity_id) WHERE e.n = 6;

-- the reference: the newest stage event not after `at` (DISTINCT ON), the
-- owner of the newest snapshot not after the close, the amount of the
-- newest snapshot not after `at`, converted with fx_rate_on at the close date
CREATE FUNCTION pg_temp.ref_closed(ps timestamptz, pe timestamptz, at timestamptz)
RETURNS TABLE (opportunity_id bigint, outcome text, created_at timestamptz, closed_at timestamptz,
               owner_id bigint, amount numeric, account_id bigint, amount_base numeric)
LANGUAGE sql STABLE AS $$
    WITH last_event AS (
        SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, ev.stage_id, ev.entered_at
          FROM sales_kpi.stage_event ev
         WHERE ev.entered_at <= at
         ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC
    ), closed AS (
        SELECT le.opportunity_id, le.entered_at, s.kind
          FROM last_event le JOIN sales_kpi.stage s ON s.stage_id = le.stage_id
         WHERE s.kind IN ('won', 'lost') AND le.entered_at >= ps AND le.entered_at < pe
    ), owner_at_close AS (
        SELECT DISTINCT ON (c.opportunity_id) c.opportunity_id, h.owner_id
          FROM closed c JOIN sales_kpi.opportunity_history h
            ON h.opportunity_id = c.opportunity_id AND h.changed_at <= c.entered_at
         ORDER BY c.opportunity_id, h.changed_at DESC
    ), amount_at AS (
        SELECT DISTINCT ON (h.opportunity_id) h.opportunity_id, h.amount
          FROM sales_kpi.opportunity_history h
         WHERE h.changed_at <= at
         ORDER BY h.opportunity_id, h.changed_at DESC
    )
    SELECT c.opportunity_id, c.kind, o.created_at, c.entered_at, coalesce(w.owner_id, o.owner_id),
           coalesce(a.amount, o.amount), o.account_id,
           coalesce(a.amount, o.amount) * sales_kpi.fx_rate_on(o.currency, (c.entered_at AT TIME ZONE 'UTC')::date)
      FROM closed c
      JOIN sales_kpi.opportunity o ON o.opportunity_id = c.opportunity_id
      LEFT JOIN owner_at_close w ON w.opportunity_id = c.opportunity_id
      LEFT JOIN amount_at a ON a.opportunity_id = c.opportunity_id
$$;

-- (as_of, period) cases: now with Q1 2026; a past instant in the middle of
-- its quarter; a past instant with a whole year; now with four years (a
-- period longer than 400 days takes the other path of closed_deals)
CREATE TEMP TABLE cases (k int, at timestamptz, ps timestamptz, pe timestamptz);
INSERT INTO cases VALUES (1, now(), '2026-01-01', '2026-04-01'),
                         (2, '2026-05-20 12:00+00', '2026-04-01', '2026-07-01'),
                         (3, '2025-09-15 08:30+00', '2024-10-01', '2025-10-01'),
                         (4, now(), '2023-01-01', '2027-01-01');
CREATE TEMP TABLE ref AS
SELECT c.k, r.* FROM cases c, pg_temp.ref_closed(c.ps, c.pe, c.at) r;

SELECT ok((SELECT count(DISTINCT k) = 4 AND min(n) > 100
             FROM (SELECT k, count(*) AS n FROM ref GROUP BY k) x), 'the reference has closed deals in all four cases');
SELECT ok(coalesce((SELECT count(*) FILTER (WHERE r.k = 1) >= 5 AND count(*) FILTER (WHERE r.k = 4) >= 5
                      FROM ref r JOIN edited e USING (opportunity_id)
                     WHERE r.owner_id = e.old_owner AND e.new_owner <> e.old_owner), false),
          'edited deals are credited to their owner at the close, not the current one');

SELECT set_eq($$SELECT c.k, d.opportunity_id, d.outcome, d.closed_at, d.owner_id, d.amount, round(d.amount_base, 6) AS b
                  FROM cases c, sales_kpi.closed_deals(c.ps, c.pe, c.at) d$$,
              $$SELECT k, opportunity_id, outcome, closed_at, owner_id, amount, round(amount_base, 6) AS b FROM ref$$,
              'closed_deals() agrees with the reconstruction in all four cases');
SELECT set_eq($$SELECT c.k, d.opportunity_id, d.pipeline_id, d.account_id, d.stage_id, d.created_at,
                       d.currency
                  FROM cases c, sales_kpi.closed_deals(c.ps, c.pe, c.at) d$$,
              $$SELECT r.k, r.opportunity_id, o.pipeline_id, o.account_id,
                       (SELECT s.stage_id FROM sales_kpi.stage s
                         WHERE s.pipeline_id = o.pipeline_id AND s.kind = r.outcome),
                       o.created_at, o.currency
                  FROM ref r JOIN sales_kpi.opportunity o USING (opportunity_id)$$,
              'closed_deals() gives each deal''s pipeline, account, terminal stage, creation and currency');
SELECT set_eq($$SELECT c.k, b.owner_id, b.won, b.lost, b.won_amount
                  FROM cases c, sales_kpi_internal.closed_by_owner(c.ps, c.pe, c.at) b$$,
              $$SELECT k, owner_id, count(*) FILTER (WHERE outcome = 'won') AS won, count(*) FILTER (WHERE outcome = 'lost') AS lost,
                       sum(amount_base) FILTER (WHERE outcome = 'won') AS won_amount
                  FROM ref GROUP BY k, owner_id$$,
              'closed_by_owner() totals the reconstruction per owner');

-------------------------------------------------------------------------------
-- win_rate
-------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.wilson(w bigint, n bigint, sign int) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN n > 0 THEN
        (w::float8 / n + z * z / (2 * n) + sign * z * sqrt(w::float8 / n * (1 - w::float8 / n) / n + z * z / (4.0 * n * n)))
        / (1 + z * z / n) END
      FROM (SELECT 1.959963984540054::float8 AS z) c
$$;
CREATE TEMP VIEW ref_win AS
SELECT k, value, count(*) FILTER (WHERE outcome = 'won') AS won, count(*) FILTER (WHERE outcome = 'lost') AS lost,
       coalesce(sum(amount_base) FILTER (WHERE outcome = 'won'), 0) AS won_amount, sum(amount_base) AS closed_amount
  FROM (SELECT r.*, 'all' AS value FROM ref r) x
 GROUP BY k, value;

SELECT set_eq($$SELECT c.k, w.dimension_value, w.won, w.lost, round(w.win_rate::numeric, 9) AS r,
                       round(w.win_rate_lower::numeric, 9) AS lo, round(w.win_rate_upper::numeric, 9) AS hi,
                       round(w.won_amount, 6) AS wa, round(w.closed_amount, 6) AS ca, round(w.amount_win_rate::numeric, 9) AS ar
                  FROM cases c, sales_kpi.win_rate(c.ps, c.pe, 'company', c.at) w$$,
              $$SELECT k, value, won, lost, round(won::numeric / (won + lost), 9) AS r,
                       round(pg_temp.wilson(won, won + lost, -1)::numeric, 9) AS lo,
                       round(pg_temp.wilson(won, won + lost, 1)::numeric, 9) AS hi,
                       round(won_amount, 6) AS wa, round(closed_amount, 6) AS ca, round(won_amount / closed_amount, 9) AS ar
                  FROM ref_win$$,
              'win_rate, company: counts, rate, Wilson interval and amount-weighted rate in all four cases');

SELECT set_eq($$SELECT c.k, w.dimension_value, w.won, w.lost, round(w.win_rate_vs_company::numeric, 9) AS diff
                  FROM cases c, sales_kpi.win_rate(c.ps, c.pe, 'rep', c.at) w$$,
              $$SELECT r.k, rp.name, count(*) FILTER (WHERE r.outcome = 'won') AS won, count(*) FILTER (WHERE r.outcome = 'lost') AS lost,
                       round((avg((r.outcome = 'won')::int) - t.rate)::numeric, 9) AS diff
                  FROM ref r JOIN sales_kpi.rep rp ON rp.rep_id = r.owner_id
                  JOIN (SELECT k, avg((outcome = 'won')::int) AS rate FROM ref GROUP BY k) t ON t.k = r.k
                 GROUP BY r.k, rp.name, t.rate$$,
              'win_rate by rep (owner at the close) with the difference from the company rate');

SELECT set_eq($$SELECT c.k, w.dimension_value, w.won, w.lost
                  FROM cases c, sales_kpi.win_rate(c.ps, c.pe, 'industry', c.at) w$$,
              $$SELECT r.k, coalesce(a.industry, '(none)') AS v, count(*) FILTER (WHERE r.outcome = 'won') AS won,
                       count(*) FILTER (WHERE r.outcome = 'lost') AS lost
                  FROM ref r LEFT JOIN sales_kpi.account a ON a.account_id = r.account_id
                 GROUP BY 1, 2$$,
              'win_rate by industry');

SELECT set_eq($$SELECT c.k, w.dimension_value, w.won, w.lost
                  FROM cases c, sales_kpi.win_rate(c.ps, c.pe, 'contact_role', c.at) w$$,
              $$SELECT x.k, x.role, count(*) FILTER (WHERE x.outcome = 'won') AS won, count(*) FILTER (WHERE x.outcome = 'lost') AS lost
                  FROM (SELECT DISTINCT r.k, r.opportunity_id, r.outcome, coalesce(oc.role, '(none)') AS role
                          FROM ref r LEFT JOIN sales_kpi.opportunity_contact oc USING (opportunity_id)) x
                 GROUP BY 1, 2$$,
              'win_rate by contact role, a deal once per role');

SELECT set_eq($$SELECT c.k, w.dimension_value, w.won, w.lost
                  FROM cases c, sales_kpi.win_rate(c.ps, c.pe, 'deal_size_band', c.at) w$$,
              $$SELECT k, CASE WHEN amount_base < 10000 THEN '< 10k' WHEN amount_base < 50000 THEN '10k - 50k'
                               WHEN amount_base < 250000 THEN '50k - 250k' ELSE '>= 250k' END AS band,
                       count(*) FILTER (WHERE outcome = 'won') AS won, count(*) FILTER (WHERE outcome = 'lost') AS lost
                  FROM ref GROUP BY 1, 2$$,
              'win_rate by deal size band');
SELECT ok((SELECT count(DISTINCT dimension_value) >= 3
             FROM sales_kpi.win_rate('2024-01-01', '2027-01-01', 'contact_role', now())), 'the demo deals have several contact roles');

-------------------------------------------------------------------------------
-- deal_size and quota_attainment
-------------------------------------------------------------------------------
SELECT set_eq($$SELECT c.k, d.dimension_value, d.won, round(d.won_amount, 6) AS wa, round(d.avg_amount, 6) AS av, d.accounts,
                       round(d.arpa, 6) AS arpa
                  FROM cases c, sales_kpi.deal_size(c.ps, c.pe, 'segment', c.at) d$$,
              $$SELECT r.k, coalesce(a.segment, '(none)') AS v, count(*) AS won, round(sum(r.amount_base), 6) AS wa,
                       round(avg(r.amount_base), 6) AS av, count(DISTINCT r.account_id) AS accounts,
                       round(sum(r.amount_base) / count(DISTINCT r.account_id), 6) AS arpa
                  FROM ref r LEFT JOIN sales_kpi.account a ON a.account_id = r.account_id
                 WHERE r.outcome = 'won' GROUP BY 1, 2$$,
              'deal_size by segment: count, amount, mean and ARPA');

-- two reps who booked in Q1 2026 lose their quota there, a third gets a zero quota
DELETE FROM sales_kpi.quota q
 WHERE q.period_start < '2026-04-01' AND q.period_end > '2026-01-01'
   AND q.rep_id IN (SELECT owner_id FROM ref WHERE k = 1 AND outcome = 'won' GROUP BY owner_id ORDER BY owner_id LIMIT 2);
UPDATE sales_kpi.quota q SET amount = 0
 WHERE q.period_start < '2026-04-01' AND q.period_end > '2026-01-01'
   AND q.rep_id = (SELECT owner_id FROM ref WHERE k = 1 AND outcome = 'won' GROUP BY owner_id ORDER BY owner_id OFFSET 2 LIMIT 1);

-- quota of each rep: each overlapping quota row prorated by days
CREATE TEMP VIEW ref_quota AS
SELECT c.k, q.rep_id,
       sum(q.amount * (least(q.period_end, c.pe::date) - greatest(q.period_start, c.ps::date))
           / (q.period_end - q.period_start)::numeric) AS quota
  FROM cases c JOIN sales_kpi.quota q ON q.period_start < c.pe::date AND q.period_end > c.ps::date
 GROUP BY 1, 2;
CREATE TEMP VIEW ref_attain AS
SELECT coalesce(b.k, q.k) AS k, coalesce(b.rep_id, q.rep_id) AS rep_id, coalesce(b.bookings, 0) AS bookings, q.quota
  FROM (SELECT k, owner_id AS rep_id, sum(amount_base) AS bookings FROM ref
         WHERE outcome = 'won' AND owner_id IS NOT NULL GROUP BY 1, 2) b
  FULL JOIN ref_quota q ON q.k = b.k AND q.rep_id = b.rep_id;

SELECT set_eq($$SELECT c.k, a.dimension_value, round(a.bookings, 6) AS b, round(a.quota, 6) AS q, round(a.attainment::numeric, 9) AS a,
                       a.reps_at_quota
                  FROM cases c, sales_kpi.quota_attainment(c.ps, c.pe, 'rep', c.at) a$$,
              $$SELECT x.k, r.name, round(x.bookings, 6) AS b, round(x.quota, 6) AS q,
                       round(CASE WHEN x.quota > 0 THEN x.bookings / x.quota END, 9) AS a,
                       coalesce(x.quota > 0 AND x.bookings >= x.quota, false)::int::bigint AS at_quota
                  FROM ref_attain x JOIN sales_kpi.rep r USING (rep_id)$$,
              'quota_attainment per rep: bookings at the owner at the win, prorated quota, attainment');
SELECT set_eq($$SELECT c.k, a.dimension_value, a.reps, a.reps_with_quota, round(a.attainment::numeric, 9) AS a,
                       round(a.at_quota_rate::numeric, 9) AS r
                  FROM cases c, sales_kpi.quota_attainment(c.ps, c.pe, 'team', c.at) a$$,
              $$SELECT x.k, coalesce(r.team, '(none)') AS team, count(*) AS reps, count(*) FILTER (WHERE x.quota > 0) AS wq,
                       round(sum(x.bookings) FILTER (WHERE x.quota > 0) / sum(x.quota) FILTER (WHERE x.quota > 0), 9) AS a,
                       round(avg((x.bookings >= x.quota)::int) FILTER (WHERE x.quota > 0), 9) AS r
                  FROM ref_attain x JOIN sales_kpi.rep r USING (rep_id) GROUP BY 1, 2$$,
              'quota_attainment per team: attainment and share at quota over the reps with a quota');
SELECT ok(coalesce((SELECT count(*) FILTER (WHERE quota > 0) > 5 AND count(*) FILTER (WHERE quota IS NULL) = 2
                             AND count(*) FILTER (WHERE quota = 0) = 1
                      FROM ref_attain WHERE k = 1), false),
          'reps with a quota, without one and with a zero quota all occur');

-------------------------------------------------------------------------------
-- sales_cycle
-------------------------------------------------------------------------------
-- won deals: exact count and mean; median, p75 and p90 within 1% of the
-- value of rank floor(q (n - 1))
CREATE TEMP VIEW ref_cycle AS
SELECT k, count(*) AS n, avg(extract(epoch FROM closed_at - created_at) / 86400) AS mean_days,
       (array_agg(extract(epoch FROM closed_at - created_at) / 86400 ORDER BY closed_at - created_at)) AS sorted
  FROM ref WHERE outcome = 'won' GROUP BY k;
SELECT is((SELECT count(*) FROM cases c
             CROSS JOIN sales_kpi.sales_cycle(c.ps, c.pe, 'company', c.at) s
             JOIN ref_cycle r ON r.k = c.k
            WHERE s.won = r.n AND abs(s.mean_days - r.mean_days) < 1e-6
              AND abs(s.median_days - r.sorted[floor(0.5 * (r.n - 1))::int + 1]) <= 0.01 * r.sorted[floor(0.5 * (r.n - 1))::int + 1]
              AND abs(s.p75_days - r.sorted[floor(0.75 * (r.n - 1))::int + 1]) <= 0.01 * r.sorted[floor(0.75 * (r.n - 1))::int + 1]
              AND abs(s.p90_days - r.sorted[floor(0.9 * (r.n - 1))::int + 1]) <= 0.01 * r.sorted[floor(0.9 * (r.n - 1))::int + 1]),
          4::bigint, 'sales_cycle: count and mean exact, percentiles within 1%, in all four cases');

-- Kaplan-Meier median time to close of the deals created in the 365 days
-- before least(period_end, as_of), as they stood then (reference: the
-- newest event not after that instant; ages floored to days)
CREATE FUNCTION pg_temp.ref_km(t timestamptz) RETURNS TABLE (n bigint, closed bigint, median_days int)
LANGUAGE sql STABLE AS $$
    WITH state AS (
        SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, s.kind, ev.entered_at
          FROM sales_kpi.stage_event ev JOIN sales_kpi.stage s USING (stage_id)
         WHERE ev.entered_at <= t
         ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC
    ), deal AS (
        SELECT floor(extract(epoch FROM CASE WHEN st.kind = 'open' THEN t ELSE st.entered_at END - o.created_at) / 86400)::int AS age,
               st.kind <> 'open' AS closed
          FROM state st JOIN sales_kpi.opportunity o USING (opportunity_id)
         WHERE o.created_at >= t - interval '365 days' AND o.created_at < t
    ), day AS (
        SELECT age, count(*) FILTER (WHERE closed) AS e, count(*) AS c FROM deal GROUP BY age
    ), km AS (
        SELECT age, e, exp(sum(ln(greatest(1 - e::float8 / sum_c, 1e-300))) OVER (ORDER BY age)) AS s
          FROM (SELECT d.*, sum(c) OVER (ORDER BY age DESC) AS sum_c FROM day d) x
    )
    SELECT (SELECT count(*) FROM deal), (SELECT count(*) FILTER (WHERE closed) FROM deal),
           (SELECT min(age) FROM km WHERE s <= 0.5 + 1e-12)
$$;
SELECT set_eq($$SELECT c.k, s.km_deals, s.km_closed, s.km_median_days
                  FROM cases c, sales_kpi.sales_cycle(c.ps, c.pe, 'company', c.at) s$$,
              $$SELECT c.k, r.n, r.closed, r.median_days::float8 AS m
                  FROM cases c, pg_temp.ref_km(least(c.pe, c.at)) r$$,
              'sales_cycle: Kaplan-Meier median time to close over the trailing year, open deals censored');
SELECT set_eq($$SELECT c.k, s.dimension_value, s.won
                  FROM cases c, sales_kpi.sales_cycle(c.ps, c.pe, 'pipeline', c.at) s WHERE s.won > 0$$,
              $$SELECT r.k, p.name, count(*) AS won FROM ref r JOIN sales_kpi.opportunity o USING (opportunity_id)
                  JOIN sales_kpi.pipeline p ON p.pipeline_id = o.pipeline_id
                 WHERE r.outcome = 'won' GROUP BY 1, 2$$,
              'sales_cycle by pipeline: won deals per pipeline');

-------------------------------------------------------------------------------
-- cohort_win_rate
-------------------------------------------------------------------------------
-- monthly cohorts, horizon 90 days: naive share and Aalen-Johansen CIF of
-- won (lost competing, open censored at as_of), per day
CREATE FUNCTION pg_temp.ref_cohorts(from_at timestamptz, to_at timestamptz, at timestamptz, h int)
RETURNS TABLE (cohort timestamptz, deals bigint, won bigint, still_open bigint, naive float8, cif float8)
LANGUAGE sql STABLE AS $$
    WITH state AS (
        SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, s.kind, ev.entered_at
          FROM sales_kpi.stage_event ev JOIN sales_kpi.stage s USING (stage_id)
         WHERE ev.entered_at <= at
         ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC
    ), deal AS (
        SELECT date_trunc('month', o.created_at) AS cohort, st.kind,
               floor(extract(epoch FROM CASE WHEN st.kind = 'open' THEN at ELSE st.entered_at END - o.created_at) / 86400)::int AS age
          FROM state st JOIN sales_kpi.opportunity o USING (opportunity_id)
         WHERE o.created_at >= from_at AND o.created_at < to_at AND o.created_at <= at
    ), day AS (
        SELECT cohort, age, count(*) FILTER (WHERE kind = 'won') AS w, count(*) FILTER (WHERE kind = 'lost') AS l,
               count(*) AS c
          FROM deal GROUP BY 1, 2
    ), risk AS (
        SELECT d.*, sum(c) OVER (PARTITION BY cohort ORDER BY age DESC) AS n FROM day d
    ), aj AS (
        SELECT r.*,
               coalesce(exp(sum(ln(greatest(1 - (w + l)::float8 / n, 1e-300)))
                            OVER (PARTITION BY cohort ORDER BY age ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)), 1) AS s_before
          FROM risk r
    )
    SELECT d.cohort, count(*), count(*) FILTER (WHERE d.kind = 'won' AND d.age <= h),
           count(*) FILTER (WHERE d.kind = 'open'),
           (count(*) FILTER (WHERE d.kind = 'won' AND d.age <= h))::float8 / count(*),
           (SELECT coalesce(sum(a.s_before * a.w / a.n), 0) FROM aj a WHERE a.cohort = d.cohort AND a.age <= h)
      FROM deal d GROUP BY d.cohort
$$;
SELECT set_eq($$SELECT x.at, w.period_start, w.deals, w.won, w.still_open, round(w.naive_win_rate::numeric, 9) AS naive,
                       round(w.cumulative_win_rate::numeric, 9) AS cif
                  FROM (VALUES (now()), (timestamptz '2026-10-31 00:00+00'), ('2025-09-15 08:30+00')) x(at),
                       sales_kpi.cohort_win_rate(x.at - interval '10 months', x.at, 'month', 'company', x.at, '90 days') w
                 WHERE w.deals > 0$$,
              $$SELECT x.at, r.cohort, r.deals, r.won, r.still_open, round(r.naive::numeric, 9) AS naive, round(r.cif::numeric, 9) AS cif
                  FROM (VALUES (now()), (timestamptz '2026-10-31 00:00+00'), ('2025-09-15 08:30+00')) x(at),
                       pg_temp.ref_cohorts(date_trunc('month', x.at - interval '10 months'), x.at, x.at, 90) r$$,
              'cohort_win_rate: naive share and Aalen-Johansen per monthly cohort, at three instants');
SELECT ok(coalesce((SELECT count(*) FILTER (WHERE cumulative_win_rate > naive_win_rate + 1e-9) >= 2
                          AND count(*) >= 10
                      FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-11-01', 'month', 'company',
                                                     '2026-10-31', '90 days')), false),
          'young cohorts at the end of the data: Aalen-Johansen above the naive share');
SELECT set_eq($$SELECT w.dimension_value, w.period_start, w.deals, w.still_open
                  FROM sales_kpi.cohort_win_rate('2026-01-01', '2026-07-01', 'quarter', 'region', '2026-05-20 12:00+00') w$$,
              $$WITH state AS (
                    SELECT DISTINCT ON (ev.opportunity_id) ev.opportunity_id, s.kind
                      FROM sales_kpi.stage_event ev JOIN sales_kpi.stage s USING (stage_id)
                     WHERE ev.entered_at <= '2026-05-20 12:00+00'
                     ORDER BY ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC)
                SELECT coalesce(a.region, '(none)') AS region,
                       CASE WHEN o.created_at < '2026-04-01' THEN timestamptz '2026-01-01' ELSE '2026-04-01' END AS cohort,
                       count(*) AS deals, count(*) FILTER (WHERE st.kind = 'open') AS still_open
                  FROM state st JOIN sales_kpi.opportunity o USING (opportunity_id)
                  LEFT JOIN sales_kpi.account a ON a.account_id = o.account_id
                 WHERE o.created_at >= '2026-01-01' AND o.created_at <= '2026-05-20 12:00+00'
                 GROUP BY 1, 2$$,
              'cohort_win_rate by region, quarterly cohorts, in the past');

-- by team: the rep is the owner at the close, or at as_of for an open deal
SELECT set_eq($$SELECT x.at, w.dimension_value, w.period_start, w.deals, w.won, w.still_open
                  FROM (VALUES (now()), (timestamptz '2025-09-15 08:30+00')) x(at),
                       sales_kpi.cohort_win_rate('2025-01-01', '2027-01-01', 'year', 'team', x.at, '90 days') w$$,
              $$WITH x(at) AS (VALUES (now()), (timestamptz '2025-09-15 08:30+00')),
                state AS (
                    SELECT DISTINCT ON (x.at, ev.opportunity_id) x.at, ev.opportunity_id, s.kind, ev.entered_at
                      FROM x JOIN sales_kpi.stage_event ev ON ev.entered_at <= x.at
                      JOIN sales_kpi.stage s USING (stage_id)
                     ORDER BY x.at, ev.opportunity_id, ev.entered_at DESC, ev.stage_event_id DESC),
                owner AS (
                    SELECT DISTINCT ON (st.at, st.opportunity_id) st.at, st.opportunity_id, h.owner_id
                      FROM state st JOIN sales_kpi.opportunity_history h
                        ON h.opportunity_id = st.opportunity_id
                       AND h.changed_at <= CASE WHEN st.kind = 'open' THEN st.at ELSE st.entered_at END
                     ORDER BY st.at, st.opportunity_id, h.changed_at DESC)
                SELECT st.at, coalesce(r.team, '(none)') AS team, date_trunc('year', o.created_at) AS cohort,
                       count(*) AS deals,
                       count(*) FILTER (WHERE st.kind = 'won' AND st.entered_at - o.created_at < interval '91 days') AS won,
                       count(*) FILTER (WHERE st.kind = 'open') AS still_open
                  FROM state st JOIN sales_kpi.opportunity o USING (opportunity_id)
                  LEFT JOIN owner w ON w.at = st.at AND w.opportunity_id = st.opportunity_id
                  LEFT JOIN sales_kpi.rep r ON r.rep_id = coalesce(w.owner_id, o.owner_id)
                 WHERE o.created_at >= '2025-01-01' AND o.created_at <= st.at
                 GROUP BY 1, 2, 3$$,
              'cohort_win_rate by team (owner at the close, or at as_of when open), yearly cohorts, now and in the past');

SELECT * FROM finish();
ROLLBACK;
