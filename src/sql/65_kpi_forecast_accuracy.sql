-- Forecast accuracy and bias (kpis.md section 3).
--
-- Per rep and period of a series: the commit is the newest 'commit'
-- forecast_submission of the rep for exactly that period (its dates are the
-- period's local dates) submitted by the cut-off, period start + cutoff (and
-- by as_of); the actual is the rep's bookings in the period (won deals,
-- credited to the owner at the close, amount in the base currency at the
-- close-date rate), as the history stood at as_of.  For periods that ended
-- by as_of:
--     accuracy = 1 - |commit - actual| / actual   (1 is perfect; below 0 when off by more than the actual)
--     bias     = (commit - actual) / actual       (> 0: optimistic, < 0: sandbagging)
-- both null without a commit or with actual = 0 (no denominator).  Per rep,
-- mean_accuracy and mean_bias average them over the ended periods where
-- they exist; they are kept apart (the signed bias is never mixed into the
-- accuracy).  For the periods not ended by as_of, the calibrated commit is
-- commit / (1 + mean_bias).

CREATE FUNCTION sales_kpi_internal.forecast_accuracy_rows(p_from timestamptz, p_to timestamptz, p_grain text,
                                                   p_dimension text, p_as_of timestamptz, p_cutoff interval)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               period_complete boolean, commit_amount numeric, commit_submitted_at timestamptz,
               bookings numeric, accuracy double precision, bias double precision,
               mean_accuracy double precision, mean_bias double precision, periods_measured bigint,
               calibrated_commit numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    tz text := @extschema@.reporting_timezone();
    -- the periods' bounds, for the partials of the bookings
    bounds timestamptz[];
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(p_as_of, grain => p_grain);
    PERFORM sales_kpi_internal.rep_dimension(p_dimension, 'Forecasts are submitted by reps, so accuracy breaks down by rep or team only.');
    IF p_cutoff IS NULL THEN
        RAISE EXCEPTION 'argument "cutoff" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    SELECT array_agg(s.period_start ORDER BY s.period_start) || max(s.period_end) INTO bounds
      FROM sales_kpi_internal.resolve_series(p_from, p_to, p_grain, p_as_of) s;

    RETURN QUERY
    WITH series AS MATERIALIZED (
        SELECT s.period_start, s.period_end,
               (s.period_start AT TIME ZONE tz)::date AS start_date,
               (s.period_end AT TIME ZONE tz)::date AS end_date,
               s.period_end <= p_as_of AS complete
          FROM (SELECT bounds[i] AS period_start, bounds[i + 1] AS period_end
                  FROM generate_series(1, cardinality(bounds) - 1) i) s
    ), actual AS (
        -- the won deals' partials per owner at the close and period; a
        -- deal without owner counts for rep_id -1 (dimension value '(none)')
        SELECT cp.period_start, coalesce(cp.dimension_key::bigint, -1) AS rep_id,
               @extschema@.won_amount(cp.outcomes) AS bookings
          FROM sales_kpi_internal.closed_partials(bounds, p_as_of, 'rep', with_cycles => false,
                                                  won_only => true) cp
    ), committed AS (
        -- the newest commit for exactly the period, submitted by the cut-off and by as_of
        SELECT DISTINCT ON (s.period_start, f.rep_id)
               s.period_start, f.rep_id, f.amount, f.submitted_at
          FROM series s
          JOIN @extschema@.forecast_submission f
            ON f.category = 'commit'
           AND f.period_start = s.start_date AND f.period_end = s.end_date
           AND f.submitted_at <= s.period_start + p_cutoff
           AND f.submitted_at <= p_as_of
         ORDER BY s.period_start, f.rep_id, f.submitted_at DESC
    ), reps AS (
        SELECT c.rep_id FROM committed c
        UNION
        SELECT a.rep_id FROM actual a
    ), per_rep AS (
        SELECT @extschema@.dimension_value(p_dimension, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS dv,
               s.period_start, s.period_end, s.complete, c.amount, c.submitted_at, a.bookings
          FROM reps rp
          CROSS JOIN series s
          LEFT JOIN @extschema@.rep r ON r.rep_id = rp.rep_id
          LEFT JOIN committed c ON c.rep_id = rp.rep_id AND c.period_start = s.period_start
          LEFT JOIN actual a ON a.rep_id = rp.rep_id AND a.period_start = s.period_start
    ), per_group AS (
        SELECT g.dv, g.period_start, g.period_end, g.complete,
               sum(g.amount) AS commit_amount, max(g.submitted_at) AS submitted_at,
               coalesce(sum(g.bookings), 0) AS bookings
          FROM per_rep g
         GROUP BY g.dv, g.period_start, g.period_end, g.complete
    ), scored AS (
        SELECT pg.*,
               CASE WHEN pg.complete AND pg.bookings > 0
                    THEN 1 - abs(pg.commit_amount - pg.bookings)::double precision / pg.bookings::double precision
               END AS accuracy,
               CASE WHEN pg.complete AND pg.bookings > 0
                    THEN (pg.commit_amount - pg.bookings)::double precision / pg.bookings::double precision
               END AS bias
          FROM per_group pg
    ), summarized AS (
        -- the means add the periods in date order: a float sum in the
        -- order rows happen to arrive could differ in the last digit
        SELECT sc.*,
               avg(sc.accuracy) OVER w AS mean_accuracy,
               avg(sc.bias) OVER w AS mean_bias,
               count(sc.bias) OVER w AS periods_measured
          FROM scored sc
        WINDOW w AS (PARTITION BY sc.dv ORDER BY sc.period_start
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    )
    SELECT p_dimension, sm.dv, sm.period_start, sm.period_end, sm.complete,
           sm.commit_amount, sm.submitted_at, sm.bookings, sm.accuracy, sm.bias,
           sm.mean_accuracy, sm.mean_bias, sm.periods_measured,
           CASE WHEN NOT sm.complete AND 1 + sm.mean_bias > 0
                THEN round(sm.commit_amount / (1 + sm.mean_bias)::numeric, 2)
           END
      FROM summarized sm
     ORDER BY sm.dv, sm.period_start;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.forecast_accuracy_rows(timestamptz, timestamptz, text, text, timestamptz, interval) IS
    'Internal: the rows of forecast_accuracy().';

CREATE FUNCTION @extschema@.forecast_accuracy(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                              grain text DEFAULT 'quarter', dimension text DEFAULT 'rep',
                                              as_of timestamptz DEFAULT now(), cutoff interval DEFAULT '0')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               period_complete boolean, commit_amount numeric, commit_submitted_at timestamptz,
               bookings numeric, accuracy double precision, bias double precision,
               mean_accuracy double precision, mean_bias double precision, periods_measured bigint,
               calibrated_commit numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM sales_kpi_internal.forecast_accuracy_rows(from_at, to_at, grain, dimension, as_of, cutoff)
$$;
COMMENT ON FUNCTION @extschema@.forecast_accuracy(timestamptz, timestamptz, text, text, timestamptz, interval) IS
    'Forecast accuracy and bias per rep (or team, company) and period: the newest commit submitted by period start + cutoff against the bookings; accuracy = 1 - |commit - actual|/actual and bias = (commit - actual)/actual for periods ended by as_of (null when actual is 0), their means per rep, and the calibrated commit = commit/(1 + mean bias) for the periods still running.';

CREATE VIEW @extschema@.forecast_accuracy WITH (security_invoker = true) AS SELECT * FROM @extschema@.forecast_accuracy();
COMMENT ON VIEW @extschema@.forecast_accuracy IS
    'forecast_accuracy() with the defaults: per rep and fiscal quarter from a year ago to the current one, commit at the quarter start against bookings, accuracy, bias, their means, and the calibrated commit of the current quarter.';
