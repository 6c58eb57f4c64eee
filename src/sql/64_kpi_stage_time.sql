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
-- are read through the (opportunity_id, entered_at, stage_event_id) index
-- in one scan for all of them (stage_stays, stage_stay_totals): nothing here
-- sorts or windows the whole stage history.  The functions that aggregate
-- or sort many stays run with a larger work_mem (64MB, 128MB for the rows of
-- stage_durations, about 75MB at a million deals) so that their sorts and
-- hashes stay in memory.

-- The stays of the given deals in the given stages (null: every stage), as
-- the history stood at as_of, from one index scan in deal and time order
-- (C, see stage_walk.c): each event starts a stay that the deal's next event
-- ends; the newest one's runs on (left_at null).
CREATE FUNCTION sales_kpi_internal.stage_stays(as_of timestamptz, opportunity_ids bigint[], stages bigint[] DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, stage_id bigint, entered_at timestamptz, left_at timestamptz)
AS 'MODULE_PATHNAME', 'stage_stays'
-- the cost of an index scan over many deals' events, so that the planner runs
-- two calls over halves of a long list in parallel workers
LANGUAGE C STABLE PARALLEL SAFE COST 10000000 ROWS 10000;
COMMENT ON FUNCTION sales_kpi_internal.stage_stays(timestamptz, bigint[], bigint[]) IS
    'Internal: each stay of the given deals in the given stages as the history stood at as_of: the stage, when it was entered and left (null: still in it).';

-- The same stays totalled per deal and stage: how many, the latest (left_at
-- null: the deal is still in the stage) and the days of all of them, the
-- current one up to as_of.
CREATE FUNCTION sales_kpi_internal.stage_stay_totals(as_of timestamptz, opportunity_ids bigint[],
                                              stages bigint[] DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, stage_id bigint, stays bigint, latest_entered_at timestamptz,
               latest_left_at timestamptz, total_days double precision)
AS 'MODULE_PATHNAME', 'stage_stay_totals'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10000;
COMMENT ON FUNCTION sales_kpi_internal.stage_stay_totals(timestamptz, bigint[], bigint[]) IS
    'Internal: the stays of the given deals in the given stages as the history stood at as_of, per deal and stage: count, the latest stay (left_at null: still in it) and the days of all of them.';

-- Internal: deals as they stood at as_of: the deals asked for, whatever
-- their state (a probe each), or (opportunity_ids null) every deal open at
-- as_of, from the open-deal pass of the KPI engine (open_deal_rows, the
-- deals of pipeline_as_of(as_of, open_only => true)).  ROWS: the open
-- deals of a big pipeline, so that the callers hash them.
CREATE FUNCTION sales_kpi_internal.stage_time_deals(as_of timestamptz, opportunity_ids bigint[])
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               is_open boolean, expected_close date, amount_base numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
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
    SELECT p.opportunity_id, p.pipeline_id, p.owner_id, p.stage_id, true, p.expected_close, p.amount
      FROM sales_kpi_internal.open_deal_rows(as_of) p;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_deals(timestamptz, bigint[]) IS
    'Internal: the given deals (null: every deal open at as_of) as they stood at as_of, with the owner, expected close and amount in the base currency then.';

-- The KPI functions.  Each public function is a thin SQL function over a
-- plpgsql one (named *_rows) so that the argument "dimension" and the
-- output column "dimension" can share their name, and so that every query
-- is planned for the actual as_of.

CREATE FUNCTION sales_kpi_internal.stage_time_durations_rows(at_time timestamptz, dim text, ids bigint[])
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, stage_position integer,
               is_open boolean, is_current boolean, stays bigint,
               latest_entered_at timestamptz, latest_left_at timestamptz,
               latest_stay_days double precision, total_days double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '128MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    -- the open stages with their names and positions, as constants
    open_stages bigint[];
    open_names text[];
    open_positions integer[];
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(at_time, dim);
    SELECT array_agg(s.stage_id ORDER BY s.stage_id), array_agg(s.name ORDER BY s.stage_id),
           array_agg(s.position ORDER BY s.stage_id)
      INTO open_stages, open_names, open_positions
      FROM @extschema@.stage s
     WHERE s.kind = 'open';
    RETURN QUERY
    WITH deal AS MATERIALIZED (
        SELECT * FROM sales_kpi_internal.stage_time_deals(at_time, ids)
    ), stay AS (
        -- every stay of these deals in an open stage, totalled per deal and
        -- stage as it is read in one index scan (stage_stay_totals)
        SELECT x.*, array_position(open_stages, x.stage_id) AS k
          FROM sales_kpi_internal.stage_stay_totals(at_time, ARRAY(SELECT dl.opportunity_id FROM deal dl), open_stages) x
    ), bd AS (
        -- a deal attribute's breakdown, read in one pass (the rep: the deal's owner below)
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN dim IN ('company', 'rep', 'team') THEN '{}'
                        ELSE ARRAY(SELECT dl.opportunity_id FROM deal dl) END, at_time, dim) b
    )
    SELECT dim,
           CASE WHEN dim = 'company' THEN 'all'
                WHEN dim IN ('rep', 'team')
                THEN @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                ELSE bd.dimension_value END,
           d.opportunity_id, d.pipeline_id, p.name, ps.stage_id, open_names[ps.k], open_positions[ps.k],
           d.is_open, ps.latest_left_at IS NULL,
           ps.stays, ps.latest_entered_at, ps.latest_left_at,
           extract(epoch FROM coalesce(ps.latest_left_at, at_time) - ps.latest_entered_at)::double precision / 86400,
           ps.total_days
      FROM deal d
      JOIN @extschema@.pipeline p ON p.pipeline_id = d.pipeline_id
      JOIN stay ps ON ps.opportunity_id = d.opportunity_id
      LEFT JOIN bd ON bd.opportunity_id = d.opportunity_id
      LEFT JOIN @extschema@.rep r ON r.rep_id = d.owner_id
     ORDER BY d.opportunity_id, open_positions[ps.k];
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_durations_rows(timestamptz, text, bigint[]) IS
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
    SELECT * FROM sales_kpi_internal.stage_time_durations_rows(as_of, dimension, opportunity_ids)
$$;
COMMENT ON FUNCTION @extschema@.stage_durations(timestamptz, text, bigint[]) IS
    'Per deal and open stage, as the history stood at as_of: number of stays, the latest stay (entered, left, days; the current one runs to as_of) and the cumulative days over all stays. Deals open at as_of, or the deals given in opportunity_ids whatever their state.';

-- The deals now won that closed in [lo, hi].  Over a year they are many: a
-- bitmap scan reads their pages once each, where a plain index scan of the
-- close dates visits a heap page per deal, so plain index scans are off
-- here (a function of its own: a SET clause, unlike set_config(), also
-- holds in a parallel worker).
CREATE FUNCTION sales_kpi_internal.stage_time_won_deals(lo timestamptz, hi timestamptz)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, closed_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET enable_indexscan = off
AS $$
    SELECT o.opportunity_id, o.pipeline_id, o.closed_at
      FROM @extschema@.opportunity o
     WHERE o.stage_id = ANY (ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'won'))
       AND o.closed_at >= lo AND o.closed_at <= hi
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_won_deals(timestamptz, timestamptz) IS
    'Internal: the deals now won that closed in [lo, hi], with their pipeline and close instant.';

CREATE FUNCTION sales_kpi_internal.stage_time_norms_rows(at_time timestamptz, dim text, lb interval)
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
    -- the deals won in [as_of - lookback, as_of] as the history stood at as_of
    w_id bigint[];
    w_pipeline bigint[];
    w_closed timestamptz[];
    half integer;
    open_stages bigint[] := ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'open');
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(at_time, dim, lookback => lb);
    -- The deals won in the lookback as the history stood at as_of, in deal
    -- order: those now won that closed in it, less those with events after
    -- as_of, plus those of them that were won then.
    WITH moved AS MATERIALIZED (
        -- only deals with events after as_of can differ from their current row
        SELECT DISTINCT x.opportunity_id FROM @extschema@.stage_event x WHERE x.entered_at > at_time
    ), won AS (
        -- deals whose newest event not after as_of is won and entered in [as_of - lookback, as_of]
        SELECT o.opportunity_id, o.pipeline_id, o.closed_at
          FROM sales_kpi_internal.stage_time_won_deals(at_time - lb, at_time) o
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
    )
    SELECT coalesce(array_agg(w.opportunity_id ORDER BY w.opportunity_id), '{}'),
           coalesce(array_agg(w.pipeline_id ORDER BY w.opportunity_id), '{}'),
           coalesce(array_agg(w.closed_at ORDER BY w.opportunity_id), '{}')
      INTO w_id, w_pipeline, w_closed
      FROM won w;
    -- the stays of the won deals are read in two halves of the list, which
    -- parallel workers read at once (in a RETURN QUERY: a SELECT INTO runs
    -- without workers)
    half := cardinality(w_id) / 2;
    RETURN QUERY
    WITH won AS (
        SELECT * FROM unnest(w_id, w_pipeline, w_closed) o(opportunity_id, pipeline_id, closed_at)
    ), summary AS MATERIALIZED (
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
        SELECT wd.pipeline_id, wd.dv, x.stage_id, @extschema@.duration_agg(x.left_at - x.entered_at) AS d
          -- each won deal's completed stays in open stages, from one index
          -- scan over their events (stage_stays)
          FROM (SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[:half], open_stages)
                UNION ALL
                SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[half + 1:], open_stages)) x
          JOIN (SELECT w.opportunity_id, w.pipeline_id,
                       CASE WHEN dim = 'company' THEN 'all'
                            WHEN dim IN ('rep', 'team')
                            THEN @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL,
                                                             NULL, NULL, NULL)
                            ELSE bd.dimension_value END AS dv
                  FROM won w
                  -- a deal attribute's breakdown, read in one pass
                  LEFT JOIN sales_kpi_internal.deal_breakdowns(
                                CASE WHEN dim IN ('company', 'rep', 'team') THEN '{}' ELSE w_id END, at_time, dim) bd
                         ON bd.opportunity_id = w.opportunity_id
                  -- the rep credited with the win: the owner at the close
                  LEFT JOIN LATERAL (
                        SELECT hi.owner_id
                          FROM @extschema@.opportunity_history hi
                         WHERE hi.opportunity_id = w.opportunity_id AND hi.changed_at <= w.closed_at
                           AND dim IN ('rep', 'team')
                         ORDER BY hi.changed_at DESC
                         LIMIT 1) h ON true
                  LEFT JOIN @extschema@.rep r ON r.rep_id = h.owner_id) wd
            ON wd.opportunity_id = x.opportunity_id
         WHERE dim <> 'company' AND x.left_at IS NOT NULL
         GROUP BY wd.pipeline_id, wd.dv, x.stage_id
        UNION ALL
        -- for the company, the stays alone: a stage event always names a
        -- stage of the deal's pipeline
        SELECT s.pipeline_id, 'all', x.stage_id, @extschema@.duration_agg(x.left_at - x.entered_at)
          FROM (SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[:half], open_stages)
                UNION ALL
                SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[half + 1:], open_stages)) x
          JOIN @extschema@.stage s ON s.stage_id = x.stage_id
         WHERE dim = 'company' AND x.left_at IS NOT NULL
         GROUP BY s.pipeline_id, x.stage_id) g
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
COMMENT ON FUNCTION sales_kpi_internal.stage_time_norms_rows(timestamptz, text, interval) IS
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
    SELECT * FROM sales_kpi_internal.stage_time_norms_rows(as_of, dimension, lookback)
$$;
COMMENT ON FUNCTION @extschema@.stage_norms(timestamptz, text, interval) IS
    'Dynamic stage norms: per pipeline and open stage, count, mean and p50/p75/p90 days of the completed stays of deals won within the lookback before as_of (as the history stood at as_of); null norms where no won deal passed the stage.';

-- The deals open at as_of with the time they entered their current stage
-- (their newest event not after as_of) and the required milestones of that
-- stage not completed by as_of, in position order (null: none missing): the
-- deals (the engine's open-deal pass, open_deal_rows) and the required
-- milestones of their stages, less the completions.
CREATE FUNCTION sales_kpi_internal.stage_time_open_deals(at_time timestamptz)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               expected_close date, amount_base numeric, entered_at timestamptz, missing_milestones text[])
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH deal AS MATERIALIZED (
        SELECT p.opportunity_id, p.pipeline_id, p.owner_id, p.stage_id, p.expected_close,
               p.amount AS amount_base, p.entered_stage_at
          FROM sales_kpi_internal.open_deal_rows(at_time) p
    ), missing AS (
        SELECT d.opportunity_id, array_agg(m.name ORDER BY m.position, m.milestone_id) AS names
          FROM deal d
          JOIN @extschema@.milestone m ON m.stage_id = d.stage_id AND m.required
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.milestone_event me
                            WHERE me.opportunity_id = d.opportunity_id AND me.milestone_id = m.milestone_id
                              AND me.completed_at <= at_time)
         GROUP BY d.opportunity_id
    )
    SELECT d.opportunity_id, d.pipeline_id, d.owner_id, d.stage_id, d.expected_close, d.amount_base,
           d.entered_stage_at, mi.names
      FROM deal d
      LEFT JOIN missing mi ON mi.opportunity_id = d.opportunity_id;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_open_deals(timestamptz) IS
    'Internal: the deals open at as_of with the time they entered their stage and the required milestones of that stage not completed by as_of.';

CREATE FUNCTION sales_kpi_internal.stage_time_stalled_rows(at_time timestamptz, dim text, lb interval)
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
    PERFORM sales_kpi_internal.check_kpi_args(at_time, dim, lookback => lb);
    as_of_date := (at_time AT TIME ZONE @extschema@.reporting_timezone())::date;
    RETURN QUERY
    WITH norm AS MATERIALIZED (
        -- the company norms, then the open deals: each function runs its
        -- queries in this backend, with parallel workers where they pay (run
        -- at once by two workers, each would do its share in a process that
        -- faults in every page it reads, and with no workers of its own: 3.1
        -- s against 2.4 s for stalled_deals at 1M deals)
        SELECT n.stage_id, n.p75_days
          FROM sales_kpi_internal.stage_time_norms_rows(at_time, 'company', lb) n
    ), deal AS (
        -- the current stay of each open deal
        SELECT d.opportunity_id, d.pipeline_id, d.owner_id, d.stage_id, d.expected_close, d.amount_base,
               d.entered_at, d.missing_milestones AS names,
               extract(epoch FROM at_time - d.entered_at)::double precision / 86400 AS stay_days
          FROM sales_kpi_internal.stage_time_open_deals(at_time) d
    ), flagged AS (
        SELECT d.*, n.p75_days,
               array_remove(ARRAY[
                   CASE WHEN d.stay_days > n.p75_days THEN 'over_norm' END,
                   CASE WHEN d.names IS NOT NULL THEN 'missing_milestones' END,
                   CASE WHEN d.expected_close < as_of_date THEN 'past_expected_close' END], NULL) AS reasons
          FROM deal d
          LEFT JOIN norm n ON n.stage_id = d.stage_id
    ), stalled AS MATERIALIZED (
        SELECT f.* FROM flagged f WHERE cardinality(f.reasons) > 0
    ), bd AS (
        -- a deal attribute's breakdown, read in one pass (the rep: the deal's owner below)
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN dim IN ('company', 'rep', 'team') THEN '{}'
                        ELSE ARRAY(SELECT st.opportunity_id FROM stalled st) END, at_time, dim) b
    )
    SELECT dim,
           CASE WHEN dim = 'company' THEN 'all'
                WHEN dim IN ('rep', 'team')
                THEN @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                ELSE bd.dimension_value END,
           f.opportunity_id, f.pipeline_id, p.name, f.stage_id, s.name, f.owner_id, f.amount_base,
           f.reasons, f.entered_at, f.stay_days, f.p75_days, f.names, f.expected_close,
           CASE WHEN f.expected_close < as_of_date THEN (as_of_date - f.expected_close)::double precision END
      FROM stalled f
      JOIN @extschema@.stage s ON s.stage_id = f.stage_id
      JOIN @extschema@.pipeline p ON p.pipeline_id = f.pipeline_id
      LEFT JOIN bd ON bd.opportunity_id = f.opportunity_id
      LEFT JOIN @extschema@.rep r ON r.rep_id = f.owner_id
     ORDER BY f.opportunity_id;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_stalled_rows(timestamptz, text, interval) IS
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
    SELECT * FROM sales_kpi_internal.stage_time_stalled_rows(as_of, dimension, lookback)
$$;
COMMENT ON FUNCTION @extschema@.stalled_deals(timestamptz, text, interval) IS
    'Open deals at as_of that are stalled or at risk, one row each with the reasons: over_norm (current stay longer than the stage''s company p75 norm), missing_milestones (required milestones of the current stage not completed by as_of), past_expected_close.';

CREATE VIEW @extschema@.stage_durations WITH (security_invoker = true) AS SELECT * FROM @extschema@.stage_durations();
COMMENT ON VIEW @extschema@.stage_durations IS
    'stage_durations() with the defaults: per deal open now and open stage, the latest and cumulative days in the stage.';
CREATE VIEW @extschema@.stage_norms WITH (security_invoker = true) AS SELECT * FROM @extschema@.stage_norms();
COMMENT ON VIEW @extschema@.stage_norms IS
    'stage_norms() with the defaults: per pipeline and open stage, p50/p75/p90 days of the stays of deals won in the last 365 days.';
CREATE VIEW @extschema@.stalled_deals WITH (security_invoker = true) AS SELECT * FROM @extschema@.stalled_deals();
COMMENT ON VIEW @extschema@.stalled_deals IS
    'stalled_deals() with the defaults: open deals now that are over the stage''s p75 norm, miss required milestones or are past their expected close, with the reasons.';
