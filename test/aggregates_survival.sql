-- survival_agg against a plain-SQL Aalen-Johansen / Kaplan-Meier written
-- with window functions, on random cohorts (ages within the exact first
-- year, ties, heavy censoring, tiny and large cohorts); under forced
-- parallel query, through rollup, in moving windows, and through I/O.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(20);

CREATE TABLE surv_input AS
SELECT s.seed, g AS id,
       CASE WHEN g <= 2 THEN g ELSE 3 + g % 6 END AS cohort,
       floor(power(sales_kpi.demo_random(s.seed, g * 4), 2) * 365)::int AS age,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 4 + 1) < 0.02 THEN NULL
            WHEN sales_kpi.demo_random(s.seed, g * 4 + 2) < 0.1 * s.seed + 0.1 THEN 'open'
            WHEN sales_kpi.demo_random(s.seed, g * 4 + 3) < 0.3 THEN 'won'
            ELSE 'lost' END AS outcome
  FROM (VALUES (1), (2), (3)) s(seed), generate_series(1, 8000) g;
CREATE INDEX ON surv_input (seed, id);
ANALYZE surv_input;

CREATE TEMP TABLE computed AS
SELECT seed, cohort, sales_kpi.survival_agg(make_interval(days => age), outcome) AS s
  FROM surv_input GROUP BY seed, cohort;

-- the reference, per day: n at risk (age >= t), w and l closing that day,
-- S(t-) = product over earlier days of (1 - (w + l) / n)
CREATE TEMP TABLE reference AS
WITH day AS (
    SELECT seed, cohort, age,
           count(*) FILTER (WHERE outcome = 'won') AS w,
           count(*) FILTER (WHERE outcome = 'lost') AS l,
           count(*) AS c
      FROM surv_input WHERE outcome IS NOT NULL GROUP BY seed, cohort, age
), risk AS (
    SELECT d.*, sum(c) OVER (PARTITION BY seed, cohort ORDER BY age DESC) AS n,
           1 - (w + l)::float8 / sum(c) OVER (PARTITION BY seed, cohort ORDER BY age DESC) AS factor
      FROM day d
), km AS (
    SELECT r.*,
           CASE WHEN coalesce(sum((factor = 0)::int) OVER b, 0) > 0 THEN 0
                ELSE exp(coalesce(sum(ln(nullif(factor, 0))) OVER b, 0)) END AS s_before
      FROM risk r
    WINDOW b AS (PARTITION BY seed, cohort ORDER BY age ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT seed, cohort, age, s_before, s_before * factor AS s_after,
       sum(s_before * w / n) OVER (PARTITION BY seed, cohort ORDER BY age) AS cif_won
  FROM km;

SELECT is((SELECT count(*) FROM computed c
             CROSS JOIN (VALUES (0), (7), (30), (90), (180), (364)) h(days)
             CROSS JOIN LATERAL (SELECT coalesce((SELECT r.cif_won FROM reference r
                                                  WHERE r.seed = c.seed AND r.cohort = c.cohort AND r.age <= h.days
                                                  ORDER BY r.age DESC LIMIT 1), 0) AS cif) ref
            -- a NULL result counts as a failure
            WHERE coalesce(abs(sales_kpi.cumulative_win_rate(c.s, make_interval(days => h.days)) - ref.cif) > 1e-12, true)),
          0::bigint, 'cumulative_win_rate = Aalen-Johansen from plain SQL to 1e-12, at six horizons');
SELECT is((SELECT count(*) FROM computed c
             CROSS JOIN (VALUES (0), (7), (30), (90), (180), (364)) h(days)
             CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE outcome = 'won' AND age <= h.days)::float8
                                        / count(*) FILTER (WHERE outcome IS NOT NULL) AS naive
                                   FROM surv_input i WHERE i.seed = c.seed AND i.cohort = c.cohort) ref
            WHERE sales_kpi.naive_win_rate(c.s, make_interval(days => h.days)) IS DISTINCT FROM ref.naive),
          0::bigint, 'naive_win_rate = won within the horizon / all deals, exactly');
SELECT is((SELECT count(*) FROM computed c
            WHERE sales_kpi.median_time_to_close(c.s) IS DISTINCT FROM
                  (SELECT make_interval(days => min(r.age)) FROM reference r
                    WHERE r.seed = c.seed AND r.cohort = c.cohort AND r.s_after <= 0.5 + 1e-12)),
          0::bigint, 'median_time_to_close = first day the Kaplan-Meier survival reaches 1/2 (NULL if never)');
SELECT is((SELECT count(*) FROM computed c
            WHERE sales_kpi.survival_count(c.s) <> (SELECT count(*) FROM surv_input i
                                                    WHERE i.seed = c.seed AND i.cohort = c.cohort AND i.outcome IS NOT NULL)),
          0::bigint, 'survival_count counts the deals; NULL outcomes are skipped');
SELECT ok((SELECT bool_and(sales_kpi.cumulative_win_rate(s, '364 days') >= sales_kpi.naive_win_rate(s, '364 days') - 1e-12)
             FROM computed), 'with censoring, the Aalen-Johansen estimate is never below the naive share');
SELECT results_eq($$SELECT sales_kpi.survival_count(s), sales_kpi.cumulative_win_rate(s, '30 days'), sales_kpi.median_time_to_close(s)
                      FROM (SELECT sales_kpi.survival_agg(make_interval(days => age), outcome) AS s FROM surv_input WHERE false) x$$,
                  $$VALUES (0::bigint, NULL::float8, NULL::interval)$$, 'no rows: count 0 and NULL accessors');

-- forced parallel query
\ir include/force_parallel.psql
SELECT matches(pg_temp.plan_of('SELECT sales_kpi.survival_agg(make_interval(days => age), outcome) FROM surv_input'),
               'Partial Aggregate', 'the parallel plan shows partial aggregation');
SELECT is((SELECT sales_kpi.survival_agg(make_interval(days => age), outcome)::text FROM surv_input),
          (SELECT sales_kpi.rollup(s)::text FROM computed),
          'parallel aggregate of all rows = rollup of the serial cohort summaries');
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- moving window (inverse transition) = recomputed window
SELECT is((SELECT count(*) FROM (
             SELECT seed, id, sales_kpi.survival_agg(make_interval(days => age), outcome)
                                  OVER (PARTITION BY seed ORDER BY id ROWS BETWEEN 49 PRECEDING AND CURRENT ROW) AS s
               FROM surv_input WHERE id <= 1500) m
             CROSS JOIN LATERAL (SELECT sales_kpi.survival_agg(make_interval(days => age), outcome) AS s
                                   FROM surv_input i WHERE i.seed = m.seed AND i.id BETWEEN m.id - 49 AND m.id) r
            WHERE m.s::text <> r.s::text), 0::bigint,
          'a 50-row moving window equals the window recomputed, row by row');

-- rollup, text and binary round trips
SELECT is((SELECT count(*) FROM (SELECT seed, cohort, sales_kpi.rollup(s) AS s
                                   FROM (SELECT seed, cohort, id % 4 AS part,
                                                sales_kpi.survival_agg(make_interval(days => age), outcome) AS s
                                           FROM surv_input GROUP BY seed, cohort, id % 4) p
                                  GROUP BY seed, cohort) r
             JOIN computed c USING (seed, cohort) WHERE r.s::text <> c.s::text), 0::bigint,
          'rollup of partial summaries = survival_agg of all rows');
SELECT is((SELECT count(*) FROM computed WHERE s::text::sales_kpi.survival::text <> s::text), 0::bigint,
          'text output reads back to the same value');
SELECT format('/tmp/sales_kpi_surv_%s.bin', pg_backend_pid()) AS copy_file \gset
COPY computed TO :'copy_file' (FORMAT binary);
CREATE TEMP TABLE bin_in (LIKE computed);
COPY bin_in FROM :'copy_file' (FORMAT binary);
SELECT is((SELECT count(*) FROM bin_in b JOIN computed c USING (seed, cohort) WHERE b.s::text <> c.s::text)
          + (SELECT count(*) FROM computed) - (SELECT count(*) FROM bin_in), 0::bigint,
          'survival summaries survive COPY BINARY unchanged');

-- the compact form: only non-empty bins, the same summary for every reader
CREATE TEMP TABLE forms AS
SELECT seed, cohort, s AS full_form, sales_kpi.compact(s) AS compact_form FROM computed
UNION ALL
-- ages in the weekly, monthly and overflow bins too
SELECT 0, g % 3, sales_kpi.survival_agg(make_interval(days => g * 37 % 5000), (ARRAY['won', 'lost', 'open'])[1 + g % 3]),
       sales_kpi.compact(sales_kpi.survival_agg(make_interval(days => g * 37 % 5000), (ARRAY['won', 'lost', 'open'])[1 + g % 3]))
  FROM generate_series(1, 3000) g GROUP BY g % 3
UNION ALL
-- every bin filled: the compact form would be larger
SELECT 0, 3, sales_kpi.survival_agg(make_interval(days => g), 'won'),
       sales_kpi.compact(sales_kpi.survival_agg(make_interval(days => g), 'won'))
  FROM generate_series(0, 4000) g
UNION ALL
SELECT -1, 0, s, sales_kpi.compact(s) FROM (SELECT sales_kpi.survival_agg(interval '1 day', 'won') AS s WHERE false) e;
SELECT is((SELECT count(*) FROM forms
            WHERE compact_form::text IS DISTINCT FROM full_form::text
               OR sales_kpi.survival_send(compact_form) IS DISTINCT FROM sales_kpi.survival_send(full_form)
               -- in memory the full form takes 6264 bytes, a compact one 16 per
               -- non-empty bin; past 390 bins compact() keeps the full form
               OR pg_column_size(sales_kpi.compact(full_form))
                  <> least(16 + 16 * json_array_length((full_form::text)::json -> 'days'), 6264)
               OR sales_kpi.compact(compact_form)::text IS DISTINCT FROM compact_form::text),
          0::bigint, 'compact: same text and binary forms, 16 bytes per bin up to the full size, compact of compact unchanged');
SELECT is((SELECT count(*) FROM forms, (VALUES (interval '0'), ('30 days'), ('364 days'), ('800 days'), ('4000 days')) h(h)
            WHERE (sales_kpi.survival_count(compact_form), sales_kpi.cumulative_win_rate(compact_form, h),
                   sales_kpi.naive_win_rate(compact_form, h), sales_kpi.median_time_to_close(compact_form))
                  IS DISTINCT FROM
                  (sales_kpi.survival_count(full_form), sales_kpi.cumulative_win_rate(full_form, h),
                   sales_kpi.naive_win_rate(full_form, h), sales_kpi.median_time_to_close(full_form))),
          0::bigint, 'compact: every accessor gives the same result at every horizon');
SELECT is((SELECT count(*) FROM (
             SELECT sales_kpi.rollup(f.full_form ORDER BY f.seed, f.cohort) AS a,
                    sales_kpi.rollup(f.compact_form ORDER BY f.seed, f.cohort) AS b,
                    sales_kpi.rollup(CASE WHEN f.cohort % 2 = 0 THEN f.compact_form ELSE f.full_form END
                                     ORDER BY f.seed, f.cohort) AS c
               FROM forms f GROUP BY f.seed) r
            WHERE r.b::text <> r.a::text OR r.c::text <> r.a::text), 0::bigint,
          'rollup of compact summaries, or of both forms mixed, equals rollup of the full ones');
SELECT is((SELECT count(*) FROM forms a JOIN forms b ON b.seed = a.seed AND b.cohort <> a.cohort
            WHERE sales_kpi.survival_combine(a.compact_form, b.compact_form)::text
                  <> sales_kpi.survival_combine(a.full_form, b.full_form)::text
               OR sales_kpi.survival_combine(a.full_form, b.compact_form)::text
                  <> sales_kpi.survival_combine(a.full_form, b.full_form)::text), 0::bigint,
          'combine called directly on compact values equals combine of the full ones');
SELECT is((SELECT count(*) FROM forms
            WHERE sales_kpi.survival_agg_trans(compact_form, '400 days', 'won')::text
                  <> sales_kpi.survival_agg_trans(full_form, '400 days', 'won')::text), 0::bigint,
          'a transition called on a compact value adds to it like on the full one');
SELECT throws_ok($$SELECT sales_kpi.survival_agg_inv(sales_kpi.compact(sales_kpi.survival_agg(interval '1 day', 'won')),
                                                     '2 days', 'won')$$,
                 '22023', NULL, 'removing a deal a compact value does not hold is an error');

-- a full value is checked before it is read: the bytes of one deal won on
-- day 5, with n written as 1 (consistent) and as 5 (corrupt), typed as
-- survival through the catalog (only a superuser can do this)
CREATE TEMP TABLE forged (n int, b bytea);
INSERT INTO forged
SELECT n, decode('01000000' || '31565253' || '06020000'
                 || lpad(to_hex(n), 2, '0') || repeat('00', 7)
                 || '0100000000000000' || repeat('00', 16)
                 || repeat('00', 5 * 12) || '01000000' || repeat('00', 8) || repeat('00', 512 * 12), 'hex')
  FROM (VALUES (1), (5)) v(n);
UPDATE pg_attribute SET atttypid = 'sales_kpi.survival'::regtype, attalign = 'd'
 WHERE attrelid = 'pg_temp.forged'::regclass AND attname = 'b';
SELECT is((SELECT b::text FROM forged WHERE n = 1), '{"v":1,"n":1,"days":[[5,1,0,0]]}',
          'a consistent full value typed from its bytes reads back');
SELECT throws_ok($$SELECT sales_kpi.survival_count(b) FROM forged WHERE n = 5$$, 'XX001', NULL,
                 'a full value whose counts do not add up is refused as corrupt');

SELECT * FROM finish();
ROLLBACK;
