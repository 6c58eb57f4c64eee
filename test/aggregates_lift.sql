-- lift_agg against plain-SQL formulas on random data (several seeds, tiny
-- groups with zero cells), under forced parallel query, in moving windows,
-- through rollup and through text and binary I/O.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(8);

CREATE TABLE lift_input AS
SELECT s.seed, g AS id, CASE WHEN g <= 4 THEN g ELSE 5 + g % 9 END AS grp,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 4) < 0.02 THEN NULL
            ELSE sales_kpi.demo_random(s.seed, g * 4 + 1) < 0.35 END AS factor,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 4 + 2) < 0.02 THEN NULL
            ELSE sales_kpi.demo_random(s.seed, g * 4 + 3) < 0.15 + 0.2 * (g % 2) END AS outcome
  FROM (VALUES (1), (2), (3)) s(seed), generate_series(1, 20000) g;
CREATE INDEX ON lift_input (seed, id);
ANALYZE lift_input;

CREATE TEMP TABLE computed AS
SELECT seed, grp, sales_kpi.lift_agg(outcome, factor) AS l FROM lift_input GROUP BY seed, grp;

-- the 2x2 table, and the Haldane-Anscombe corrected cells when one is zero
CREATE TEMP TABLE reference AS
SELECT seed, grp, a, b, c, d,
       a::float8 / nullif(a + b, 0) AS rate_with, c::float8 / nullif(c + d, 0) AS rate_without,
       CASE WHEN least(a, b, c, d) = 0 THEN 0.5 ELSE 0 END AS k
  FROM (SELECT seed, grp,
               count(*) FILTER (WHERE factor AND outcome) AS a, count(*) FILTER (WHERE factor AND NOT outcome) AS b,
               count(*) FILTER (WHERE NOT factor AND outcome) AS c, count(*) FILTER (WHERE NOT factor AND NOT outcome) AS d
          FROM lift_input GROUP BY seed, grp) t;

SELECT is((SELECT count(*) FROM computed c JOIN reference r USING (seed, grp)
            WHERE sales_kpi.rate_with(c.l) IS DISTINCT FROM r.rate_with
               OR sales_kpi.rate_without(c.l) IS DISTINCT FROM r.rate_without
               OR sales_kpi.lift(c.l) IS DISTINCT FROM r.rate_with / nullif(r.rate_without, 0)),
          0::bigint, 'rate_with, rate_without and lift equal the SQL shares exactly');
SELECT is((SELECT count(*) FROM computed c JOIN reference r USING (seed, grp)
             CROSS JOIN LATERAL (SELECT ln((r.a + r.k) * (r.d + r.k) / ((r.b + r.k) * (r.c + r.k))) AS lor,
                                        sqrt(1 / (r.a + r.k) + 1 / (r.b + r.k) + 1 / (r.c + r.k) + 1 / (r.d + r.k)) AS se) x
            WHERE r.a + r.b > 0 AND r.c + r.d > 0
              AND coalesce(abs(sales_kpi.odds_ratio(c.l) / exp(x.lor) - 1) > 1e-12
                        OR abs(sales_kpi.odds_ratio_lower(c.l) / exp(x.lor - 1.959963984540054 * x.se) - 1) > 1e-12
                        OR abs(sales_kpi.odds_ratio_upper(c.l) / exp(x.lor + 1.959963984540054 * x.se) - 1) > 1e-12, true)),
          0::bigint, 'odds ratio and its 95% Woolf interval (0.5 added to zero cells) to 1e-12');
SELECT ok((SELECT count(*) FROM reference WHERE k > 0) > 0, 'some groups have a zero cell');

\ir include/force_parallel.psql
SELECT matches(pg_temp.plan_of('SELECT sales_kpi.lift_agg(outcome, factor) FROM lift_input'), 'Partial Aggregate',
               'the parallel plan shows partial aggregation');
SELECT is((SELECT sales_kpi.lift_agg(outcome, factor)::text FROM lift_input), (SELECT sales_kpi.rollup(l)::text FROM computed),
          'parallel aggregate of all rows = rollup of the serial group summaries');
RESET force_parallel_mode;

SELECT is((SELECT count(*) FROM (
             SELECT seed, id, sales_kpi.lift_agg(outcome, factor) OVER (PARTITION BY seed ORDER BY id ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS l
               FROM lift_input WHERE id <= 2000) m
             CROSS JOIN LATERAL (SELECT sales_kpi.lift_agg(outcome, factor) AS l FROM lift_input i
                                  WHERE i.seed = m.seed AND i.id BETWEEN m.id - 29 AND m.id) r
            WHERE m.l::text <> r.l::text), 0::bigint, 'a 30-row moving window equals the window recomputed');
SELECT is((SELECT count(*) FROM computed WHERE l::text::sales_kpi.lift::text <> l::text), 0::bigint,
          'text output reads back to the same value');
SELECT format('/tmp/sales_kpi_lift_%s.bin', pg_backend_pid()) AS copy_file \gset
COPY computed TO :'copy_file' (FORMAT binary);
CREATE TEMP TABLE bin_in (LIKE computed);
COPY bin_in FROM :'copy_file' (FORMAT binary);
SELECT is((SELECT count(*) FROM bin_in b JOIN computed c USING (seed, grp) WHERE b.l::text = c.l::text),
          (SELECT count(*) FROM computed), 'lift summaries survive COPY BINARY unchanged');

SELECT * FROM finish();
ROLLBACK;
