-- The KPI engine, open pipeline (see 53_closed_partials.sql for the
-- pattern): the deals open at an instant, as pipeline_as_of(at, open_only
-- => true) gives them, with their breakdown, and the partials of the stage
-- weighted pipeline built on them.
--
-- A deal stands at the instant where its row says unless it moved since
-- (stage_entered_at is after the instant: its newest stage event not
-- after it) or changed since (snapshot_at is after the instant: its
-- newest snapshot not after it).  Only those deals read their history, one
-- index probe each inside the plan.  The open deals are a small part of
-- the table, found through the close index, so this pass does not need
-- parallel workers; reading the old states of all moved deals at once
-- (newest row per deal, hash-joined) measured 3 times slower at 1M deals.

-- The query of the deals open at $1 (created by then, not closed then,
-- with an open stage at $1), with their stage, amount in the base currency
-- at the rate of $1's date in the reporting time zone, expected close,
-- forecast category (the stage's when the deal has none), owner and their
-- breakdown key and value for the dimension $2 (checked by the caller;
-- the rep is the owner at $1; also passed as $2); $3 is $1's date in the
-- reporting time zone, worked out once by the caller.  Run by EXECUTE in
-- open_deal_rows and open_partials, planned with the actual instant; the
-- text holds only the joins its dimension needs (dimension_sql).  With
-- moved false (no stage event after $1, moved_since()) it leaves out the
-- look-up of the stage at $1, with changed false (no snapshot after $1,
-- changed_since()) that of the snapshot: the common case of $1 = now,
-- where the lookups found nothing but still cost a step per open deal.
-- With close_range, only the deals expected to close from date $4 and
-- before date $5 are kept, before their amount is converted and their
-- breakdown labelled: a period's forecast keeps a third of the open deals.
CREATE FUNCTION sales_kpi_internal.open_deal_query(dimension text, moved boolean DEFAULT true,
                                                   changed boolean DEFAULT true, close_range boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
WITH staged AS (
    SELECT o.opportunity_id, o.pipeline_id, o.currency, o.account_id, o.source, o.competitor,
           o.kind, o.product,
           CASE WHEN o.stage_entered_at <= $1 THEN o.stage_id ELSE mv.stage_id END AS stage_id,
           CASE WHEN o.stage_entered_at <= $1 THEN o.stage_entered_at ELSE mv.entered_at END AS entered_at,
           CASE WHEN o.snapshot_at > $1 THEN ch.amount ELSE o.amount END AS amount,
           CASE WHEN o.snapshot_at > $1 THEN ch.expected_close ELSE o.expected_close END AS expected_close,
           CASE WHEN o.snapshot_at > $1 THEN ch.forecast_category ELSE o.forecast_category END
               AS forecast_category,
           CASE WHEN o.snapshot_at > $1 THEN ch.owner_id ELSE o.owner_id END AS owner_id
      FROM @extschema@.opportunity o
%s%s
     WHERE o.created_at <= $1
       -- open at the instant: open now, or closed after it
       AND (o.closed_at IS NULL OR o.closed_at > $1)
)
SELECT st.opportunity_id, st.pipeline_id, st.stage_id, st.owner_id,
       @extschema@.to_base(st.amount, st.currency, $3) AS amount,
       st.expected_close, coalesce(st.forecast_category, s.forecast_category) AS forecast_category,
       st.entered_at, s.position AS stage_position, s.probability AS stage_probability,
       sales_kpi_internal.dimension_key($2, st.pipeline_id, st.owner_id, v.value) AS dimension_key,
       v.value AS dimension_value
  FROM staged st
  JOIN @extschema@.stage s ON s.stage_id = st.stage_id AND s.kind = 'open'
  %s
 CROSS JOIN LATERAL (SELECT %s AS value) v
%s$sql$,
        CASE WHEN moved IS NOT FALSE THEN $mv$      -- moved since: the newest stage event not after the instant
      LEFT JOIN LATERAL (
            SELECT ev.stage_id, ev.entered_at
              FROM @extschema@.stage_event ev
             WHERE o.stage_entered_at > $1
               AND ev.opportunity_id = o.opportunity_id AND ev.entered_at <= $1
             ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
             LIMIT 1) mv ON true
$mv$
             -- none did: a deal without events has no stage at $1, as above
             ELSE $mv$      CROSS JOIN (SELECT NULL::bigint AS stage_id, NULL::timestamptz AS entered_at) mv
$mv$ END,
        CASE WHEN changed IS NOT FALSE THEN $ch$      -- changed since: the newest snapshot not after the instant
      LEFT JOIN LATERAL (
            SELECT hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
              FROM @extschema@.opportunity_history hi
             WHERE o.snapshot_at > $1
               AND hi.opportunity_id = o.opportunity_id AND hi.changed_at <= $1
             ORDER BY hi.changed_at DESC
             LIMIT 1) ch ON true
$ch$
             ELSE $ch$      CROSS JOIN (SELECT NULL::numeric AS amount, NULL::date AS expected_close,
                         NULL::text AS forecast_category, NULL::bigint AS owner_id) ch
$ch$ END,
        d.joins, d.value,
        CASE WHEN close_range THEN $cr$ WHERE st.expected_close >= $4 AND st.expected_close < $5
$cr$ ELSE '' END)
      FROM sales_kpi_internal.dimension_sql(dimension, 'st', 'st.owner_id') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.open_deal_query(text, boolean, boolean, boolean) IS
    'Internal: the query of the deals open at $1 with their stage, amount in the base currency, expected close, forecast category, owner and breakdown for a dimension (also passed as $2), run by open_deal_rows() and open_partials(); with moved or changed false, for when no stage event or no snapshot is after $1; with close_range, of the deals expected to close in [$4, $5) (dates) alone.';

-- Internal: the first date whose midnight in the time zone tz is not
-- before the instant at: an expected close date d lies in [lo, hi) at
-- local midnight exactly when first_local_date(lo) <= d <
-- first_local_date(hi), a comparison of dates rather than a conversion
-- per deal.  Local midnights grow with the date, so the date of the
-- instant, or the next one, is it (stepped over a midnight that a
-- daylight-saving change skips).  NULL: NULL.
CREATE FUNCTION sales_kpi_internal.first_local_date(at timestamptz, tz text)
RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d date := (at AT TIME ZONE tz)::date;
BEGIN
    IF at IS NULL OR at IN ('-infinity', 'infinity') THEN
        RETURN d;
    END IF;
    WHILE (d - 1)::timestamp AT TIME ZONE tz >= at LOOP
        d := d - 1;
    END LOOP;
    WHILE d::timestamp AT TIME ZONE tz < at LOOP
        d := d + 1;
    END LOOP;
    RETURN d;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.first_local_date(timestamptz, text) IS
    'Internal: the first date whose midnight in the time zone tz is not before the instant (NULL: NULL).';

-- With close_from or close_to, only the deals expected to close in
-- [close_from, close_to) (a NULL bound: unbounded), the expected close
-- date taken at midnight in the reporting time zone; a deal without an
-- expected close is then left out.
CREATE FUNCTION sales_kpi_internal.open_deal_rows(as_of timestamptz, dimension text DEFAULT 'company',
                                                  close_from timestamptz DEFAULT NULL,
                                                  close_to timestamptz DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, stage_id bigint, owner_id bigint, amount numeric,
               expected_close date, forecast_category text, entered_stage_at timestamptz,
               stage_position integer, stage_probability numeric, dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- as open_partials
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    tz text := @extschema@.reporting_timezone();
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    RETURN QUERY EXECUTE sales_kpi_internal.open_deal_query(dim, sales_kpi_internal.moved_since(as_of),
                                                            sales_kpi_internal.changed_since(as_of),
                                                            close_from IS NOT NULL OR close_to IS NOT NULL)
        USING as_of, dim, (as_of AT TIME ZONE tz)::date,
              coalesce(sales_kpi_internal.first_local_date(close_from, tz), '-infinity'),
              coalesce(sales_kpi_internal.first_local_date(close_to, tz), 'infinity');
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.open_deal_rows(timestamptz, text, timestamptz, timestamptz) IS
    'Internal: the deals open at as_of (those of pipeline_as_of(as_of, open_only => true)) with their stage''s position and probability, amount in the base currency at the as_of date rate and breakdown key and value for a dimension (the rep: the owner at as_of); with close_from or close_to, those expected to close in [close_from, close_to) alone.';

-- Internal: runs an open partials query (its text and the arguments of
-- open_partials) with the planner free to sort: for the rep breakdown,
-- whose thousands of (rep, stage) groups sort faster than they hash (0.36
-- s against 0.49 s at 1M deals).  A setting of the function rather than
-- set_config(), which a parallel query refuses.
CREATE FUNCTION sales_kpi_internal.open_partials_sorted(query text, as_of timestamptz, dimension text,
                                                        rate_date date)
RETURNS TABLE (dimension_key text, dimension_value text, stage_id bigint, deals bigint, amount numeric,
               weighted_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
SET enable_sort = on
AS $$
BEGIN
    RETURN QUERY EXECUTE query USING as_of, dimension, rate_date;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.open_partials_sorted(text, timestamptz, text, date) IS
    'Internal: runs the query of open_partials() for the rep breakdown, free to group by sorting.';

-- The partials of the stage-weighted pipeline KPIs (weighted_pipeline_value
-- with the stage weighting, stage_pipeline_value): per dimension key and
-- open stage, the deals open at as_of, their amount and the weighted sum
-- of amount x the stage's probability, in the base currency at the as_of
-- date rate.
CREATE FUNCTION sales_kpi_internal.open_partials(as_of timestamptz, dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, stage_id bigint, deals bigint, amount numeric,
               weighted_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- the deal's stage at as_of is a CASE over a lookup, whose join to the
-- open stages the planner takes for one row in ten: it would sort the
-- open deals into their few groups (0.31 s at 1M deals by pipeline)
-- rather than hash them (0.20 s); the rep groups, thousands, are left to
-- the planner (open_partials_sorted)
SET work_mem = '64MB'
SET enable_sort = off
-- parallel workers only where they pay for their start, as in
-- closed_partials: by pipeline at 1M deals, 0.23 s with two workers and
-- 0.14-0.21 s without
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    query text;
    rate_date date;
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    rate_date := (as_of AT TIME ZONE @extschema@.reporting_timezone())::date;
    -- grouped by the id that keys the value (key_column), keyed per group
    query := format($sql$
        SELECT sales_kpi_internal.dimension_key($2, %1$s, %1$s, od.dimension_value), od.dimension_value,
               od.stage_id, count(*), sum(od.amount), @extschema@.weighted_pipeline(od.amount, od.stage_probability)
          FROM (%2$s) od
         GROUP BY %1$s, od.dimension_value, od.stage_id$sql$,
        sales_kpi_internal.key_column(dim, 'od'),
        sales_kpi_internal.open_deal_query(dim, sales_kpi_internal.moved_since(as_of),
                                           sales_kpi_internal.changed_since(as_of)));
    IF dim = 'rep' THEN
        RETURN QUERY SELECT * FROM sales_kpi_internal.open_partials_sorted(query, as_of, dim, rate_date);
    ELSE
        RETURN QUERY EXECUTE query USING as_of, dim, rate_date;
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.open_partials(timestamptz, text) IS
    'Internal: per dimension key and open stage, the deals open at as_of: count, amount and amount x the stage probability, in the base currency at the as_of date rate.';
