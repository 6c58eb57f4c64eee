-- duration_agg against plain-SQL references on random data: exact count,
-- min, max and mean; percentiles within 1% of the exact lower quantile
-- (rank floor(q*(n-1))) from 1 second to 10 years; under forced parallel
-- query, through rollup of arbitrary partitions, and through text and
-- binary I/O.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(15);

-- log-uniform from 1 s to 10 years, with ties, sub-second values and tiny groups
CREATE TABLE dur_input AS
SELECT s.seed, g AS id,
       CASE WHEN g <= 3 THEN g ELSE 4 + (g % 5) END AS grp,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 4) < 0.03 THEN NULL
            WHEN g % 13 = 0 THEN interval '7 days'
            WHEN g % 97 = 0 THEN interval '0.25 seconds'
            ELSE make_interval(secs => floor(exp(sales_kpi.demo_random(s.seed, g * 4 + 1) * ln(315576000.0)) * 1e6) / 1e6)
            END AS d
  FROM (VALUES (1), (2), (3)) s(seed), generate_series(1, 20000) g;
ANALYZE dur_input;

CREATE TEMP TABLE computed AS
SELECT seed, grp, sales_kpi.duration_agg(d) AS s FROM dur_input GROUP BY seed, grp;

CREATE TEMP TABLE ranked AS
SELECT seed, grp, extract(epoch FROM d) * 1e6 AS us,
       row_number() OVER (PARTITION BY seed, grp ORDER BY d) - 1 AS r,
       count(*) OVER (PARTITION BY seed, grp) AS n
  FROM dur_input WHERE d IS NOT NULL;

SELECT is((SELECT count(*) FROM computed c
             JOIN (SELECT seed, grp, count(d) AS n, min(d) AS lo, max(d) AS hi,
                          avg(extract(epoch FROM d) * 1e6) AS mean_us
                     FROM dur_input GROUP BY seed, grp) f USING (seed, grp)
            WHERE sales_kpi.duration_count(c.s) <> f.n
               OR sales_kpi.min_duration(c.s) <> f.lo OR sales_kpi.max_duration(c.s) <> f.hi
               OR abs(extract(epoch FROM sales_kpi.mean(c.s)) * 1e6 - f.mean_us) > 0.5),
          0::bigint, 'count, min and max are exact; mean is exact to the microsecond');

SELECT is((SELECT count(*)
             FROM computed c
             CROSS JOIN (VALUES (0.0::float8), (0.01), (0.1), (0.25), (0.5), (0.75), (0.9), (0.99), (1.0)) q(q)
             JOIN ranked k ON k.seed = c.seed AND k.grp = c.grp AND k.r = floor(q.q * (k.n - 1))
            WHERE k.us BETWEEN 1e6 AND 315576000e6
              AND coalesce(abs(extract(epoch FROM sales_kpi.percentile(c.s, q.q)) * 1e6 - k.us) > 0.01 * k.us, true)),
          0::bigint, 'every percentile is within 1% of the exact lower quantile (values from 1 s to 10 years)');
SELECT is((SELECT count(*)
             FROM computed c
             CROSS JOIN (VALUES (0.0::float8), (0.01), (0.1), (0.25), (0.5), (0.75), (0.9), (0.99), (1.0)) q(q)
             JOIN ranked k ON k.seed = c.seed AND k.grp = c.grp AND k.r = floor(q.q * (k.n - 1))),
          (SELECT count(*) * 9 FROM computed WHERE sales_kpi.duration_count(s) > 0),
          'the percentile check above compared every group at every quantile');
SELECT is((SELECT count(*) FROM computed c
             JOIN (SELECT seed, grp, min(d) AS lo, max(d) AS hi FROM dur_input GROUP BY seed, grp) f USING (seed, grp)
            WHERE sales_kpi.percentile(c.s, 0) <> f.lo OR sales_kpi.percentile(c.s, 1) <> f.hi),
          0::bigint, 'percentile 0 and 1 are the exact min and max');
SELECT is((SELECT count(*) FROM computed WHERE sales_kpi.median(s) IS DISTINCT FROM sales_kpi.percentile(s, 0.5)),
          0::bigint, 'median = percentile 0.5');

-- empty input and NULLs
SELECT results_eq($$SELECT sales_kpi.duration_count(s), sales_kpi.mean(s), sales_kpi.median(s), sales_kpi.min_duration(s)
                      FROM (SELECT sales_kpi.duration_agg(d) AS s FROM dur_input WHERE false) x$$,
                  $$VALUES (0::bigint, NULL::interval, NULL::interval, NULL::interval)$$,
                  'no rows: count 0 and NULL accessors');
SELECT is((SELECT sales_kpi.duration_count(sales_kpi.duration_agg(d)) FROM dur_input WHERE seed = 1),
          (SELECT count(d) FROM dur_input WHERE seed = 1), 'NULL durations are skipped');

-- forced parallel query
\ir include/force_parallel.psql
SELECT matches(pg_temp.plan_of('SELECT sales_kpi.duration_agg(d) FROM dur_input'), 'Partial Aggregate',
               'the parallel plan shows partial aggregation');
SELECT is((SELECT sales_kpi.duration_agg(d)::text FROM dur_input),
          (SELECT sales_kpi.rollup(s)::text FROM computed),
          'parallel aggregate of all rows = rollup of the serial group summaries');
SELECT is((SELECT count(*) FROM (SELECT seed, grp, sales_kpi.duration_agg(d) AS s FROM dur_input GROUP BY seed, grp) p
             JOIN computed c USING (seed, grp) WHERE p.s::text <> c.s::text), 0::bigint,
          'grouped parallel results equal serial results exactly');
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- rollup over arbitrary partitions equals the aggregate of the whole
SELECT is((SELECT count(*) FROM (SELECT seed, grp, sales_kpi.rollup(s) AS s
                                   FROM (SELECT seed, grp, id % 7 AS part, sales_kpi.duration_agg(d) AS s
                                           FROM dur_input GROUP BY seed, grp, id % 7) parts
                                  GROUP BY seed, grp) r
             JOIN computed c USING (seed, grp) WHERE r.s::text <> c.s::text), 0::bigint,
          'rollup of partial summaries = duration_agg of all rows');
SELECT ok((SELECT sales_kpi.rollup(s) IS NOT NULL FROM (SELECT s FROM computed UNION ALL SELECT NULL) x),
          'rollup skips NULL summaries');

-- text and binary round trips
SELECT is((SELECT count(*) FROM computed WHERE s::text::sales_kpi.duration_summary::text <> s::text), 0::bigint,
          'text output reads back to the same value');
SELECT format('/tmp/sales_kpi_dur_%s.bin', pg_backend_pid()) AS copy_file \gset
COPY computed TO :'copy_file' (FORMAT binary);
CREATE TEMP TABLE bin_in (LIKE computed);
COPY bin_in FROM :'copy_file' (FORMAT binary);
SELECT is((SELECT count(*) FROM bin_in), (SELECT count(*) FROM computed), 'COPY BINARY reads every row back');
SELECT is((SELECT count(*) FROM bin_in b JOIN computed c USING (seed, grp) WHERE b.s::text <> c.s::text), 0::bigint,
          'duration summaries survive COPY BINARY unchanged');

SELECT * FROM finish();
ROLLBACK;
