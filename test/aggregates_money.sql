-- weighted_pipeline and winloss_agg against plain-SQL references on random
-- data (several seeds; skewed amounts with mixed scales, ties, NULLs, tiny
-- and large groups), under forced parallel query, through rollup of
-- arbitrary partitions, in moving windows, and through text and binary I/O.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(21);

-- a real table (temporary tables are not scanned in parallel)
CREATE TABLE agg_input AS
SELECT s.seed, g AS id,
       -- group sizes from 1 to thousands
       CASE WHEN g <= 3 THEN g ELSE 4 + (g % 7) END AS grp,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 8) < 0.04 THEN NULL
            WHEN g % 11 = 0 THEN 5000    -- ties: many identical amounts
            ELSE round((power(sales_kpi.demo_random(s.seed, g * 8 + 1), 3) * 250000)::numeric, g % 4)
            END AS amount,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 8 + 2) < 0.03 THEN NULL
            WHEN sales_kpi.demo_random(s.seed, g * 8 + 3) < 0.1 THEN 1
            ELSE round(sales_kpi.demo_random(s.seed, g * 8 + 4)::numeric, 1 + g % 3)
            END AS probability,
       CASE WHEN sales_kpi.demo_random(s.seed, g * 8 + 5) < 0.05 THEN NULL
            ELSE sales_kpi.demo_random(s.seed, g * 8 + 6) < 0.2 + 0.1 * s.seed END AS won
  FROM (VALUES (1), (2), (3)) s(seed), generate_series(1, 30000) g;
CREATE INDEX ON agg_input (seed, id);
ANALYZE agg_input;

CREATE TEMP VIEW reference AS
SELECT seed, grp,
       sum(amount * probability) AS weighted,
       count(*) FILTER (WHERE won) AS won,
       count(*) FILTER (WHERE NOT won) AS lost,
       sum(amount) FILTER (WHERE won) AS won_amount,
       avg(amount) FILTER (WHERE won) AS avg_won_amount
  FROM agg_input GROUP BY seed, grp;

CREATE TEMP VIEW computed AS
SELECT seed, grp,
       sales_kpi.weighted_pipeline(amount, probability) AS weighted,
       sales_kpi.winloss_agg(won, amount) AS w
  FROM agg_input GROUP BY seed, grp;

CREATE TEMP TABLE serial_result AS SELECT * FROM computed;

SELECT is((SELECT count(*) FROM serial_result r JOIN reference f USING (seed, grp)
            WHERE r.weighted::text IS DISTINCT FROM f.weighted::text), 0::bigint,
          'weighted_pipeline = sum(amount * probability) to the last digit, per group and seed');
SELECT is((SELECT count(*) FROM serial_result r JOIN reference f USING (seed, grp)
            WHERE sales_kpi.won_count(r.w) <> f.won OR sales_kpi.lost_count(r.w) <> f.lost), 0::bigint,
          'won_count and lost_count = count(*) filtered');
SELECT is((SELECT count(*) FROM serial_result r JOIN reference f USING (seed, grp)
            WHERE sales_kpi.win_rate(r.w) IS DISTINCT FROM f.won::float8 / nullif(f.won + f.lost, 0)), 0::bigint,
          'win_rate = won / (won + lost)');
SELECT is((SELECT count(*) FROM serial_result r JOIN reference f USING (seed, grp)
            WHERE sales_kpi.won_amount(r.w)::text IS DISTINCT FROM f.won_amount::text
               OR sales_kpi.avg_won_amount(r.w)::text IS DISTINCT FROM f.avg_won_amount::text), 0::bigint,
          'won_amount and avg_won_amount = sum() and avg() of won amounts, to the last digit');

-- Wilson score interval from its formula, z = Phi^-1(0.975) and Phi^-1(0.95)
SELECT is((SELECT count(*) FROM serial_result r JOIN reference f USING (seed, grp)
             CROSS JOIN (VALUES (0.95::float8, 1.959963984540054::float8), (0.90, 1.6448536269514722)) c(conf, z)
             CROSS JOIN LATERAL (SELECT f.won::float8 / nullif(f.won + f.lost, 0) AS p,
                                        nullif(f.won + f.lost, 0)::float8 AS n) x
            -- a NULL result counts as a failure
            WHERE x.n IS NOT NULL
              AND coalesce(abs(sales_kpi.wilson_lower(r.w, c.conf)
                               - (x.p + c.z^2 / (2 * x.n) - c.z * sqrt(x.p * (1 - x.p) / x.n + c.z^2 / (4 * x.n^2))) / (1 + c.z^2 / x.n)) > 1e-12
                           OR abs(sales_kpi.wilson_upper(r.w, c.conf)
                               - (x.p + c.z^2 / (2 * x.n) + c.z * sqrt(x.p * (1 - x.p) / x.n + c.z^2 / (4 * x.n^2))) / (1 + c.z^2 / x.n)) > 1e-12,
                           true)),
          0::bigint, 'wilson_lower/upper = the Wilson score formula to 1e-12 (95% and 90%)');

-- empty input: NULL, not division by zero
SELECT ok((SELECT sales_kpi.weighted_pipeline(amount, probability) IS NULL FROM agg_input WHERE false),
          'weighted_pipeline of no rows is NULL');
SELECT results_eq($$SELECT sales_kpi.win_rate(w), sales_kpi.wilson_lower(w), sales_kpi.won_amount(w), sales_kpi.avg_won_amount(w), sales_kpi.won_count(w)
                      FROM (SELECT sales_kpi.winloss_agg(won, amount) w FROM agg_input WHERE false) s$$,
                  $$VALUES (NULL::float8, NULL::float8, NULL::numeric, NULL::numeric, 0::bigint)$$,
                  'winloss of no rows: NULL rates and amounts, zero counts');
SELECT ok((SELECT sales_kpi.weighted_pipeline(amount, probability) IS NULL
             FROM (VALUES (NULL::numeric, 0.5::numeric), (10, NULL)) v(amount, probability)),
          'rows with a NULL argument are skipped');

-- forced parallel query: the plan aggregates partially in workers, and the
-- results are the same
\ir include/force_parallel.psql
SET LOCAL enable_hashagg = off;
SELECT matches(pg_temp.plan_of('SELECT seed, grp, sales_kpi.weighted_pipeline(amount, probability), sales_kpi.winloss_agg(won, amount) FROM agg_input GROUP BY seed, grp'),
               'Partial (Group)?Aggregate', 'the parallel plan shows partial aggregation');
SELECT matches(pg_temp.plan_of('SELECT sales_kpi.weighted_pipeline(amount, probability), sales_kpi.winloss_agg(won) FROM agg_input'),
               'Partial Aggregate', 'an ungrouped parallel plan shows partial aggregation');
SELECT is((SELECT count(*) FROM computed c JOIN serial_result s USING (seed, grp)
            WHERE c.weighted::text IS DISTINCT FROM s.weighted::text OR c.w::text IS DISTINCT FROM s.w::text), 0::bigint,
          'parallel results equal serial results exactly');
SELECT is((SELECT sales_kpi.weighted_pipeline(amount, probability)::text FROM agg_input),
          (SELECT sum(amount * probability)::text FROM agg_input),
          'parallel ungrouped weighted_pipeline = sum(amount * probability)');
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET enable_hashagg;

-- rollup over arbitrary partitions equals the aggregate of the whole
CREATE TEMP TABLE parts AS
SELECT seed, grp, id % 5 AS part, sales_kpi.winloss_agg(won, amount) AS w
  FROM agg_input GROUP BY seed, grp, id % 5;
SELECT is((SELECT count(*) FROM (SELECT seed, grp, sales_kpi.rollup(w) AS w FROM parts GROUP BY seed, grp) r
             JOIN serial_result s USING (seed, grp)
            WHERE r.w::text IS DISTINCT FROM s.w::text), 0::bigint,
          'rollup of partial winloss summaries = winloss_agg of all rows');
SELECT is((SELECT sales_kpi.rollup(w)::text FROM parts),
          (SELECT sales_kpi.winloss_agg(won, amount)::text FROM agg_input),
          'rollup across groups = the ungrouped aggregate');
SELECT is((SELECT sales_kpi.rollup(w)::text FROM (SELECT w FROM parts UNION ALL SELECT NULL) x),
          (SELECT sales_kpi.rollup(w)::text FROM parts), 'rollup skips NULL summaries');

-- moving windows (inverse transitions) equal the window recomputed from scratch
CREATE TEMP TABLE moving AS
SELECT seed, id,
       sales_kpi.weighted_pipeline(amount, probability) OVER w AS weighted,
       sales_kpi.winloss_agg(won, amount) OVER w AS wl,
       sales_kpi.winloss_agg(won) OVER w AS wl_plain
  FROM agg_input WHERE id <= 3000
WINDOW w AS (PARTITION BY seed ORDER BY id ROWS BETWEEN 11 PRECEDING AND CURRENT ROW);
ANALYZE moving;
SELECT is((SELECT count(*) FROM moving m
             CROSS JOIN LATERAL (SELECT sum(a.amount * a.probability) AS weighted,
                                        count(*) FILTER (WHERE a.won) AS won,
                                        count(*) FILTER (WHERE NOT a.won) AS lost,
                                        sum(a.amount) FILTER (WHERE a.won) AS won_amount
                                   FROM agg_input a
                                  WHERE a.seed = m.seed AND a.id BETWEEN m.id - 11 AND m.id) r
            WHERE m.weighted IS DISTINCT FROM r.weighted
               OR sales_kpi.won_count(m.wl) <> r.won OR sales_kpi.lost_count(m.wl) <> r.lost
               OR sales_kpi.won_amount(m.wl) IS DISTINCT FROM r.won_amount
               OR sales_kpi.won_count(m.wl_plain) <> r.won OR sales_kpi.lost_count(m.wl_plain) <> r.lost),
          0::bigint, 'a 12-row moving window equals the window recomputed, row by row');
SELECT ok(pg_temp.plan_of('SELECT sales_kpi.winloss_agg(won) OVER (ORDER BY id ROWS BETWEEN 11 PRECEDING AND CURRENT ROW) FROM agg_input') ~ 'WindowAgg',
          'the moving window runs as a window aggregate');

-- text round trips
SELECT is((SELECT count(*) FROM serial_result WHERE w::text::sales_kpi.winloss::text <> w::text), 0::bigint,
          'winloss text output reads back to the same value');
SELECT is((SELECT count(*) FROM (SELECT seed, grp, sales_kpi.weighted_pipeline_trans('{"v":1,"n":0,"sum":"0"}', amount, probability) AS s
                                   FROM agg_input WHERE id < 50) x
            WHERE s::text::sales_kpi.weighted_sum::text <> s::text), 0::bigint,
          'weighted_sum text output reads back to the same value');

-- binary round trips through COPY (FORMAT binary)
CREATE TEMP TABLE bin_out AS
SELECT seed, grp, w, sales_kpi.weighted_pipeline_trans('{"v":1,"n":0,"sum":"0"}', 1234.5678, 0.125) AS s FROM serial_result;
SELECT format('/tmp/sales_kpi_copy_%s.bin', pg_backend_pid()) AS copy_file \gset
COPY bin_out TO :'copy_file' (FORMAT binary);
CREATE TEMP TABLE bin_in (LIKE bin_out);
COPY bin_in FROM :'copy_file' (FORMAT binary);
SELECT is((SELECT count(*) FROM bin_in), (SELECT count(*) FROM bin_out), 'COPY BINARY reads every row back');
SELECT is((SELECT count(*) FROM bin_in i JOIN bin_out o USING (seed, grp)
            WHERE i.w::text <> o.w::text OR i.s::text <> o.s::text), 0::bigint,
          'winloss and weighted_sum survive COPY BINARY unchanged');

SELECT * FROM finish();
ROLLBACK;
