-- Pipeline as of a past instant, rebuilt from the histories: each deal's
-- stage from its newest stage event at or before the instant, and its
-- amount, expected close, forecast category and owner from its newest
-- snapshot at or before it.  Deals created later, or with no stage event
-- by then, did not exist in the pipeline yet.

CREATE FUNCTION @extschema@.pipeline_as_of(at timestamptz DEFAULT now(), team text DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               stage_position integer, stage_kind text, is_open boolean, entered_stage_at timestamptz,
               amount numeric, currency character(3), amount_base numeric,
               expected_close date, forecast_category text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.opportunity_id, o.pipeline_id, h.owner_id, e.stage_id, s.position, s.kind,
           s.kind = 'open', e.entered_at,
           h.amount, o.currency,
           @extschema@.to_base(h.amount, o.currency, (at AT TIME ZONE @extschema@.reporting_timezone())::date),
           h.expected_close,
           coalesce(h.forecast_category, s.forecast_category)
      FROM @extschema@.opportunity o
      CROSS JOIN LATERAL (
            SELECT ev.stage_id, ev.entered_at
              FROM @extschema@.stage_event ev
             WHERE ev.opportunity_id = o.opportunity_id AND ev.entered_at <= at
             ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
             LIMIT 1) e
      JOIN @extschema@.stage s ON s.stage_id = e.stage_id
      LEFT JOIN LATERAL (
            SELECT hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
              FROM @extschema@.opportunity_history hi
             WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= at
             ORDER BY hi.changed_at DESC
             LIMIT 1) h ON true
     WHERE o.created_at <= at
       AND (team IS NULL
            OR h.owner_id IN (SELECT r.rep_id FROM @extschema@.rep r WHERE r.team = pipeline_as_of.team))
$$;
COMMENT ON FUNCTION @extschema@.pipeline_as_of(timestamptz, text) IS
    'Every deal as it stood at a past instant: stage (newest stage event not after it), amount, expected close, forecast category and owner (newest snapshot not after it), open or closed, amount in the base currency at that day''s rate. Optionally only the deals then owned by reps of one team.';
