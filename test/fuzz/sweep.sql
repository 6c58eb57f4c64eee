-- Argument sweep: every KPI function (one with a view of the same name),
-- every aggregate, every accessor of a summary type, the window functions
-- and the documented building blocks of schema sales_kpi, called with
-- argument values from per-type pools (NULL, infinities, extremes, empty
-- arrays, bogus text), one argument varied at a time from valid defaults,
-- plus seeded random combinations.
--
--   SELECT fuzz.sweep_plan(seed, n_random);           -- fills fuzz.sweep_call
--   SELECT format('SELECT fuzz.sweep_exec(%s)', id) FROM fuzz.sweep_call ORDER BY id \gexec
--
-- Each call is its own top-level statement (so statement_timeout, set to
-- 20s by the driver, bounds each one) and records its outcome in
-- fuzz.sweep_result.  A violation is SQLSTATE XX000/XX001 (or any class XX,
-- 53 or 58), 57014 (a timeout: unbounded work), P0001 (a bare RAISE), or a
-- result out of range: a rate outside [0,1], a negative count, a non-finite
-- number, a lower bound above its estimate or an upper bound below it, a
-- summary whose text form does not read back.  A crash is the connection
-- dying: the driver notices it and names the call that was running.

CREATE SCHEMA IF NOT EXISTS fuzz;

DROP TABLE IF EXISTS fuzz.sweep_call, fuzz.sweep_result;
CREATE TABLE fuzz.sweep_call (
    id int PRIMARY KEY,
    family text NOT NULL,       -- kpi, aggregate, moving aggregate, accessor, window, building block
    fn text NOT NULL,           -- the function's signature
    how text NOT NULL,          -- baseline, vary ARG, random
    sql text NOT NULL);
CREATE TABLE fuzz.sweep_result (
    id int PRIMARY KEY,
    outcome text NOT NULL,      -- ok, or the SQLSTATE
    violation text,             -- NULL when fine
    message text,
    rows bigint,
    ms double precision);

-- the summary types and a few values of each: empty, typical, extreme
CREATE OR REPLACE FUNCTION fuzz.summary_types() RETURNS text[]
    LANGUAGE sql IMMUTABLE AS
$$ SELECT '{weighted_sum,winloss,duration_summary,survival,lift,funnel}'::text[] $$;

CREATE OR REPLACE FUNCTION fuzz.summary_values(typ text) RETURNS text[]
    LANGUAGE sql IMMUTABLE AS $$
SELECT CASE typ
  WHEN 'weighted_sum' THEN ARRAY['{"v":1,"n":0,"sum":"0"}', '{"v":1,"n":3,"sum":"12345.6789"}',
      '{"v":1,"n":9223372036854775807,"sum":"99999999999999999999999999999999999999"}']
  WHEN 'winloss' THEN ARRAY['{"v":1,"won":0,"lost":0,"won_with_amount":0,"won_amount":"0"}',
      '{"v":1,"won":3,"lost":1,"won_with_amount":2,"won_amount":"24000.00"}',
      '{"v":1,"won":9223372036854775807,"lost":0,"won_with_amount":9223372036854775807,"won_amount":"99999999999999999999999999999999999999"}']
  WHEN 'duration_summary' THEN ARRAY['{"v":1,"n":0,"sum_us":"0","min_us":0,"max_us":0,"buckets":[]}',
      '{"v":1,"n":2,"sum_us":"2000000","min_us":1000000,"max_us":1000000,"buckets":[[1,2]]}',
      '{"v":1,"n":1,"sum_us":"9223372036854775807","min_us":9223372036854775807,"max_us":9223372036854775807,"buckets":[[990,1]]}']
  WHEN 'survival' THEN ARRAY['{"v":1,"n":0,"days":[]}',
      '{"v":1,"n":8,"days":[[0,1,0,0],[365,0,1,0],[366,0,0,1],[723,1,0,0],[730,0,1,0],[3670,0,0,1],[3700,1,1,0]]}',
      '{"v":1,"n":12884901885,"days":[[3700,4294967295,4294967295,4294967295]]}']
  WHEN 'lift' THEN ARRAY['{"v":1,"with_true":0,"with_false":0,"without_true":0,"without_false":0}',
      '{"v":1,"with_true":30,"with_false":70,"without_true":10,"without_false":90}',
      '{"v":1,"with_true":9223372036854775807,"with_false":9223372036854775807,"without_true":9223372036854775807,"without_false":9223372036854775807}']
  WHEN 'funnel' THEN ARRAY['{"v":1,"positions":[]}', '{"v":1,"positions":[[1,100,0],[2,50,5],[3,25,25]]}',
      '{"v":1,"positions":[[1,9223372036854775807,0],[64,9223372036854775807,9223372036854775807]]}']
END $$;

-- a valid value for an argument, as SQL text (by type and name)
CREATE OR REPLACE FUNCTION fuzz.sweep_valid(typ text, argname text) RETURNS text
    LANGUAGE sql STABLE AS $$
SELECT CASE
  WHEN typ LIKE 'sales_kpi.%' THEN quote_literal((fuzz.summary_values(substr(typ, 11)))[2]) || '::' || typ
  WHEN typ = 'timestamp with time zone' THEN
      CASE WHEN argname IN ('period_start', 'from_at', 'lo', 'p_start') THEN '''2026-07-01''::timestamptz'
           WHEN argname IN ('period_end', 'to_at', 'hi', 'p_end') THEN '''2026-10-01''::timestamptz'
           ELSE '''2026-10-15''::timestamptz' END
  WHEN typ = 'date' THEN CASE argname WHEN 'month' THEN '''2026-01-01''::date' ELSE '''2026-10-15''::date' END
  WHEN typ = 'interval' THEN CASE argname WHEN 'age' THEN '''10 days''::interval' ELSE '''90 days''::interval' END
  WHEN typ = 'integer' THEN CASE WHEN argname IN ('position', 'reached_position', 'from_position') THEN '2'
                                 WHEN argname = 'to_position' THEN '3' ELSE '5' END
  WHEN typ = 'bigint' THEN '1'
  WHEN typ = 'numeric' THEN CASE argname WHEN 'probability' THEN '0.5::numeric' ELSE '100::numeric' END
  WHEN typ = 'double precision' THEN CASE argname WHEN 'q' THEN '0.5::float8' ELSE '0.95::float8' END
  WHEN typ = 'boolean' THEN CASE argname WHEN 'open_only' THEN 'false' ELSE 'true' END
  WHEN typ = 'character' THEN '''EUR''::char(3)'
  WHEN typ = 'bigint[]' THEN '''{1,2,3}''::bigint[]'
  WHEN typ = 'text[]' THEN '''{}''::text[]'
  WHEN typ = 'timestamp with time zone[]' THEN '''{2026-01-01,2026-04-01}''::timestamptz[]'
  WHEN typ = 'text' THEN quote_literal(CASE argname
      WHEN 'dimension' THEN 'company' WHEN 'grain' THEN 'month' WHEN 'mode' THEN 'primary'
      WHEN 'weighting' THEN 'stage' WHEN 'variant' THEN 'all' WHEN 'outcome' THEN 'won'
      WHEN 'kind' THEN 'open'
      WHEN 'team' THEN coalesce((SELECT min(team) FROM sales_kpi.rep), 'x')
      ELSE 'x' END) || '::text'
END $$;

-- the values an argument is varied through, as SQL text
CREATE OR REPLACE FUNCTION fuzz.sweep_pool(typ text, argname text) RETURNS text[]
    LANGUAGE sql STABLE AS $$
SELECT CASE
  WHEN typ LIKE 'sales_kpi.%' THEN
      ARRAY['NULL::' || typ] ||
      ARRAY(SELECT quote_literal(v) || '::' || typ FROM unnest(fuzz.summary_values(substr(typ, 11))) v)
  WHEN typ = 'timestamp with time zone' THEN ARRAY['NULL::timestamptz', '''-infinity''::timestamptz',
      '''infinity''::timestamptz', '''4713-01-01 00:00:00+00 BC''::timestamptz',
      '''294276-12-31 00:00:00+00''::timestamptz', '''2026-10-15''::timestamptz', '''2026-01-01''::timestamptz']
  WHEN typ = 'date' THEN ARRAY['NULL::date', '''-infinity''::date', '''infinity''::date',
      '''4713-01-01 BC''::date', '''5874897-12-31''::date', '''2026-10-15''::date']
  WHEN typ = 'interval' THEN ARRAY['NULL::interval', '''-1 day''::interval', '''1000000 years''::interval',
      '''0''::interval', '''1 microsecond''::interval', '''-178000000 years''::interval', '''30 days''::interval']
  WHEN typ = 'integer' THEN ARRAY['NULL::integer', '-1', '0', '1', '64', '65', '2147483647', '(-2147483648)']
  WHEN typ = 'bigint' THEN ARRAY['NULL::bigint', '(-1)::bigint', '0::bigint', '9223372036854775807']
  WHEN typ = 'numeric' THEN ARRAY['NULL::numeric', '''NaN''::numeric', '''Infinity''::numeric',
      '''-Infinity''::numeric', '(-1)::numeric', '0::numeric', '1e30::numeric', '1e-38::numeric',
      '99999999999999999999999999999999999999::numeric']
  WHEN typ = 'double precision' THEN ARRAY['NULL::float8', '''NaN''::float8', '''Infinity''::float8',
      '''-Infinity''::float8', '(-1)::float8', '0::float8', '0.5::float8', '1::float8',
      '0.9999999999999999::float8', '5e-324::float8']
  WHEN typ = 'boolean' THEN ARRAY['NULL::boolean', 'true', 'false']
  WHEN typ = 'character' THEN ARRAY['NULL::char(3)', '''''::char(3)', '''EUR''::char(3)',
      '''XXX''::char(3)', '''eur''::char(3)']
  WHEN typ = 'bigint[]' THEN ARRAY['NULL::bigint[]', '''{}''::bigint[]', '''{NULL}''::bigint[]',
      '''{-1}''::bigint[]', '''{1,2,3}''::bigint[]', '''{9223372036854775807}''::bigint[]',
      '''{3,1,3,NULL,1}''::bigint[]', 'ARRAY(SELECT generate_series(1, 200000)::bigint)']
  WHEN typ = 'text[]' THEN ARRAY['NULL::text[]', '''{}''::text[]', '''{NULL}''::text[]',
      '''{bogus}''::text[]', '''{""}''::text[]']
  WHEN typ = 'timestamp with time zone[]' THEN ARRAY['NULL::timestamptz[]', '''{}''::timestamptz[]',
      '''{NULL}''::timestamptz[]', '''{infinity}''::timestamptz[]', '''{2026-01-01}''::timestamptz[]']
  WHEN typ = 'text' THEN ARRAY['NULL::text', '''''::text', '''bogus''::text', '''COMPANY''::text',
      'repeat(''é'', 100000)',
      fuzz.sweep_valid(typ, argname)] ||
      ARRAY(SELECT quote_literal(a) || '::text' FROM unnest(CASE argname
          WHEN 'dimension' THEN '{rep,team,pipeline,kind,competitor}'::text[]
          WHEN 'grain' THEN '{week,quarter,year}'
          WHEN 'mode' THEN '{all}'
          WHEN 'weighting' THEN '{milestone,historical}'
          WHEN 'variant' THEN '{decided,strict}'
          WHEN 'outcome' THEN '{lost,open}'
          WHEN 'kind' THEN '{won,lost}'
          ELSE '{}' END) a)
  ELSE ARRAY['NULL::' || typ]
END $$;

-- the functions swept, with their family
CREATE OR REPLACE FUNCTION fuzz.sweep_functions()
    RETURNS TABLE(fn regprocedure, family text)
    LANGUAGE sql STABLE AS $$
SELECT p.oid::regprocedure,
       CASE WHEN p.prokind = 'a' THEN 'aggregate'
            WHEN p.prokind = 'w' THEN 'window'
            WHEN p.pronargs > 0 AND format_type(p.proargtypes[0], NULL) LIKE 'sales_kpi.%'
                 AND substr(format_type(p.proargtypes[0], NULL), 11) = ANY (fuzz.summary_types()) THEN 'accessor'
            WHEN EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = p.pronamespace
                          AND c.relname = p.proname AND c.relkind IN ('v', 'm')) THEN 'kpi'
            ELSE 'building block' END
  FROM pg_proc p
 WHERE p.pronamespace = 'sales_kpi'::regnamespace
   AND (p.prokind IN ('a', 'w')
        -- accessors: readable by everyone (the support functions are not)
        OR (p.pronargs > 0 AND substr(format_type(p.proargtypes[0], NULL), 11) = ANY (fuzz.summary_types())
            AND format_type(p.proargtypes[0], NULL) LIKE 'sales_kpi.%'
            AND has_function_privilege('public', p.oid, 'EXECUTE'))
        OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = p.pronamespace
                    AND c.relname = p.proname AND c.relkind IN ('v', 'm'))
        OR p.proname IN ('pipeline_as_of', 'pipeline_flow_deals', 'closed_deals', 'periods',
                         'period_start', 'period_end', 'to_base', 'check_consistency', 'stage_stays',
                         'stage_stay_totals', 'quota_in_period', 'dimension_value'))
 ORDER BY p.oid::regprocedure::text $$;

CREATE OR REPLACE FUNCTION fuzz.pick(a text[]) RETURNS text
    LANGUAGE sql VOLATILE AS $$ SELECT a[1 + floor(random() * cardinality(a))::int] $$;

-- the input arguments of a function: position, name (may be NULL), type, whether it has a default
CREATE OR REPLACE FUNCTION fuzz.sweep_args(f regprocedure)
    RETURNS TABLE(pos int, name text, typ text, has_default boolean)
    LANGUAGE sql STABLE AS $$
SELECT k::int, nullif(p.proargnames[k], ''), format_type(p.proargtypes[k - 1], NULL),
       k > p.pronargs - p.pronargdefaults
  FROM pg_proc p, generate_series(1, p.pronargs) k
 WHERE p.oid = f
   -- proargnames covers OUT arguments too, after the inputs for these functions
   AND (p.proargmodes IS NULL OR p.proargmodes[k] IN ('i', 'b', 'v'))
 ORDER BY k $$;

-- a call: vals[k] is the SQL text of argument k, NULL to leave it to its default
CREATE OR REPLACE FUNCTION fuzz.sweep_call_sql(f regprocedure, family text, vals text[]) RETURNS text
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    p pg_proc;
    a record;
    args text[] := '{}';
    ncols int;
    rows text[] := '{}';
    key text;
    expr text;
BEGIN
    SELECT * INTO p FROM pg_proc WHERE oid = f;
    -- the result's column: the summary type's name for a summary (check_row reads it
    -- back), else the function's name (check_row checks it by name); lift(lift) is lift_ratio
    key := CASE WHEN format_type(p.prorettype, NULL) LIKE 'sales_kpi.%' THEN substr(format_type(p.prorettype, NULL), 11)
                WHEN p.proname = ANY (fuzz.summary_types()) THEN p.proname || '_ratio'
                ELSE p.proname END;
    IF family IN ('aggregate', 'moving aggregate', 'window') THEN
        -- vals holds rows of pronargs cells each
        ncols := p.pronargs;
        FOR r IN 0 .. coalesce(cardinality(vals), 0) / greatest(ncols, 1) - 1 LOOP
            rows := rows || format('(%s, %s)', r + 1, array_to_string(vals[r * ncols + 1 : r * ncols + ncols], ', '));
        END LOOP;
        expr := format('sales_kpi.%I(%s)', p.proname,
                       (SELECT string_agg('c' || k, ', ') FROM generate_series(1, ncols) k));
        IF family <> 'aggregate' THEN
            expr := expr || CASE family WHEN 'window' THEN ' OVER (ORDER BY i)'
                                ELSE ' OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)' END;
        END IF;
        IF cardinality(rows) = 0 THEN
            -- no rows: one row of the argument types, filtered out
            RETURN format('SELECT %s AS %I FROM (VALUES (0, %s)) v(i, %s) WHERE false', expr, key,
                          (SELECT string_agg('NULL::' || typ, ', ' ORDER BY pos) FROM fuzz.sweep_args(f)),
                          (SELECT string_agg('c' || k, ', ') FROM generate_series(1, ncols) k));
        END IF;
        RETURN format('SELECT %s AS %I FROM (VALUES %s) v(i, %s)', expr, key, array_to_string(rows, ', '),
                      (SELECT string_agg('c' || k, ', ') FROM generate_series(1, ncols) k));
    END IF;
    FOR a IN SELECT * FROM fuzz.sweep_args(f) LOOP
        IF vals[a.pos] IS NULL THEN
            CONTINUE;
        ELSIF a.name IS NULL THEN
            args := args || vals[a.pos];
        ELSE
            args := args || format('%I => %s', a.name, vals[a.pos]);
        END IF;
    END LOOP;
    expr := format('sales_kpi.%I(%s)', p.proname, array_to_string(args, ', '));
    IF p.proretset THEN
        RETURN 'SELECT * FROM ' || expr;
    END IF;
    RETURN format('SELECT %s AS %I', expr, key);
END $$;

-- fills fuzz.sweep_call: baselines, one argument varied at a time, n_random random calls
CREATE OR REPLACE FUNCTION fuzz.sweep_plan(seed int, n_random int) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    f record;
    a record;
    v text;
    base text[];
    vals text[];
    n int := 0;
    funcs regprocedure[];
    fams text[];
    k int;
    nargs int;
    nrows int;
    fam text;
BEGIN
    TRUNCATE fuzz.sweep_call, fuzz.sweep_result;
    PERFORM setseed((seed % 2147483647)::float8 / 2147483647);
    FOR f IN SELECT * FROM fuzz.sweep_functions() LOOP
        funcs := funcs || f.fn;
        fams := fams || f.family;
        nargs := (SELECT count(*) FROM fuzz.sweep_args(f.fn));
        IF f.family IN ('aggregate', 'window') THEN
            -- three rows of valid values; then each cell of the middle row varied
            base := '{}';
            FOR r IN 1 .. 3 LOOP
                base := base || ARRAY(SELECT fuzz.sweep_valid(typ, coalesce(name, '')) FROM fuzz.sweep_args(f.fn) ORDER BY pos);
            END LOOP;
            FOREACH fam IN ARRAY CASE f.family WHEN 'aggregate' THEN '{aggregate,moving aggregate}'::text[] ELSE '{window}' END LOOP
                n := n + 1;
                INSERT INTO fuzz.sweep_call VALUES (n, fam, f.fn::text, 'baseline', fuzz.sweep_call_sql(f.fn, fam, base));
                n := n + 1;
                INSERT INTO fuzz.sweep_call VALUES (n, fam, f.fn::text, 'no rows', fuzz.sweep_call_sql(f.fn, fam, '{}'));
                FOR a IN SELECT * FROM fuzz.sweep_args(f.fn) LOOP
                    FOREACH v IN ARRAY fuzz.sweep_pool(a.typ, coalesce(a.name, '')) LOOP
                        vals := base;
                        vals[nargs + a.pos] := v;
                        n := n + 1;
                        INSERT INTO fuzz.sweep_call VALUES (n, fam, f.fn::text, format('vary %s', coalesce(a.name, 'arg ' || a.pos)),
                                                            fuzz.sweep_call_sql(f.fn, fam, vals));
                    END LOOP;
                END LOOP;
            END LOOP;
            CONTINUE;
        END IF;
        -- required arguments get a valid value, the others their default
        base := ARRAY(SELECT CASE WHEN has_default THEN NULL ELSE fuzz.sweep_valid(typ, coalesce(name, '')) END
                        FROM fuzz.sweep_args(f.fn) ORDER BY pos);
        n := n + 1;
        INSERT INTO fuzz.sweep_call VALUES (n, f.family, f.fn::text, 'baseline', fuzz.sweep_call_sql(f.fn, f.family, base));
        FOR a IN SELECT * FROM fuzz.sweep_args(f.fn) LOOP
            FOREACH v IN ARRAY fuzz.sweep_pool(a.typ, coalesce(a.name, '')) LOOP
                vals := base;
                vals[a.pos] := v;
                n := n + 1;
                INSERT INTO fuzz.sweep_call VALUES (n, f.family, f.fn::text, format('vary %s', coalesce(a.name, 'arg ' || a.pos)),
                                                    fuzz.sweep_call_sql(f.fn, f.family, vals));
            END LOOP;
        END LOOP;
    END LOOP;

    -- random combinations: any function, each argument valid, default or from its pool
    FOR i IN 1 .. n_random LOOP
        k := 1 + floor(random() * cardinality(funcs))::int;
        vals := '{}';
        IF fams[k] IN ('aggregate', 'window') THEN
            nrows := floor(random() * 6)::int;
            FOR r IN 1 .. nrows LOOP
                FOR a IN SELECT * FROM fuzz.sweep_args(funcs[k]) LOOP
                    vals := vals || CASE WHEN random() < 0.6 THEN fuzz.sweep_valid(a.typ, coalesce(a.name, ''))
                                         ELSE fuzz.pick(fuzz.sweep_pool(a.typ, coalesce(a.name, ''))) END;
                END LOOP;
            END LOOP;
            n := n + 1;
            INSERT INTO fuzz.sweep_call VALUES (n, CASE WHEN fams[k] = 'aggregate' AND random() < 0.5 THEN 'moving aggregate' ELSE fams[k] END,
                                                funcs[k]::text, 'random', '');
            UPDATE fuzz.sweep_call SET sql = fuzz.sweep_call_sql(funcs[k], family, vals) WHERE id = n;
        ELSE
            FOR a IN SELECT * FROM fuzz.sweep_args(funcs[k]) LOOP
                vals[a.pos] := CASE WHEN a.has_default AND random() < 0.4 THEN NULL
                                    WHEN NOT a.has_default AND random() < 0.5 THEN fuzz.sweep_valid(a.typ, coalesce(a.name, ''))
                                    ELSE fuzz.pick(fuzz.sweep_pool(a.typ, coalesce(a.name, ''))) END;
            END LOOP;
            n := n + 1;
            INSERT INTO fuzz.sweep_call VALUES (n, fams[k], funcs[k]::text, 'random', fuzz.sweep_call_sql(funcs[k], fams[k], vals));
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- what is wrong with one result row (as jsonb), or NULL: the checks by column name
-- (nonfinite_input: the call had a NaN or infinite argument, which may come out as such)
CREATE OR REPLACE FUNCTION fuzz.check_row(r jsonb, nonfinite_input boolean) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    k text;
    v jsonb;
    x double precision;
    t text;
BEGIN
    FOR k, v IN SELECT * FROM jsonb_each(r) LOOP
        t := jsonb_typeof(v);
        IF t = 'null' THEN
            CONTINUE;
        END IF;
        -- a summary: its text form reads back to itself
        IF k = ANY (fuzz.summary_types()) THEN
            BEGIN
                EXECUTE format('SELECT %L::sales_kpi.%I::text', v #>> '{}', k) INTO t;
            EXCEPTION WHEN OTHERS THEN
                RETURN format('%s result %s does not read back: %s %s', k, v #>> '{}', SQLSTATE, SQLERRM);
            END;
            IF t <> v #>> '{}' THEN
                RETURN format('%s result %s reads back as %s', k, v #>> '{}', t);
            END IF;
            CONTINUE;
        END IF;
        -- intervals of durations: not negative
        IF k IN ('mean', 'min_duration', 'max_duration', 'percentile', 'median', 'median_time_to_close') THEN
            IF (v #>> '{}')::interval < '0'::interval THEN
                RETURN format('%s is negative: %s', k, v #>> '{}');
            END IF;
            CONTINUE;
        END IF;
        IF t = 'string' AND v #>> '{}' IN ('NaN', 'Infinity', '-Infinity') AND NOT nonfinite_input THEN
            RETURN format('%s is not finite: %s', k, v #>> '{}');
        END IF;
        IF t <> 'number' THEN
            CONTINUE;
        END IF;
        x := (v #>> '{}')::double precision;
        IF (k ~ '(^|_)rate(_lower|_upper)?$' OR k ~ '^stage_one_to_two_(lower|upper)$' OR k ~ '_share$'
            OR k ~ 'probability$' OR k ~ '^wilson_(lower|upper)$' OR k ~ '^rate_with(out)?$'
            OR k IN ('conversion', 'conversion_to_next', 'win_rate_from'))
           AND NOT (x >= 0 AND x <= 1) THEN
            RETURN format('rate %s outside [0,1]: %s', k, x);
        END IF;
        IF (k ~ '(^|_)(count|deals|won|lost|closed|open|entered|converted|leads|opps|reps|stays|months|peers|reached|advanced|qops_won|qops_lost|accounts|activities)$'
            OR k IN ('qualified_leads', 'converted_leads', 'qualified_opps', 'two_stage_opps', 'reps_with_quota',
                     'reps_at_quota', 'still_open', 'km_deals', 'km_closed', 'periods_measured', 'missing_count',
                     'completed_late_count', 'historical_deals', 'historical_won', 'baseline_entered',
                     'active_months', 'deals_won', 'weighted_pipeline', 'lift_ratio', 'odds_ratio', 'odds_ratio_lower',
                     'odds_ratio_upper', 'won_amount', 'avg_won_amount'))
           AND x < 0 THEN
            RETURN format('%s is negative: %s', k, x);
        END IF;
        IF k ~ '_days$' AND k <> 'overdue_days' AND x < 0 THEN
            RETURN format('%s is negative: %s', k, x);
        END IF;
        -- money and ratios of money that cannot be negative
        IF k IN ('weighted_amount', 'bookings', 'won_amount', 'closed_amount', 'avg_amount', 'arpa',
                 'pipeline_amount', 'open_amount', 'coverage', 'volatility',
                 'mean_monthly_bookings', 'stddev_monthly_bookings', 'last_minute_bookings',
                 'new_business_bookings', 'weighted_pipeline', 'expansion_mrr', 'reactivation_mrr',
                 'contraction_mrr', 'churn_mrr') AND x < 0 THEN
            RETURN format('%s is negative: %s', k, x);
        END IF;
    END LOOP;
    -- quantiles in order
    IF (r ->> 'p50_days')::float8 > (r ->> 'p75_days')::float8
       OR (r ->> 'median_days')::float8 > (r ->> 'p75_days')::float8
       OR (r ->> 'p75_days')::float8 > (r ->> 'p90_days')::float8 THEN
        RETURN format('quantiles out of order: p50 %s, median %s, p75 %s, p90 %s',
                      r ->> 'p50_days', r ->> 'median_days', r ->> 'p75_days', r ->> 'p90_days');
    END IF;
    -- censored deals only raise the Aalen-Johansen estimate above the naive share
    IF (r ->> 'naive_win_rate')::float8 > (r ->> 'cumulative_win_rate')::float8 + 1e-12 THEN
        RETURN format('naive_win_rate %s above cumulative_win_rate %s', r ->> 'naive_win_rate', r ->> 'cumulative_win_rate');
    END IF;
    -- parts within their whole
    IF (r ->> 'won')::float8 > (r ->> 'closed')::float8 OR (r ->> 'lost')::float8 > (r ->> 'closed')::float8
       OR (r ->> 'last_minute_won')::float8 > (r ->> 'won')::float8
       OR (r ->> 'converted')::float8 > (r ->> 'entered')::float8
       OR (r ->> 'reps_with_quota')::float8 > (r ->> 'reps')::float8
       OR (r ->> 'active_months')::float8 > (r ->> 'months')::float8 THEN
        RETURN format('a part exceeds its whole in %s', r);
    END IF;
    -- lower <= estimate <= upper, for each estimate that has bounds
    FOR k IN SELECT substr(key, 1, length(key) - 6) FROM jsonb_object_keys(r) key WHERE key LIKE '%\_lower' LOOP
        IF jsonb_typeof(r -> (k || '_lower')) = 'number' AND jsonb_typeof(r -> (k || '_upper')) = 'number' THEN
            IF (r ->> (k || '_lower'))::float8 > (r ->> (k || '_upper'))::float8 THEN
                RETURN format('%s_lower %s above %s_upper %s', k, r ->> (k || '_lower'), k, r ->> (k || '_upper'));
            END IF;
            -- the estimate is k itself or k_rate (stage_one_to_two_lower/_rate/_upper)
            v := coalesce(r -> k, r -> (k || '_rate'));
            IF jsonb_typeof(v) = 'number' AND k <> 'forecast' AND k <> 'control'
               AND NOT ((r ->> (k || '_lower'))::float8 <= (v #>> '{}')::float8
                        AND (v #>> '{}')::float8 <= (r ->> (k || '_upper'))::float8) THEN
                RETURN format('%s %s outside [%s_lower %s, %s_upper %s]', k, v #>> '{}', k, r ->> (k || '_lower'),
                              k, r ->> (k || '_upper'));
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- runs one planned call and records its outcome (call it as its own statement)
CREATE OR REPLACE FUNCTION fuzz.sweep_exec(call_id int) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    c fuzz.sweep_call;
    nrows bigint;
    bad text;
    outcome text := 'ok';
    msg text;
    t0 timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO c FROM fuzz.sweep_call WHERE id = call_id;
    BEGIN
        EXECUTE format('SELECT count(*), min(fuzz.check_row(to_jsonb(x), %L)) FROM (%s) x',
                       c.sql ~ '''(NaN|-?Infinity)''::(numeric|float8)', c.sql) INTO nrows, bad;
    EXCEPTION
        WHEN query_canceled THEN
            outcome := '57014';
            msg := SQLERRM;
        WHEN OTHERS THEN
            outcome := SQLSTATE;
            msg := SQLERRM;
    END;
    IF outcome IN ('XX000', 'XX001', 'XX002', '57014', 'P0001') OR left(outcome, 2) IN ('XX', '53', '58') THEN
        bad := format('SQLSTATE %s: %s', outcome, msg);
    ELSIF left(outcome, 2) = '42' THEN
        -- the call itself is malformed: a fault of the sweep, reported as such
        bad := format('sweep error %s: %s', outcome, msg);
    END IF;
    INSERT INTO fuzz.sweep_result VALUES (call_id, outcome, bad, msg, nrows,
                                          extract(epoch FROM clock_timestamp() - t0) * 1000);
    RETURN coalesce(bad, outcome);
END $$;
