-- Stage duration, dynamic norms and stalled deals (kpis.md section 2).
--
-- A stay starts at a stage event and ends at the deal's next stage event
-- (events ordered by entered_at, ties by stage_event_id, so back-dated
-- inserts fall into place).  As in stage_transition(), an event into the
-- stage the deal is already in re-enters it (a regression): it ends one stay
-- and starts another.  The stay the deal is in at as_of runs to as_of.  Only open stages have stays here: the time a
-- deal spends won or lost (before a reopening) is not stage time.
--
-- All work is restricted to a set of deals first (the deals open at as_of,
-- the deals won in the lookback, or the deals asked for) and their events
-- are read through the (opportunity_id, entered_at, stage_event_id) index:
-- nothing here sorts or windows the whole stage history.  The functions
-- that aggregate many stays run with work_mem = 64MB so that their sorts
-- and hashes stay in memory at a million deals.

-- Internal: deals as they stood at as_of: the deals asked for, whatever
-- their state (a probe each), or (opportunity_ids null) every deal open at
-- as_of, from pipeline_as_of.
CREATE FUNCTION @extschema@.stage_time_deals(as_of timestamptz, opportunity_ids bigint[])
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               is_open boolean, expected_close date, amount_base numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    as_of_date date := (as_of AT TIME ZONE @extschema@.reporting_timezone())::date;
BEGIN
    IF opportunity_ids IS NOT NULL THEN
        RETURN QUERY
        SELECT o.opportunity_id, o.pipeline_id, h.owner_id, e.stage_id, s.kind = 'open', h.expected_close,
               @extschema@.to_base(h.amount, o.currency, as_of_date)
          FROM (SELECT DISTINCT u.id FROM unnest(opportunity_ids) u(id)) d
          JOIN @extschema@.opportunity o ON o.opportunity_id = d.id AND o.created_at <= as_of
         CROSS JOIN LATERAL (
                SELECT ev.stage_id
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = o.opportunity_id AND ev.entered_at <= as_of
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id
          LEFT JOIN LATERAL (
                SELECT hi.amount, hi.expected_close, hi.owner_id
                  FROM @extschema@.opportunity_history hi
                 WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= as_of
                 ORDER BY hi.changed_at DESC
                 LIMIT 1) h ON true;
        RETURN;
    END IF;

    RETURN QUERY
    SELECT p.opportunity_id, p.pipeline_id, p.owner_id, p.stage_id, true, p.expected_close, p.amount_base
      FROM @extschema@.pipeline_as_of(as_of, open_only => true) p;
END;
$$;
COMMENT ON FUNCTION @extschema@.stage_time_deals(timestamptz, bigint[]) IS
    'Internal: the given deals (null: every deal open at as_of) as they stood at as_of, with the owner, expected close and amount in the base currency then.';

-- The KPI functions.  Each public function is a thin SQL function over a
-- plpgsql one (named *_rows) so that the argument "dimension" and the
-- output column "dimension" can share their name, and so that every query
-- is planned for the actual as_of.

CREATE FUNCTION @extschema@.stage_time_durations_rows(at_time timestamptz, dim text, ids bigint[])
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, stage_position integer,
               is_open boolean, is_current boolean, stays bigint,
               latest_entered_at timestamptz, latest_left_at timestamptz,
               latest_stay_days double precision, total_days double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    -- the open stages with their names and positions, as constants
    open_stages bigint[];
    open_names text[];
    open_positions integer[];
BEGIN
    PERFORM @extschema@.check_kpi_args(at_time, dim);
    SELECT array_agg(s.stage_id ORDER BY s.stage_id), array_agg(s.name ORDER BY s.stage_id),
           array_agg(s.position ORDER BY s.stage_id)
      INTO open_stages, open_names, open_positions
      FROM @extschema@.stage s
     WHERE s.kind = 'open';
    RETURN QUERY
    WITH deal AS MATERIALIZED (
        SELECT * FROM @extschema@.stage_time_deals(at_time, ids)
    )
    SELECT dim,
           CASE WHEN dim = 'company' THEN 'all'
                ELSE @extschema@.dimension_value(dim, dd.pipeline, r.name, r.team, dd.source,
                                                 dd.industry, dd.segment, dd.region, dd.competitor, dd.kind) END,
           d.opportunity_id, d.pipeline_id, d.pipeline, ps.stage_id, open_names[ps.k], open_positions[ps.k],
           d.is_open, ps.latest_left_at IS NULL,
           ps.stays, ps.latest_entered_at, ps.latest_left_at,
           extract(epoch FROM coalesce(ps.latest_left_at, at_time) - ps.latest_entered_at)::double precision / 86400,
           ps.total_days
      FROM (SELECT dl.*, p.name AS pipeline
              FROM deal dl
              JOIN @extschema@.pipeline p ON p.pipeline_id = dl.pipeline_id
             ORDER BY dl.opportunity_id) d
      -- each event starts a stay that the deal's next event ends; each deal's
      -- events are read in order through the index, and windowed and grouped
      -- by stage there (the days summed in time order): nothing sorts or
      -- hashes the events of all the deals
      CROSS JOIN LATERAL (
            SELECT x.stage_id, array_position(open_stages, x.stage_id) AS k, count(*) AS stays,
                   max(x.entered_at) AS latest_entered_at,
                   -- the latest stay is the current one if any stay of the stage is
                   CASE WHEN bool_or(x.left_at IS NULL) THEN NULL ELSE max(x.left_at) END AS latest_left_at,
                   sum(extract(epoch FROM coalesce(x.left_at, at_time) - x.entered_at)::double precision / 86400)
                       AS total_days
              FROM (SELECT ev.stage_id, ev.entered_at, ev.stage_event_id,
                           lead(ev.entered_at) OVER (ORDER BY ev.entered_at, ev.stage_event_id) AS left_at
                      FROM @extschema@.stage_event ev
                     WHERE ev.opportunity_id = d.opportunity_id AND ev.entered_at <= at_time
                     ORDER BY ev.stage_id, ev.entered_at, ev.stage_event_id) x
             WHERE x.stage_id = ANY (open_stages)
             GROUP BY x.stage_id) ps
      -- attributes only when a breakdown needs them
      LEFT JOIN LATERAL (
            SELECT x.* FROM @extschema@.deal_dimensions x
             WHERE x.opportunity_id = d.opportunity_id AND dim <> 'company') dd ON true
      LEFT JOIN @extschema@.rep r ON r.rep_id = d.owner_id
     ORDER BY d.opportunity_id, open_positions[ps.k];
END;
$$;
COMMENT ON FUNCTION @extschema@.stage_time_durations_rows(timestamptz, text, bigint[]) IS
    'Internal: the rows of stage_durations().';

CREATE FUNCTION @extschema@.stage_durations(as_of timestamptz DEFAULT now(),
                                            dimension text DEFAULT 'company',
                                            opportunity_ids bigint[] DEFAULT NULL)
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, stage_position integer,
               is_open boolean, is_current boolean, stays bigint,
               latest_entered_at timestamptz, latest_left_at timestamptz,
               latest_stay_days double precision, total_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@.stage_time_durations_rows(as_of, dimension, opportunity_ids)
$$;
COMMENT ON FUNCTION @extschema@.stage_durations(timestamptz, text, bigint[]) IS
    'Per deal and open stage, as the history stood at as_of: number of stays, the latest stay (entered, left, days; the current one runs to as_of) and the cumulative days over all stays. Deals open at as_of, or the deals given in opportunity_ids whatever their state.';

CREATE FUNCTION @extschema@.stage_time_norms_rows(at_time timestamptz, dim text, lb interval)
RETURNS TABLE (dimension text, dimension_value text, pipeline_id bigint, pipeline text,
               stage_id bigint, stage text, stage_position integer,
               stays bigint, mean_days double precision,
               p50_days double precision, p75_days double precision, p90_days double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET enable_hashagg = off
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    -- the norms per (pipeline, dimension value, stage) with stays, kept in
    -- arrays so that the final query is planned knowing how many there are
    a_pipeline bigint[];
    a_dv text[];
    a_stage bigint[];
    a_n bigint[];
    a_mean double precision[];
    a_p50 double precision[];
    a_p75 double precision[];
    a_p90 double precision[];
    -- the deals now won that closed in [as_of - lookback, as_of]
    w_id bigint[];
    w_pipeline bigint[];
    w_closed timestamptz[];
    prev_indexscan text := current_setting('enable_indexscan');
    open_stages bigint[] := ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'open');
BEGIN
    PERFORM @extschema@.check_kpi_args(at_time, dim, lookback => lb);
    -- The deals now won that closed in the lookback (those with events after
    -- as_of are sorted out below).  Over the default year they are many: a
    -- bitmap scan reads their pages once each, where a plain index scan of
    -- the close dates visits a heap page per deal, so plain index scans are
    -- off for this one query.  Kept in deal order, for the probes of their
    -- stage events below.
    PERFORM set_config('enable_indexscan', 'off', true);
    SELECT array_agg(o.opportunity_id ORDER BY o.opportunity_id),
           array_agg(o.pipeline_id ORDER BY o.opportunity_id),
           array_agg(o.closed_at ORDER BY o.opportunity_id)
      INTO w_id, w_pipeline, w_closed
      FROM @extschema@.opportunity o
     WHERE o.stage_id = ANY (ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'won'))
       AND o.closed_at >= at_time - lb AND o.closed_at <= at_time;
    PERFORM set_config('enable_indexscan', prev_indexscan, true);
    IF dim = 'company' THEN
        -- one group per pipeline and stage: a few dozen summaries fit in
        -- memory, and hashing spares the sort of every stay (the summaries
        -- do not depend on the order of the stays); undone at return
        PERFORM set_config('enable_hashagg', 'on', true);
    END IF;
    WITH moved AS MATERIALIZED (
        -- only deals with events after as_of can differ from their current row
        SELECT DISTINCT x.opportunity_id FROM @extschema@.stage_event x WHERE x.entered_at > at_time
    ), won AS MATERIALIZED (
        -- deals whose newest event not after as_of is won and entered in [as_of - lookback, as_of]
        SELECT o.opportunity_id, o.pipeline_id, o.closed_at
          FROM unnest(w_id, w_pipeline, w_closed) o(opportunity_id, pipeline_id, closed_at)
         WHERE o.opportunity_id NOT IN (SELECT m.opportunity_id FROM moved m)
        UNION ALL
        SELECT o.opportunity_id, o.pipeline_id, e.entered_at
          FROM moved m
          JOIN @extschema@.opportunity o ON o.opportunity_id = m.opportunity_id
         CROSS JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = m.opportunity_id AND ev.entered_at <= at_time
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id AND s.kind = 'won'
         WHERE e.entered_at >= at_time - lb
    ), summary AS (
        -- each event of a won deal in an open stage is a stay, ended by the
        -- next event; the summaries (up to 8 kB each) are read as they are
        -- made, one group at a time (so no hash aggregation, see the SET)
        SELECT g.pipeline_id, g.dv, g.stage_id,
               @extschema@.duration_count(g.d) AS n,
               extract(epoch FROM @extschema@.mean(g.d))::double precision / 86400 AS mean_days,
               extract(epoch FROM @extschema@.percentile(g.d, 0.5))::double precision / 86400 AS p50,
               extract(epoch FROM @extschema@.percentile(g.d, 0.75))::double precision / 86400 AS p75,
               extract(epoch FROM @extschema@.percentile(g.d, 0.9))::double precision / 86400 AS p90
          FROM (
        SELECT x.pipeline_id, x.dv, x.stage_id, @extschema@.duration_agg(x.stay) AS d
          FROM (SELECT wd.pipeline_id, wd.dv, e.stage_id, e.stay
                  FROM (SELECT w.opportunity_id, w.pipeline_id,
                               CASE WHEN dim = 'company' THEN 'all'
                                    ELSE @extschema@.dimension_value(dim, dd.pipeline, r.name, r.team, dd.source,
                                                                     dd.industry, dd.segment, dd.region,
                                                                     dd.competitor, dd.kind) END AS dv
                          FROM won w
                          -- attributes only when a breakdown needs them
                          LEFT JOIN LATERAL (
                                SELECT d.* FROM @extschema@.deal_dimensions d
                                 WHERE d.opportunity_id = w.opportunity_id AND dim <> 'company') dd ON true
                          -- the rep credited with the win: the owner at the close
                          LEFT JOIN LATERAL (
                                SELECT hi.owner_id
                                  FROM @extschema@.opportunity_history hi
                                 WHERE hi.opportunity_id = w.opportunity_id AND hi.changed_at <= w.closed_at
                                   AND dim IN ('rep', 'team')
                                 ORDER BY hi.changed_at DESC
                                 LIMIT 1) h ON true
                          LEFT JOIN @extschema@.rep r ON r.rep_id = h.owner_id
                         ORDER BY w.opportunity_id) wd
                  -- each won deal's stays from its own events, read in order
                  -- through the index (one probe per deal, in deal order for
                  -- locality; no sort of all of them, no hash of the table)
                  CROSS JOIN LATERAL (
                        SELECT ev.stage_id,
                               lead(ev.entered_at) OVER (ORDER BY ev.entered_at, ev.stage_event_id)
                                   - ev.entered_at AS stay
                          FROM @extschema@.stage_event ev
                         WHERE ev.opportunity_id = wd.opportunity_id AND ev.entered_at <= at_time) e) x
         WHERE x.stay IS NOT NULL AND x.stage_id = ANY (open_stages)
         GROUP BY x.pipeline_id, x.dv, x.stage_id) g
    )
    SELECT array_agg(sm.pipeline_id), array_agg(sm.dv), array_agg(sm.stage_id), array_agg(sm.n),
           array_agg(sm.mean_days), array_agg(sm.p50), array_agg(sm.p75), array_agg(sm.p90)
      INTO a_pipeline, a_dv, a_stage, a_n, a_mean, a_p50, a_p75, a_p90
      FROM summary sm;

    RETURN QUERY
    WITH summary AS (
        SELECT *
          FROM unnest(a_pipeline, a_dv, a_stage, a_n, a_mean, a_p50, a_p75, a_p90)
               u(pipeline_id, dv, stage_id, n, mean_days, p50, p75, p90)
    ), groups AS (
        -- every open stage for each pipeline and dimension value with won
        -- deals (for the company: every pipeline)
        SELECT p.pipeline_id, 'all'::text AS dv
          FROM @extschema@.pipeline p
         WHERE dim = 'company'
        UNION
        SELECT sm.pipeline_id, sm.dv FROM summary sm
    )
    SELECT dim, g.dv, p.pipeline_id, p.name, s.stage_id, s.name, s.position,
           coalesce(sm.n, 0), sm.mean_days, sm.p50, sm.p75, sm.p90
      FROM groups g
      JOIN @extschema@.pipeline p ON p.pipeline_id = g.pipeline_id
      JOIN @extschema@.stage s ON s.pipeline_id = g.pipeline_id AND s.kind = 'open'
      LEFT JOIN summary sm ON sm.pipeline_id = g.pipeline_id AND sm.dv = g.dv AND sm.stage_id = s.stage_id
     ORDER BY g.dv, p.name, s.position;
END;
$$;
COMMENT ON FUNCTION @extschema@.stage_time_norms_rows(timestamptz, text, interval) IS
    'Internal: the rows of stage_norms().';

CREATE FUNCTION @extschema@.stage_norms(as_of timestamptz DEFAULT now(),
                                        dimension text DEFAULT 'company',
                                        lookback interval DEFAULT '365 days')
RETURNS TABLE (dimension text, dimension_value text, pipeline_id bigint, pipeline text,
               stage_id bigint, stage text, stage_position integer,
               stays bigint, mean_days double precision,
               p50_days double precision, p75_days double precision, p90_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@.stage_time_norms_rows(as_of, dimension, lookback)
$$;
COMMENT ON FUNCTION @extschema@.stage_norms(timestamptz, text, interval) IS
    'Dynamic stage norms: per pipeline and open stage, count, mean and p50/p75/p90 days of the completed stays of deals won within the lookback before as_of (as the history stood at as_of); null norms where no won deal passed the stage.';

CREATE FUNCTION @extschema@.stage_time_stalled_rows(at_time timestamptz, dim text, lb interval)
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, owner_id bigint,
               amount_base numeric, reasons text[],
               stage_entered_at timestamptz, stage_days double precision, norm_p75_days double precision,
               missing_milestones text[], expected_close date, overdue_days double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    as_of_date date;
BEGIN
    PERFORM @extschema@.check_kpi_args(at_time, dim, lookback => lb);
    as_of_date := (at_time AT TIME ZONE @extschema@.reporting_timezone())::date;
    RETURN QUERY
    WITH deal AS MATERIALIZED (
        -- the deals open at as_of, with the time they entered their current
        -- stage (their newest event not after as_of): the current stay
        SELECT p.opportunity_id, p.pipeline_id, p.owner_id, p.stage_id, p.expected_close, p.amount_base,
               p.entered_stage_at AS entered_at,
               extract(epoch FROM at_time - p.entered_stage_at)::double precision / 86400 AS stay_days
          FROM @extschema@.pipeline_as_of(at_time, open_only => true) p
    ), norm AS (
        SELECT n.stage_id, n.p75_days
          FROM @extschema@.stage_time_norms_rows(at_time, 'company', lb) n
    ), required AS (
        -- the required milestones of each stage, in position order
        SELECT m.stage_id, array_agg(m.milestone_id ORDER BY m.position) AS ids,
               array_agg(m.name ORDER BY m.position) AS names
          FROM @extschema@.milestone m
         WHERE m.required
         GROUP BY m.stage_id
    ), missing AS (
        -- required milestones of the current stage not completed by as_of
        -- (null if none): one index probe per deal for those of its stage
        SELECT d.opportunity_id,
               (SELECT array_agg(u.name ORDER BY u.k)
                  FROM unnest(r.ids, r.names) WITH ORDINALITY u(id, name, k)
                 WHERE u.id <> ALL (c.done)) AS names
          FROM deal d
          JOIN required r ON r.stage_id = d.stage_id
          CROSS JOIN LATERAL (
                SELECT ARRAY(SELECT me.milestone_id
                               FROM @extschema@.milestone_event me
                              WHERE me.opportunity_id = d.opportunity_id AND me.milestone_id = ANY (r.ids)
                                AND me.completed_at <= at_time) AS done) c
    ), flagged AS (
        SELECT d.*, n.p75_days, mi.names,
               array_remove(ARRAY[
                   CASE WHEN d.stay_days > n.p75_days THEN 'over_norm' END,
                   CASE WHEN mi.names IS NOT NULL THEN 'missing_milestones' END,
                   CASE WHEN d.expected_close < as_of_date THEN 'past_expected_close' END], NULL) AS reasons
          FROM deal d
          LEFT JOIN norm n ON n.stage_id = d.stage_id
          LEFT JOIN missing mi ON mi.opportunity_id = d.opportunity_id
    )
    SELECT dim,
           CASE WHEN dim = 'company' THEN 'all'
                ELSE @extschema@.dimension_value(dim, dd.pipeline, r.name, r.team, dd.source,
                                                 dd.industry, dd.segment, dd.region, dd.competitor, dd.kind) END,
           f.opportunity_id, f.pipeline_id, p.name, f.stage_id, s.name, f.owner_id, f.amount_base,
           f.reasons, f.entered_at, f.stay_days, f.p75_days, f.names, f.expected_close,
           CASE WHEN f.expected_close < as_of_date THEN (as_of_date - f.expected_close)::double precision END
      FROM flagged f
      JOIN @extschema@.stage s ON s.stage_id = f.stage_id
      JOIN @extschema@.pipeline p ON p.pipeline_id = f.pipeline_id
      -- attributes only when a breakdown needs them
      LEFT JOIN LATERAL (
            SELECT x.* FROM @extschema@.deal_dimensions x
             WHERE x.opportunity_id = f.opportunity_id AND dim <> 'company') dd ON true
      LEFT JOIN @extschema@.rep r ON r.rep_id = f.owner_id
     WHERE cardinality(f.reasons) > 0
     ORDER BY f.opportunity_id;
END;
$$;
COMMENT ON FUNCTION @extschema@.stage_time_stalled_rows(timestamptz, text, interval) IS
    'Internal: the rows of stalled_deals().';

CREATE FUNCTION @extschema@.stalled_deals(as_of timestamptz DEFAULT now(),
                                          dimension text DEFAULT 'company',
                                          lookback interval DEFAULT '365 days')
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, owner_id bigint,
               amount_base numeric, reasons text[],
               stage_entered_at timestamptz, stage_days double precision, norm_p75_days double precision,
               missing_milestones text[], expected_close date, overdue_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@.stage_time_stalled_rows(as_of, dimension, lookback)
$$;
COMMENT ON FUNCTION @extschema@.stalled_deals(timestamptz, text, interval) IS
    'Open deals at as_of that are stalled or at risk, one row each with the reasons: over_norm (current stay longer than the stage''s company p75 norm), missing_milestones (required milestones of the current stage not completed by as_of), past_expected_close.';

CREATE VIEW @extschema@.stage_durations AS SELECT * FROM @extschema@.stage_durations();
COMMENT ON VIEW @extschema@.stage_durations IS
    'stage_durations() with the defaults: per deal open now and open stage, the latest and cumulative days in the stage.';
CREATE VIEW @extschema@.stage_norms AS SELECT * FROM @extschema@.stage_norms();
COMMENT ON VIEW @extschema@.stage_norms IS
    'stage_norms() with the defaults: per pipeline and open stage, p50/p75/p90 days of the stays of deals won in the last 365 days.';
CREATE VIEW @extschema@.stalled_deals AS SELECT * FROM @extschema@.stalled_deals();
COMMENT ON VIEW @extschema@.stalled_deals IS
    'stalled_deals() with the defaults: open deals now that are over the stage''s p75 norm, miss required milestones or are past their expected close, with the reasons.';
