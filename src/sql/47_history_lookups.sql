-- Reading a deal's histories as they stood at an instant: the building
-- blocks every KPI uses to rebuild a deal's stage or snapshot fields at
-- as_of, for the few deals whose row has changed since.
--
-- Both are called per deal, in a LATERAL or scalar subquery, for the deals
-- whose row changed after the instant: one backward index probe each.  A
-- caller that needs the row only for some deals passes wanted = false for
-- the others, which skips the probe.

-- The deal's newest stage event not after `at` (latest entered_at, ties
-- by the higher stage_event_id); no row when it had none by then.
CREATE FUNCTION @extschema@.newest_stage_event(opportunity_id bigint, at timestamptz,
                                               wanted boolean DEFAULT true)
RETURNS TABLE (stage_event_id bigint, stage_id bigint, entered_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ev.stage_event_id, ev.stage_id, ev.entered_at
      FROM @extschema@.stage_event ev
     WHERE newest_stage_event.wanted
       AND ev.opportunity_id = newest_stage_event.opportunity_id
       AND ev.entered_at <= newest_stage_event.at
     ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.newest_stage_event(bigint, timestamptz, boolean) IS
    'Internal: a deal''s newest stage event not after an instant (no row if none, or if not wanted).';

-- The deal's newest history snapshot not after `at`; no row when none is
-- that old.
CREATE FUNCTION @extschema@.newest_snapshot(opportunity_id bigint, at timestamptz, wanted boolean DEFAULT true)
RETURNS TABLE (changed_at timestamptz, amount numeric, expected_close date, forecast_category text,
               owner_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT hi.changed_at, hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
      FROM @extschema@.opportunity_history hi
     WHERE newest_snapshot.wanted
       AND hi.opportunity_id = newest_snapshot.opportunity_id
       AND hi.changed_at <= newest_snapshot.at
     ORDER BY hi.changed_at DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.newest_snapshot(bigint, timestamptz, boolean) IS
    'Internal: a deal''s newest history snapshot not after an instant (no row if none, or if not wanted).';

-- The same two as one composite value, for a call in an expression:
-- (snapshot_at(id, t)).owner_id.  A call is not a subquery, so a query
-- that makes it per deal can still run in parallel workers; NULL fields
-- when there is no such row.
CREATE FUNCTION @extschema@.stage_event_at(opportunity_id bigint, at timestamptz,
                                           OUT stage_event_id bigint, OUT stage_id bigint,
                                           OUT entered_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.stage_event_id, e.stage_id, e.entered_at
      FROM @extschema@.newest_stage_event(stage_event_at.opportunity_id, stage_event_at.at) e
$$;
COMMENT ON FUNCTION @extschema@.stage_event_at(bigint, timestamptz) IS
    'Internal: newest_stage_event() as one value (NULL fields if none), for a call in an expression.';

CREATE FUNCTION @extschema@.snapshot_at(opportunity_id bigint, at timestamptz,
                                        OUT changed_at timestamptz, OUT amount numeric, OUT expected_close date,
                                        OUT forecast_category text, OUT owner_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.changed_at, h.amount, h.expected_close, h.forecast_category, h.owner_id
      FROM @extschema@.newest_snapshot(snapshot_at.opportunity_id, snapshot_at.at) h
$$;
COMMENT ON FUNCTION @extschema@.snapshot_at(bigint, timestamptz) IS
    'Internal: newest_snapshot() as one value (NULL fields if none), for a call in an expression.';
