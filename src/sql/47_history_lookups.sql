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
