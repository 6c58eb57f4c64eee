-- funnel_agg against plain SQL on random funnels (several seeds, skipped
-- positions, tiny groups), under forced parallel query, in moving windows,
-- through rollup and through text and binary I/O.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(8);

CREATE TABLE funnel_input AS
SELECT s.seed, g AS id, CASE WHEN g <= 3 THEN g ELSE 4 + g % 5 END AS grp,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 3) < 0.02 THEN NULL
            ELSE 1 + floor(power(sales_kpi.demo_random(s.seed, g * 3 + 1), 2) * (3 + s.seed * 2))::int END AS pos,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 3 + 2) < 0.1 THEN NULL
            ELSE sales_kpi.demo_random(s.seed, g * 3 + 2) < 0.4 END AS won
  FROM (VALUES (1), (2), (3)) s(seed), generate_series(1, 20000) g;
CREATE INDEX ON funnel_input (seed, id);
ANALYZE funnel_input;

CREATE TEMP TABLE computed AS
SELECT seed, grp, sales_kpi.funnel_agg(pos, won) AS f FROM funnel_input GROUP BY seed, grp;

-- reached(k) and won from k by plain SQL, for every group and position 1..9
CREATE TEMP TABLE reference AS
SELECT g.seed, g.grp, k.k,
       count(i.pos) FILTER (WHERE i.pos >= k.k) AS reached,
       count(i.pos) FILTER (WHERE i.pos >= k.k AND i.won) AS won
  FROM (SELECT DISTINCT seed, grp FROM funnel_input) g
 CROSS JOIN generate_series(1, 9) k(k)
  JOIN funnel_input i ON i.seed = g.seed AND i.grp = g.grp
 GROUP BY g.seed, g.grp, k.k;

SELECT is((SELECT count(*) FROM computed c JOIN reference r USING (seed, grp)
            WHERE sales_kpi.reached(c.f, r.k) <> r.reached
               OR sales_kpi.win_rate_from(c.f, r.k) IS DISTINCT FROM r.won::float8 / nullif(r.reached, 0)),
          0::bigint, 'reached(k) and win_rate_from(k) equal plain SQL for positions 1..9');
SELECT is((SELECT count(*) FROM computed c JOIN reference a USING (seed, grp)
             JOIN reference b ON b.seed = a.seed AND b.grp = a.grp AND b.k >= a.k
            WHERE sales_kpi.conversion(c.f, a.k, b.k) IS DISTINCT FROM b.reached::float8 / nullif(a.reached, 0)),
          0::bigint, 'conversion(from, to) = reached(to) / reached(from) for every pair');
SELECT is((SELECT count(*) FROM computed c
             JOIN LATERAL sales_kpi.stages(c.f) st ON true
             JOIN reference r ON r.seed = c.seed AND r.grp = c.grp AND r.k = st.position
             LEFT JOIN reference nx ON nx.seed = c.seed AND nx.grp = c.grp AND nx.k = st.position + 1
            WHERE st.reached <> r.reached
               OR st.win_rate_from IS DISTINCT FROM r.won::float8 / nullif(r.reached, 0)
               OR st.conversion_to_next IS DISTINCT FROM
                  CASE WHEN coalesce(nx.reached, 0) = 0 THEN NULL ELSE nx.reached::float8 / r.reached END),
          0::bigint, 'stages() rows agree with reached, conversion to next and win rate from');
SELECT is((SELECT count(*) FROM computed c
            WHERE (SELECT max(position) FROM sales_kpi.stages(c.f))
                  IS DISTINCT FROM (SELECT max(pos) FROM funnel_input i WHERE i.seed = c.seed AND i.grp = c.grp)),
          0::bigint, 'stages() runs up to the highest position reached');

\ir include/force_parallel.psql
SELECT matches(pg_temp.plan_of('SELECT sales_kpi.funnel_agg(pos, won) FROM funnel_input'), 'Partial Aggregate',
               'the parallel plan shows partial aggregation');
SELECT is((SELECT sales_kpi.funnel_agg(pos, won)::text FROM funnel_input), (SELECT sales_kpi.rollup(f)::text FROM computed),
          'parallel aggregate of all rows = rollup of the serial group summaries');
RESET force_parallel_mode;

SELECT is((SELECT count(*) FROM (
             SELECT seed, id, sales_kpi.funnel_agg(pos, won) OVER (PARTITION BY seed ORDER BY id ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS f
               FROM funnel_input WHERE id <= 2000) m
             CROSS JOIN LATERAL (SELECT sales_kpi.funnel_agg(pos, won) AS f FROM funnel_input i
                                  WHERE i.seed = m.seed AND i.id BETWEEN m.id - 19 AND m.id) r
            WHERE m.f::text <> r.f::text), 0::bigint, 'a 20-row moving window equals the window recomputed');
SELECT format('/tmp/sales_kpi_funnel_%s.bin', pg_backend_pid()) AS copy_file \gset
COPY computed TO :'copy_file' (FORMAT binary);
CREATE TEMP TABLE bin_in (LIKE computed);
COPY bin_in FROM :'copy_file' (FORMAT binary);
SELECT is((SELECT count(*) FROM bin_in b JOIN computed c USING (seed, grp)
            WHERE b.f::text = c.f::text AND c.f::text::sales_kpi.funnel::text = c.f::text),
          (SELECT count(*) FROM computed), 'funnel summaries survive text and COPY BINARY round trips unchanged');

SELECT * FROM finish();
ROLLBACK;
