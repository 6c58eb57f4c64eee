-- Reading a deal's histories as they stood at an instant: the building
-- blocks the KPIs use to rebuild a deal's stage or snapshot fields at
-- as_of, for the few deals whose row has changed since.  Each is one
-- backward index probe, returned as one composite value for a call in an
-- expression: (snapshot_at(id, t)).owner_id.  A call is not a subquery, so
-- a query that makes it per deal can still run in parallel workers
-- (PostgreSQL 15 keeps a query with a correlated subquery out of them).
-- The fields are NULL when there is no such row.

-- The deal's newest stage event not after `at` (latest entered_at, ties
-- by the higher stage_event_id).
CREATE FUNCTION sales_kpi_internal.stage_event_at(opportunity_id bigint, at timestamptz,
                                           OUT stage_event_id bigint, OUT stage_id bigint,
                                           OUT entered_at timestamptz)
-- strict: a NULL argument costs no lookup
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ev.stage_event_id, ev.stage_id, ev.entered_at
      FROM @extschema@.stage_event ev
     WHERE ev.opportunity_id = stage_event_at.opportunity_id
       AND ev.entered_at <= stage_event_at.at
     ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_event_at(bigint, timestamptz) IS
    'Internal: a deal''s newest stage event not after an instant, as one value (NULL fields if none).';

-- The deal's newest history snapshot not after `at`.
CREATE FUNCTION sales_kpi_internal.snapshot_at(opportunity_id bigint, at timestamptz,
                                        OUT changed_at timestamptz, OUT amount numeric, OUT expected_close date,
                                        OUT forecast_category text, OUT owner_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT hi.changed_at, hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
      FROM @extschema@.opportunity_history hi
     WHERE hi.opportunity_id = snapshot_at.opportunity_id
       AND hi.changed_at <= snapshot_at.at
     ORDER BY hi.changed_at DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION sales_kpi_internal.snapshot_at(bigint, timestamptz) IS
    'Internal: a deal''s newest history snapshot not after an instant, as one value (NULL fields if none).';
