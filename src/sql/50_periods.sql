-- Reporting periods.  Every KPI about a period cuts time the same way: in
-- the reporting time zone (sales_kpi.reporting_timezone, default the
-- session's), weeks from Monday (ISO), quarters and years from the first
-- month of the fiscal year (sales_kpi.fiscal_year_start_month).  Periods
-- are half-open [start, end) and are computed in local time, so they stay
-- whole days across daylight-saving changes.

-- The local start of the period of a local timestamp.
CREATE FUNCTION sales_kpi_internal.local_period_start(local timestamp, grain text)
RETURNS timestamp
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- months since the start of the fiscal year
    into_year integer := (extract(month FROM local)::integer - @extschema@.fiscal_year_start_month() + 12) % 12;
BEGIN
    CASE grain
        WHEN 'week' THEN RETURN date_trunc('week', local);
        WHEN 'month' THEN RETURN date_trunc('month', local);
        WHEN 'quarter' THEN RETURN date_trunc('month', local) - make_interval(months => into_year % 3);
        WHEN 'year' THEN RETURN date_trunc('month', local) - make_interval(months => into_year);
        ELSE
            RAISE EXCEPTION 'argument "grain" must be week, month, quarter or year, got "%"', grain
                USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.local_period_start(timestamp, text) IS
    'Internal: start of the week, month, fiscal quarter or fiscal year holding a local timestamp.';

CREATE FUNCTION sales_kpi_internal.grain_length(grain text)
RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE grain WHEN 'week' THEN interval '1 week' WHEN 'month' THEN interval '1 month'
                      WHEN 'quarter' THEN interval '3 months' WHEN 'year' THEN interval '1 year' END
$$;
COMMENT ON FUNCTION sales_kpi_internal.grain_length(text) IS 'Internal: the length of a period of the grain, in local time.';

CREATE FUNCTION @extschema@.period_start(at timestamptz, grain text DEFAULT 'quarter')
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sales_kpi_internal.local_period_start(at AT TIME ZONE @extschema@.reporting_timezone(), grain)
           AT TIME ZONE @extschema@.reporting_timezone()
$$;
COMMENT ON FUNCTION @extschema@.period_start(timestamptz, text) IS
    'Start of the week (Monday), month, fiscal quarter or fiscal year holding at, in the reporting time zone.';

CREATE FUNCTION @extschema@.period_end(at timestamptz, grain text DEFAULT 'quarter')
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (sales_kpi_internal.local_period_start(at AT TIME ZONE @extschema@.reporting_timezone(), grain)
            + sales_kpi_internal.grain_length(grain))
           AT TIME ZONE @extschema@.reporting_timezone()
$$;
COMMENT ON FUNCTION @extschema@.period_end(timestamptz, text) IS
    'End (exclusive) of the period holding at: the start of the next one.';

-- An instant a KPI reads at or from must be finite: infinity has no period,
-- no age and no pipeline, and a series from -infinity never ends.
CREATE FUNCTION sales_kpi_internal.finite_instant(value timestamptz, argument text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT isfinite(value) THEN
        RAISE EXCEPTION 'argument "%" must be a finite instant, got %', argument, value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN value;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.finite_instant(timestamptz, text) IS
    'Internal: the value when it is finite (or null), else a 22023 naming the argument.';

-- An instant a KPI cannot do without (as_of, at): NULL is refused too.
CREATE FUNCTION sales_kpi_internal.required_instant(value timestamptz, argument text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be null', argument USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN sales_kpi_internal.finite_instant(value, argument);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.required_instant(timestamptz, text) IS
    'Internal: the value when it is finite, else a 22004 (null) or 22023 (infinite) naming the argument.';

-- A team named in an argument must be the team of some rep the caller
-- sees: a misspelt name is an error, not an empty report.
CREATE FUNCTION sales_kpi_internal.check_team(team text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF team IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.rep r WHERE r.team = check_team.team) THEN
        RAISE EXCEPTION 'argument "team": no rep is in team "%"', team
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A team is a value of sales_kpi.rep.team.';
    END IF;
    RETURN team;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_team(text) IS
    'Internal: the team when it is null or some rep''s team, else a 22023 naming the argument.';

-- At most this many periods in a series: 192 years of weeks, 833 of months.
CREATE FUNCTION @extschema@.max_periods()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 10000 $$;
COMMENT ON FUNCTION @extschema@.max_periods() IS
    'The most periods a series of periods may have (10000); a longer one is refused.';

CREATE FUNCTION @extschema@.periods(from_at timestamptz, to_at timestamptz, grain text DEFAULT 'month',
                                    OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE ROWS 12
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := @extschema@.reporting_timezone();
    first_start timestamp;
    last_instant timestamp;
    step interval;
BEGIN
    PERFORM sales_kpi_internal.finite_instant(from_at, 'from_at'), sales_kpi_internal.finite_instant(to_at, 'to_at');
    IF to_at <= from_at THEN
        RETURN;
    END IF;
    -- raises the error for an unknown grain
    first_start := sales_kpi_internal.local_period_start(from_at AT TIME ZONE tz, grain);
    last_instant := to_at AT TIME ZONE tz - interval '1 microsecond';
    step := sales_kpi_internal.grain_length(grain);
    -- counted in seconds, a month as 30 days: a bound, not the exact count
    IF (extract(epoch FROM last_instant) - extract(epoch FROM first_start)) / extract(epoch FROM step)
       >= @extschema@.max_periods() THEN
        RAISE EXCEPTION 'the series from % to % by % has more than % periods', from_at, to_at, grain,
                @extschema@.max_periods()
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Ask for a shorter time range or a coarser grain.';
    END IF;
    RETURN QUERY
        SELECT s AT TIME ZONE tz, (s + step) AT TIME ZONE tz
          FROM generate_series(first_start, last_instant, step) s;
END;
$$;
COMMENT ON FUNCTION @extschema@.periods(timestamptz, timestamptz, text) IS
    'The periods of the grain that overlap [from_at, to_at), in order; from_at and to_at must be finite, and a series of more than max_periods() periods is refused.';

-- The period a KPI function reports on: the arguments when given, else the
-- fiscal quarter holding as_of.  Refuses an empty or reversed period.
CREATE FUNCTION sales_kpi_internal.resolve_period(requested_start timestamptz, requested_end timestamptz,
                                           as_of timestamptz,
                                           OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'argument "as_of" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.finite_instant(as_of, 'as_of'),
            sales_kpi_internal.finite_instant(requested_start, 'period_start'),
            sales_kpi_internal.finite_instant(requested_end, 'period_end');
    period_start := coalesce(requested_start, @extschema@.period_start(as_of, 'quarter'));
    period_end := coalesce(requested_end, @extschema@.period_end(period_start, 'quarter'));
    IF period_end <= period_start THEN
        RAISE EXCEPTION 'argument "period_end" (%) must be later than "period_start" (%)', period_end, period_start
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.resolve_period(timestamptz, timestamptz, timestamptz) IS
    'Internal: the [period_start, period_end) a KPI reports on; the fiscal quarter holding as_of where they are null.';

-- The series of periods a KPI over time reports on: from_at defaults to the
-- start of the period of the grain a year before as_of, to_at to the end of
-- the period holding as_of.
CREATE FUNCTION sales_kpi_internal.resolve_series(from_at timestamptz, to_at timestamptz, grain text,
                                           as_of timestamptz,
                                           OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 12
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF as_of IS NULL OR grain IS NULL THEN
        RAISE EXCEPTION 'arguments "as_of" and "grain" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.finite_instant(as_of, 'as_of'),
            sales_kpi_internal.finite_instant(from_at, 'from_at'),
            sales_kpi_internal.finite_instant(to_at, 'to_at');
    from_at := coalesce(from_at, @extschema@.period_start(as_of - interval '1 year', grain));
    to_at := coalesce(to_at, @extschema@.period_end(as_of, grain));
    IF to_at <= from_at THEN
        RAISE EXCEPTION 'argument "to_at" (%) must be later than "from_at" (%)', to_at, from_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY SELECT p.period_start, p.period_end FROM @extschema@.periods(from_at, to_at, grain) p;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.resolve_series(timestamptz, timestamptz, text, timestamptz) IS
    'Internal: the periods of the grain a KPI over time reports on; from a year before as_of to the period holding it where from_at and to_at are null.';

-- Argument checks shared by the KPI functions.  Every argument defaults to
-- a value that passes, so a caller names only the ones it takes; a NULL
-- passed is refused.  Returns true, so that a caller in SQL can keep the
-- check in an expression whose value it reads.
CREATE FUNCTION sales_kpi_internal.check_kpi_args(as_of timestamptz DEFAULT 'epoch',
                                           dimension text DEFAULT 'company',
                                           grain text DEFAULT 'month',
                                           lookback interval DEFAULT '0',
                                           horizon interval DEFAULT '0')
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    interval_names text[] := ARRAY['lookback', 'horizon'];
    intervals interval[] := ARRAY[lookback, horizon];
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    -- raises the shared errors for a null or unknown dimension
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    -- the grains are those local_period_start knows; it raises the error
    PERFORM sales_kpi_internal.local_period_start(timestamp '2000-01-01', coalesce(grain, 'null'));
    FOR i IN 1 .. cardinality(intervals) LOOP
        IF intervals[i] IS NULL OR intervals[i] < interval '0' THEN
            RAISE EXCEPTION 'argument "%" must be a non-negative interval, got "%"',
                    interval_names[i], coalesce(intervals[i]::text, 'null')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_kpi_args(timestamptz, text, text, interval, interval) IS
    'Internal: argument checks shared by the KPI functions (as_of not null and finite, a known dimension, the grain, non-negative lookback and horizon); true or a 22023 (22004 for a null as_of) naming the argument.';
