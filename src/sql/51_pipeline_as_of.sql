-- Pipeline as of a past instant, rebuilt from the histories: each deal's
-- stage from its newest stage event at or before the instant, and its
-- amount, expected close, forecast category and owner from its newest
-- snapshot at or before it.  Deals created later, or with no stage event
-- by then, did not exist in the pipeline yet.
--
-- How it stays fast (the results are those of the plain definition above):
-- * Stage.  opportunity.stage_id and stage_entered_at are maintained from
--   the newest stage event, so a deal whose newest event is not after the
--   instant stands where its row says, since stage_entered_at; only the
--   deals that moved after the instant are looked up in the history, one
--   index probe each.
-- * Snapshot fields.  A deal's row always says what its newest snapshot
--   says, and when that snapshot was taken (snapshot_at, maintained by
--   21_opportunity_history.sql), so only the deals with a snapshot after
--   the instant (a range of opportunity_snapshot_idx) are looked up, one
--   probe each; for a team, only the deals some rep of the
--   team ever owned (opportunity_history_owner_idx) are candidates, each
--   with one probe.
-- plpgsql so that each branch is planned with the actual instant.

-- The deals with a snapshot after an instant (their row says something
-- newer than what they said then): a range of this index.
CREATE INDEX opportunity_snapshot_idx ON @extschema@.opportunity (snapshot_at);

CREATE FUNCTION @extschema@.pipeline_as_of(at timestamptz DEFAULT now(), team text DEFAULT NULL,
                                           open_only boolean DEFAULT false)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               stage_position integer, stage_kind text, is_open boolean, entered_stage_at timestamptz,
               amount numeric, currency character(3), amount_base numeric,
               expected_close date, forecast_category text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_day date := (pipeline_as_of.at AT TIME ZONE @extschema@.reporting_timezone())::date;
    v_reps bigint[];
BEGIN
    IF pipeline_as_of.at IS NULL THEN
        RETURN;
    END IF;
    PERFORM sales_kpi_internal.finite_instant(pipeline_as_of.at, 'at');
    PERFORM sales_kpi_internal.check_team(pipeline_as_of.team);
    IF pipeline_as_of.team IS NULL THEN
        RETURN QUERY
        WITH changed_since AS MATERIALIZED (
            -- the deals with a snapshot after `at` (their row is newer)
            SELECT o.opportunity_id
              FROM @extschema@.opportunity o
             WHERE o.snapshot_at > pipeline_as_of.at
        ), staged AS (
            SELECT o.opportunity_id, o.pipeline_id, o.currency,
                   CASE WHEN o.stage_entered_at <= pipeline_as_of.at THEN o.stage_id
                        ELSE e.stage_id END AS stage_id,
                   CASE WHEN o.stage_entered_at <= pipeline_as_of.at THEN o.stage_entered_at
                        ELSE e.entered_at END AS entered_at,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.amount ELSE h.amount END AS amount,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.expected_close ELSE h.expected_close END
                       AS expected_close,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.forecast_category ELSE h.forecast_category END
                       AS forecast_category,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.owner_id ELSE h.owner_id END AS owner_id
              FROM @extschema@.opportunity o
              -- moved since (its newest event, which the row keeps the time
              -- of, is after the instant): the newest event not after it
              LEFT JOIN LATERAL (
                    SELECT ev.stage_id, ev.entered_at
                      FROM @extschema@.stage_event ev
                     WHERE o.stage_entered_at > pipeline_as_of.at
                       AND ev.opportunity_id = o.opportunity_id AND ev.entered_at <= pipeline_as_of.at
                     ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                     LIMIT 1) e ON true
              -- changed since: the newest snapshot not after the instant
              LEFT JOIN changed_since cs ON cs.opportunity_id = o.opportunity_id
              LEFT JOIN LATERAL (
                    SELECT hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
                      FROM @extschema@.opportunity_history hi
                     WHERE cs.opportunity_id IS NOT NULL
                       AND hi.opportunity_id = o.opportunity_id AND hi.changed_at <= pipeline_as_of.at
                     ORDER BY hi.changed_at DESC
                     LIMIT 1) h ON true
             WHERE o.created_at <= pipeline_as_of.at
               -- open at the instant: open now, or closed after it
               AND (NOT pipeline_as_of.open_only OR o.closed_at IS NULL OR o.closed_at > pipeline_as_of.at)
        )
        SELECT st.opportunity_id, st.pipeline_id, st.owner_id, st.stage_id, s.position, s.kind,
               s.kind = 'open', st.entered_at,
               st.amount, st.currency,
               @extschema@.to_base(st.amount, st.currency, v_day),
               st.expected_close,
               coalesce(st.forecast_category, s.forecast_category)
          FROM staged st
          JOIN @extschema@.stage s ON s.stage_id = st.stage_id
         WHERE NOT pipeline_as_of.open_only OR s.kind = 'open';
    ELSE
        -- the team's reps as a constant, so that the plan can use the owner index
        v_reps := ARRAY(SELECT r.rep_id FROM @extschema@.rep r WHERE r.team = pipeline_as_of.team);
        RETURN QUERY
        WITH candidate AS (
            -- deals some rep of the team owned at or before the instant
            SELECT DISTINCT hi.opportunity_id
              FROM @extschema@.opportunity_history hi
             WHERE hi.owner_id = ANY (v_reps)
               AND hi.changed_at <= pipeline_as_of.at
        )
        SELECT o.opportunity_id, o.pipeline_id, h.owner_id, e.stage_id, s.position, s.kind,
               s.kind = 'open', e.entered_at,
               h.amount, o.currency,
               @extschema@.to_base(h.amount, o.currency, v_day),
               h.expected_close,
               coalesce(h.forecast_category, s.forecast_category)
          FROM candidate c
          CROSS JOIN LATERAL (
                SELECT o.opportunity_id, o.pipeline_id, o.currency
                  FROM @extschema@.opportunity o
                 WHERE o.opportunity_id = c.opportunity_id AND o.created_at <= pipeline_as_of.at
                OFFSET 0) o
          CROSS JOIN LATERAL (
                SELECT hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
                  FROM @extschema@.opportunity_history hi
                 WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= pipeline_as_of.at
                 ORDER BY hi.changed_at DESC
                 LIMIT 1) h
          CROSS JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = o.opportunity_id AND ev.entered_at <= pipeline_as_of.at
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id
         WHERE h.owner_id = ANY (v_reps)
           AND (NOT pipeline_as_of.open_only OR s.kind = 'open');
    END IF;
END;
$$;
COMMENT ON FUNCTION @extschema@.pipeline_as_of(timestamptz, text, boolean) IS
    'Every deal as it stood at a past instant: stage (newest stage event not after it), amount, expected close, forecast category and owner (newest snapshot not after it), open or closed, amount in the base currency at that day''s rate. Optionally only the deals then owned by reps of one team, or only the deals then open.';
