-- What a hostile or careless caller gets from the extension's functions,
-- settings and install script: an error with a clear SQLSTATE, never a
-- crash, a wrapped number or a value that cannot be read back.  The
-- numbers follow the findings of the 0.1.0 security review; 3 (queries
-- under a hostile search_path) is test/hostile_search_path.sh and 6
-- (concurrent writers of one deal) is test/concurrency.sh.
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 1. The transition functions that are not strict, called directly with
-- NULLs (each of these crashed the server in 0.1.0): a NULL summary starts
-- empty, an inverse of a NULL summary is NULL, a NULL row changes nothing.
SELECT sales_kpi.funnel_trans(NULL, 1);
SELECT sales_kpi.funnel_trans(NULL, NULL);
SELECT sales_kpi.funnel_trans(NULL, 2, true);
SELECT sales_kpi.funnel_inv(NULL, NULL);
SELECT sales_kpi.funnel_inv(NULL, 1, true);
SELECT sales_kpi.funnel_inv('{"v":1,"positions":[[1,2,1]]}', NULL, true);
SELECT sales_kpi.winloss_amount_trans(NULL, true, 1);
SELECT sales_kpi.winloss_amount_trans(NULL, NULL, NULL);
SELECT sales_kpi.winloss_amount_trans(NULL, false, NULL);
SELECT sales_kpi.winloss_amount_inv(NULL, NULL, NULL);
SELECT sales_kpi.winloss_amount_inv(NULL, true, 1);
-- a direct call never changes the value it is given
WITH s(f) AS (SELECT '{"v":1,"positions":[[1,1,0]]}'::sales_kpi.funnel)
SELECT sales_kpi.funnel_trans(f, 1), f FROM s;
-- an aggregate built on them without an initial state starts empty
CREATE AGGREGATE regress_funnel(integer) (SFUNC = sales_kpi.funnel_trans, STYPE = sales_kpi.funnel);
SELECT regress_funnel(p) FROM (VALUES (1), (NULL), (3)) v(p);
SELECT regress_funnel(p) IS NULL AS no_rows_no_summary FROM (VALUES (NULL::integer)) v(p);
DROP AGGREGATE regress_funnel(integer);
-- removing what a summary does not hold is an error, not a negative count
SELECT sales_kpi.funnel_inv('{"v":1,"positions":[]}', 1);
SELECT sales_kpi.funnel_inv('{"v":1,"positions":[[1,2,0]]}', 1, true);
SELECT sales_kpi.winloss_inv('{"v":1,"won":0,"lost":0,"won_with_amount":0,"won_amount":"0"}', false);
SELECT sales_kpi.winloss_amount_inv('{"v":1,"won":1,"lost":0,"won_with_amount":1,"won_amount":"5"}', true, 6);
SELECT sales_kpi.weighted_pipeline_inv('{"v":1,"n":0,"sum":"0"}', 1, 0.5);
SELECT sales_kpi.lift_inv('{"v":1,"with_true":0,"with_false":0,"without_true":0,"without_false":0}', true, true);
-- was an internal error (XX000) in 0.1.0
SELECT sales_kpi.survival_agg_inv('{"v":1,"n":0,"days":[]}', '1 day', 'won');

-- Support functions are not for PUBLIC; the aggregates, casts and
-- accessors still work for a role that may use the schema.
CREATE ROLE regress_hardening_user;
GRANT USAGE ON SCHEMA sales_kpi TO regress_hardening_user;
SET ROLE regress_hardening_user;
SELECT sales_kpi.funnel_trans(NULL, 1);
SELECT sales_kpi.winloss_combine('{"v":1,"won":1,"lost":0,"won_with_amount":0,"won_amount":"0"}',
                                 '{"v":1,"won":1,"lost":0,"won_with_amount":0,"won_amount":"0"}');
SELECT sales_kpi.funnel_agg(p, p = 2) FROM generate_series(1, 3) p;
SELECT sales_kpi.win_rate('{"v":1,"won":3,"lost":1,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss);
SELECT sales_kpi.rollup(w) FROM (VALUES ('{"v":1,"won":3,"lost":1,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss)) v(w);
RESET ROLE;

-- 4. Every value a transition, combine, rollup or inverse can produce reads
-- back through both input functions: money beyond 38 digits and counts
-- beyond 2^63 - 1 are errors (22003) instead.
SELECT sales_kpi.winloss_agg(true, a) FROM (VALUES (6e37), (6e37)) v(a);
SELECT sales_kpi.winloss_agg(true, a) FROM (VALUES (5e37), (4e37)) v(a);
SELECT sales_kpi.winloss_agg(true, a)::text::sales_kpi.winloss FROM (VALUES (5e37), (4e37)) v(a);
SELECT sales_kpi.rollup(w) FROM (VALUES ('{"v":1,"won":9223372036854775807,"lost":0,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss),
                                        ('{"v":1,"won":1,"lost":0,"won_with_amount":0,"won_amount":"0"}')) v(w);
SELECT sales_kpi.rollup(w) FROM (VALUES ('{"v":1,"won":9223372036854775000,"lost":0,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss),
                                        ('{"v":1,"won":0,"lost":807,"won_with_amount":0,"won_amount":"0"}')) v(w);
-- won + lost must fit, or win_rate would divide by a wrapped count
SELECT '{"v":1,"won":9223372036854775807,"lost":1,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss;
SELECT sales_kpi.win_rate('{"v":1,"won":9223372036854775000,"lost":807,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss);
SELECT sales_kpi.rollup(d) FROM (VALUES
    ('{"v":1,"n":9223372036854775807,"sum_us":"0","min_us":0,"max_us":0,"buckets":[[0,9223372036854775807]]}'::sales_kpi.duration_summary),
    ('{"v":1,"n":9223372036854775807,"sum_us":"0","min_us":0,"max_us":0,"buckets":[[0,9223372036854775807]]}')) v(d);
SELECT sales_kpi.rollup(f) FROM (VALUES ('{"v":1,"positions":[[1,9223372036854775807,0]]}'::sales_kpi.funnel),
                                        ('{"v":1,"positions":[[1,1,0]]}')) v(f);
-- the funnel's sums over positions are checked in the accessors too
SELECT sales_kpi.reached('{"v":1,"positions":[[1,9223372036854775807,0],[2,1,0]]}', 1);
SELECT sales_kpi.rollup(l) FROM (VALUES ('{"v":1,"with_true":9223372036854775807,"with_false":0,"without_true":0,"without_false":0}'::sales_kpi.lift),
                                        ('{"v":1,"with_true":1,"with_false":0,"without_true":0,"without_false":0}')) v(l);
SELECT sales_kpi.rate_with('{"v":1,"with_true":9223372036854775807,"with_false":9223372036854775807,"without_true":0,"without_false":0}');
SELECT sales_kpi.weighted_pipeline(a, 1) FROM (VALUES (6e37), (6e37)) v(a);
-- (test/binary_input.sql checks the binary input refuses what the text input
-- refuses)
-- an amount of scale 38 prints with a leading "0." and reads back (found by
-- the fuzzer: the input counted that zero as a 39th digit)
SELECT sales_kpi.winloss_agg(true, 0.00000000000000000000000000000000000001)::text::sales_kpi.winloss;
SELECT sales_kpi.weighted_pipeline_trans(sales_kpi.weighted_pipeline_trans('{"v":1,"n":0,"sum":"0"}', 1, 0.412247984695224543),
                                         1e-38, 0)::text::sales_kpi.weighted_sum;
SELECT '{"v":1,"n":1,"sum":"0.000000000000000000000000000000000000001"}'::sales_kpi.weighted_sum;

-- Intervals always contain their estimate (found by the fuzzer): the Wilson
-- bounds are exactly 1 when every deal was won and 0 when none was, and the
-- odds-ratio bounds are finite at a confidence within 1e-16 of 1.
SELECT sales_kpi.wilson_upper(w) AS upper_all_won, sales_kpi.wilson_lower(w) <= sales_kpi.win_rate(w) AS lower_below
  FROM (VALUES ('{"v":1,"won":9,"lost":0,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss)) v(w);
SELECT sales_kpi.wilson_lower(w) AS lower_none_won
  FROM (VALUES ('{"v":1,"won":0,"lost":15,"won_with_amount":0,"won_amount":"0"}'::sales_kpi.winloss)) v(w);
SELECT round(sales_kpi.odds_ratio_lower(l, 0.9999999999999999)::numeric, 6) AS lower,
       round(sales_kpi.odds_ratio(l)::numeric, 6) AS odds_ratio,
       round(sales_kpi.odds_ratio_upper(l, 0.9999999999999999)::numeric, 6) AS upper
  FROM (VALUES ('{"v":1,"with_true":30,"with_false":70,"without_true":10,"without_false":90}'::sales_kpi.lift)) v(l);

-- mrr_movement over a table's column compares each month with the one
-- before; it read the current value after fetching the previous row had
-- freed it (found under Valgrind: wrong labels on an assert-enabled server)
CREATE TEMP TABLE regress_mrr (account_id integer, month date, mrr numeric);
INSERT INTO regress_mrr VALUES (1, '2026-01-01', 100.0), (1, '2026-02-01', 150.0), (1, '2026-03-01', 120.0),
    (1, '2026-04-01', 120.0), (1, '2026-05-01', 0), (1, '2026-06-01', 80.0), (1, '2026-08-01', 90.0);
SELECT month, mrr, sales_kpi.mrr_movement(mrr) OVER w AS consecutive, sales_kpi.mrr_movement(mrr, month) OVER w AS by_month
  FROM regress_mrr WINDOW w AS (PARTITION BY account_id ORDER BY month) ORDER BY month;
-- A stored summary is checked when it is read, not only when it is input: a
-- value of another size or version is refused by every function.  Such a
-- value is made here by a cast that reinterprets the bytes of a type with
-- bytea's input (a superuser's tool).
CREATE TYPE regress_raw;
CREATE FUNCTION regress_raw_in(cstring) RETURNS regress_raw LANGUAGE internal IMMUTABLE STRICT AS 'byteain';
CREATE FUNCTION regress_raw_out(regress_raw) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'byteaout';
CREATE TYPE regress_raw (INPUT = regress_raw_in, OUTPUT = regress_raw_out,
                         INTERNALLENGTH = VARIABLE, ALIGNMENT = double, STORAGE = plain);
CREATE CAST (regress_raw AS sales_kpi.winloss) WITHOUT FUNCTION;
-- the right size (52 bytes after the header), version 2
SELECT sales_kpi.win_rate(('\x02' || repeat('00', 51))::regress_raw::sales_kpi.winloss);
-- one byte
SELECT sales_kpi.won_count('\x01'::regress_raw::sales_kpi.winloss);
SELECT sales_kpi.rollup(w) FROM (VALUES (('\x01' || repeat('00', 59))::regress_raw::sales_kpi.winloss)) v(w);
-- the right size and version: an empty summary
SELECT sales_kpi.win_rate(('\x01' || repeat('00', 51))::regress_raw::sales_kpi.winloss) IS NULL AS empty_summary_reads;
DROP TYPE regress_raw CASCADE;

-- 5. Unbounded series: instants must be finite, a series of periods is
-- bounded (these ran until statement_timeout in 0.1.0).
SELECT * FROM sales_kpi.periods('-infinity', '2026-01-01', 'month');
SELECT * FROM sales_kpi.periods('2026-01-01', 'infinity', 'month');
SELECT count(*) FROM sales_kpi.periods('1000-01-01', '2026-01-01', 'week');
SELECT count(*) FROM sales_kpi.periods('2000-01-01', '2026-01-01', 'week');
SELECT * FROM sales_kpi.gate_violations('-infinity');
SELECT * FROM sales_kpi.cohort_win_rate('-infinity');
SELECT * FROM sales_kpi.pipeline_creation('-infinity');
SELECT * FROM sales_kpi.forecast_accuracy('-infinity');
SELECT * FROM sales_kpi.org_attainment('-infinity');
SELECT * FROM sales_kpi.win_rate(as_of => 'infinity');
SELECT * FROM sales_kpi.stage_durations('infinity');

-- 7. A gate mode a writer cannot switch off: only a superuser may set
-- sales_kpi.stage_gate_mode.
SET ROLE regress_hardening_user;
SET sales_kpi.stage_gate_mode = 'off';
SELECT set_config('sales_kpi.stage_gate_mode', 'off', true);
RESET ROLE;
SET sales_kpi.stage_gate_mode = 'warn';
SHOW sales_kpi.stage_gate_mode;
RESET sales_kpi.stage_gate_mode;

REVOKE USAGE ON SCHEMA sales_kpi FROM regress_hardening_user;
DROP ROLE regress_hardening_user;

-- 2. The install refuses a schema someone else prepared.
\set regress_db :DBNAME
CREATE DATABASE regress_install_safety;
\c regress_install_safety
CREATE ROLE regress_schema_squatter;
GRANT CREATE ON DATABASE regress_install_safety TO regress_schema_squatter;
SET ROLE regress_schema_squatter;
CREATE SCHEMA sales_kpi;
RESET ROLE;
CREATE EXTENSION sales_kpi;
ALTER SCHEMA sales_kpi OWNER TO CURRENT_USER;
GRANT CREATE ON SCHEMA sales_kpi TO regress_schema_squatter;
CREATE EXTENSION sales_kpi;
REVOKE CREATE ON SCHEMA sales_kpi FROM regress_schema_squatter;
CREATE FUNCTION public.regress_always(numeric, integer) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR sales_kpi.>= (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.regress_always);
CREATE EXTENSION sales_kpi;
DROP OPERATOR sales_kpi.>= (numeric, integer);
DROP FUNCTION public.regress_always(numeric, integer);
-- an empty schema a superuser made (as a restore does) is fine
CREATE EXTENSION sales_kpi;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'sales_kpi') AS installed
  FROM pg_extension WHERE extname = 'sales_kpi';
\c :regress_db
DROP DATABASE regress_install_safety;
DROP ROLE regress_schema_squatter;
