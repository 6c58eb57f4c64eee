-- Reporting periods.  Every KPI about a period cuts time the same way: in
-- the reporting time zone (sales_kpi.reporting_timezone, default the
-- session's), weeks from Monday (ISO), quarters and years from the first
-- month of the fiscal year (sales_kpi.fiscal_year_start_month).  Periods
-- are half-open [start, end) and are computed in local time, so they stay
-- whole days across daylight-saving changes.

-- The local start of the period of a local timestamp.
CREATE FUNCTION @extschema@.local_period_start(local timestamp, grain text)
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
            RAISE EXCEPTION 'grain must be week, month, quarter or year, got "%"', grain
                USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION @extschema@.local_period_start(timestamp, text) IS
    'Internal: start of the week, month, fiscal quarter or fiscal year holding a local timestamp.';

CREATE FUNCTION @extschema@.grain_length(grain text)
RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE grain WHEN 'week' THEN interval '1 week' WHEN 'month' THEN interval '1 month'
                      WHEN 'quarter' THEN interval '3 months' WHEN 'year' THEN interval '1 year' END
$$;
COMMENT ON FUNCTION @extschema@.grain_length(text) IS 'Internal: the length of a period of the grain, in local time.';

CREATE FUNCTION @extschema@.period_start(at timestamptz, grain text DEFAULT 'quarter')
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.local_period_start(at AT TIME ZONE @extschema@.reporting_timezone(), grain)
           AT TIME ZONE @extschema@.reporting_timezone()
$$;
COMMENT ON FUNCTION @extschema@.period_start(timestamptz, text) IS
    'Start of the week (Monday), month, fiscal quarter or fiscal year holding at, in the reporting time zone.';

CREATE FUNCTION @extschema@.period_end(at timestamptz, grain text DEFAULT 'quarter')
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (@extschema@.local_period_start(at AT TIME ZONE @extschema@.reporting_timezone(), grain)
            + @extschema@.grain_length(grain))
           AT TIME ZONE @extschema@.reporting_timezone()
$$;
COMMENT ON FUNCTION @extschema@.period_end(timestamptz, text) IS
    'End (exclusive) of the period holding at: the start of the next one.';

CREATE FUNCTION @extschema@.periods(from_at timestamptz, to_at timestamptz, grain text DEFAULT 'month',
                                    OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE STRICT PARALLEL SAFE ROWS 12
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s AT TIME ZONE tz, (s + @extschema@.grain_length(grain)) AT TIME ZONE tz
      FROM (SELECT @extschema@.reporting_timezone() AS tz) z,
           generate_series(@extschema@.local_period_start(from_at AT TIME ZONE z.tz, grain),
                           to_at AT TIME ZONE z.tz - interval '1 microsecond',
                           @extschema@.grain_length(grain)) s
     WHERE to_at > from_at
$$;
COMMENT ON FUNCTION @extschema@.periods(timestamptz, timestamptz, text) IS
    'The periods of the grain that overlap [from_at, to_at), in order.';
