-- Pipeline flow between two instants (Clari-style waterfall), and the
-- indexes that make pipeline_as_of and the flow fast.
--
-- The pipeline measured at an instant t is the set of deals that, as the
-- history stood at t (pipeline_as_of(t)), are open, expected to close
-- before close_before (the window; a deal with no expected close counts as
-- inside it) and, with a team, owned by one of the team's reps.  Every deal
-- in that pipeline at from_at or at to_at is classified by comparing its two
-- states (what happened in between, e.g. a loss reversed before to_at, is
-- not a flow):
--   entries (in at to_at, not at from_at): created (not in pipeline_as_of at
--     from_at at all), reopened (closed at from_at), pulled_in (expected
--     close at or after the window's end at from_at), moved_in (in another
--     team or dimension value at from_at);
--   exits (in at from_at, not at to_at): won, lost, pushed (open at to_at
--     but expected close moved to or past the window's end), moved_out;
--   stays (in at both): amount_up, amount_down, advanced, regressed
--     (higher/lower stage position), unchanged.
-- Amounts are in the base currency at the rate of to_at's day (reporting
-- time zone) for both instants, so a rate change is never a flow (the rate
-- effect is excluded); a currency with no rate then is an error.
-- Each flow row carries deal_change (+1 entry, -1 exit, 0 stay) and amount
-- (the signed change of the pipeline amount), so that for every dimension
-- value and in both modes, exactly:
--   start + created + reopened + pulled_in + moved_in + amount_up - amount_down
--         - pushed - won - lost - moved_out = end
-- (by deals with deal_change, by amount with amount; advanced, regressed and
-- unchanged move neither).

-- pipeline_as_of for the whole company reads the newest snapshot of every
-- deal in one ordered pass over this index, in the deals' order and without
-- touching the table; the look-ups of one deal's snapshot at an instant
-- (pipeline_as_of for a team, pipeline_flow) read it only.
CREATE INDEX opportunity_history_asof_idx
    ON @extschema@.opportunity_history (opportunity_id, changed_at DESC)
    INCLUDE (amount, expected_close, forecast_category, owner_id);
-- pipeline_as_of for the whole company reads every deal's row; these
-- columns alone are a quarter of the table's pages
CREATE INDEX opportunity_asof_idx
    ON @extschema@.opportunity (opportunity_id)
    INCLUDE (created_at, closed_at, stage_id, pipeline_id, currency, stage_entered_at, snapshot_at);
-- the deals a team's reps owned up to an instant, without touching the table
CREATE INDEX opportunity_history_owner_asof_idx
    ON @extschema@.opportunity_history (owner_id, changed_at)
    INCLUDE (opportunity_id);

-- Each candidate deal at both instants: its newest stage event and snapshot
-- not after from_at and not after to_at (one index probe each).  Candidates:
-- the deals open now or closed after from_at (opportunity_closed_idx); for a
-- team, only those some rep of the team owned up to to_at
-- (opportunity_history_owner_idx).
CREATE FUNCTION sales_kpi_internal.pipeline_flow_states(from_at timestamptz, to_at timestamptz,
                                                 team text DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, currency character(3),
               exists_s boolean, stage_kind_s text, stage_position_s integer,
               amount_s numeric, expected_close_s date, owner_id_s bigint,
               exists_e boolean, stage_kind_e text, stage_position_e integer,
               amount_e numeric, expected_close_e date, owner_id_e bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- about as many rows as there are open deals: the callers then join the reps
-- and attributes by hashing rather than by a probe per row
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_reps bigint[];
BEGIN
    IF pipeline_flow_states.team IS NOT NULL THEN
        v_reps := ARRAY(SELECT r.rep_id FROM @extschema@.rep r WHERE r.team = pipeline_flow_states.team);
    END IF;
    -- A deal open at from_at or at to_at is open now or closed after from_at:
    -- if it has no stage event after from_at its row is its state then, and
    -- if it has, its newest event (closed_at when closed) is after from_at.
    RETURN QUERY
    WITH cand AS MATERIALIZED (
        SELECT o.opportunity_id, o.currency, o.created_at, o.stage_id, o.closed_at,
               o.amount, o.expected_close, o.owner_id, o.stage_entered_at, o.snapshot_at
          FROM @extschema@.opportunity o
         WHERE pipeline_flow_states.team IS NULL
           AND (o.closed_at IS NULL OR o.closed_at > pipeline_flow_states.from_at)
           AND o.created_at <= pipeline_flow_states.to_at
        UNION ALL
        SELECT o.opportunity_id, o.currency, o.created_at, o.stage_id, o.closed_at,
               o.amount, o.expected_close, o.owner_id, o.stage_entered_at, o.snapshot_at
          FROM (SELECT DISTINCT hi.opportunity_id
                  FROM @extschema@.opportunity_history hi
                 WHERE hi.owner_id = ANY (v_reps) AND hi.changed_at <= pipeline_flow_states.to_at) t
          CROSS JOIN LATERAL (
                SELECT o.opportunity_id, o.currency, o.created_at, o.stage_id, o.closed_at,
                       o.amount, o.expected_close, o.owner_id, o.stage_entered_at, o.snapshot_at
                  FROM @extschema@.opportunity o
                 WHERE o.opportunity_id = t.opportunity_id
                   AND (o.closed_at IS NULL OR o.closed_at > pipeline_flow_states.from_at)
                   AND o.created_at <= pipeline_flow_states.to_at
                OFFSET 0) o
    )
    -- at to_at first; at from_at only when something happened in between.
    -- A deal's row says what its newest snapshot says (taken at
    -- snapshot_at), so the history is read only for the deals with a
    -- snapshot after to_at (the snapshot then) or after from_at (the one
    -- at from_at).
    , probe AS MATERIALIZED (
        SELECT o.opportunity_id, o.currency, o.created_at <= pipeline_flow_states.from_at AS born_s,
               CASE WHEN o.stage_entered_at <= pipeline_flow_states.to_at THEN o.stage_id
                    ELSE ee.stage_id END AS stage_e,
               CASE WHEN o.stage_entered_at <= pipeline_flow_states.to_at THEN o.stage_entered_at
                    ELSE ee.entered_at END AS entered_at,
               es.stage_id AS stage_s,
               c.changed_at,
               coalesce(he.amount, o.amount) AS amount_e, coalesce(he.expected_close, o.expected_close) AS close_e,
               CASE WHEN he.changed_at IS NULL THEN o.owner_id ELSE he.owner_id END AS owner_e,
               hs.amount AS amount_s, hs.expected_close AS close_s, hs.owner_id AS owner_s
          FROM cand o
          -- its newest event is after to_at (the row keeps its time): the
          -- newest event not after to_at
          LEFT JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at FROM @extschema@.stage_event ev
                 WHERE o.stage_entered_at > pipeline_flow_states.to_at
                   AND ev.opportunity_id = o.opportunity_id AND ev.entered_at <= pipeline_flow_states.to_at
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC LIMIT 1) ee ON true
          -- the newest snapshot not after to_at: the row, unless a snapshot
          -- was taken after to_at
          LEFT JOIN LATERAL (
                SELECT hi.changed_at, hi.amount, hi.expected_close, hi.owner_id
                  FROM @extschema@.opportunity_history hi
                 WHERE o.snapshot_at > pipeline_flow_states.to_at
                   AND hi.opportunity_id = o.opportunity_id AND hi.changed_at <= pipeline_flow_states.to_at
                 ORDER BY hi.changed_at DESC LIMIT 1) he ON true
          -- when it was taken; from_at when not after from_at (the row, or
          -- that snapshot, was already the state then)
          CROSS JOIN LATERAL (
                SELECT CASE WHEN o.snapshot_at > pipeline_flow_states.to_at
                            THEN greatest(he.changed_at, pipeline_flow_states.from_at)
                            ELSE greatest(o.snapshot_at, pipeline_flow_states.from_at) END AS changed_at) c
          LEFT JOIN LATERAL (
                SELECT ev.stage_id FROM @extschema@.stage_event ev
                 WHERE CASE WHEN o.stage_entered_at <= pipeline_flow_states.to_at THEN o.stage_entered_at
                            ELSE ee.entered_at END > pipeline_flow_states.from_at
                   AND ev.opportunity_id = o.opportunity_id AND ev.entered_at <= pipeline_flow_states.from_at
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC LIMIT 1) es ON true
          LEFT JOIN LATERAL (
                SELECT hi.amount, hi.expected_close, hi.owner_id FROM @extschema@.opportunity_history hi
                 WHERE c.changed_at > pipeline_flow_states.from_at
                   AND hi.opportunity_id = o.opportunity_id AND hi.changed_at <= pipeline_flow_states.from_at
                 ORDER BY hi.changed_at DESC LIMIT 1) hs ON true
    )
    SELECT p.opportunity_id, p.currency,
           p.born_s AND (p.entered_at <= pipeline_flow_states.from_at OR p.stage_s IS NOT NULL),
           ss.kind, ss.position,
           CASE WHEN p.changed_at <= pipeline_flow_states.from_at THEN p.amount_e ELSE p.amount_s END,
           CASE WHEN p.changed_at <= pipeline_flow_states.from_at THEN p.close_e ELSE p.close_s END,
           CASE WHEN p.changed_at <= pipeline_flow_states.from_at THEN p.owner_e ELSE p.owner_s END,
           p.stage_e IS NOT NULL, se.kind, se.position, p.amount_e, p.close_e, p.owner_e
      FROM probe p
      LEFT JOIN @extschema@.stage se ON se.stage_id = p.stage_e
      LEFT JOIN @extschema@.stage ss ON ss.stage_id = CASE WHEN NOT p.born_s THEN NULL
                                                          WHEN p.entered_at <= pipeline_flow_states.from_at THEN p.stage_e
                                                          ELSE p.stage_s END;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_flow_states(timestamptz, timestamptz, text) IS
    'Internal: for every deal that can be in the pipeline at from_at or to_at (optionally of one team), its stage, amount, expected close and owner at both instants, as pipeline_as_of rebuilds them.';

-- Argument checks and defaults shared by the flow functions.
CREATE FUNCTION sales_kpi_internal.pipeline_flow_args(from_at timestamptz, to_at timestamptz, mode text,
                                               dimension text, close_before date,
                                               OUT from_at_r timestamptz, OUT to_at_r timestamptz,
                                               OUT close_before_r date)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    to_at_r := sales_kpi_internal.finite_instant(coalesce(to_at, now()), 'to_at');
    from_at_r := sales_kpi_internal.finite_instant(coalesce(from_at, @extschema@.period_start(to_at_r, 'quarter')),
                                            'from_at');
    IF from_at_r > to_at_r THEN
        RAISE EXCEPTION 'argument "to_at" (%) must not be earlier than "from_at" (%)', to_at_r, from_at_r
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF mode IS NULL OR mode NOT IN ('primary', 'all') THEN
        RAISE EXCEPTION 'argument "mode" must be primary or all, got "%"', coalesce(mode, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- raises for an unknown dimension
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    close_before_r := coalesce(close_before,
                               (@extschema@.period_end(from_at_r, 'quarter')
                                AT TIME ZONE @extschema@.reporting_timezone())::date);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_flow_args(timestamptz, timestamptz, text, text, date) IS
    'Internal: validates the arguments of the pipeline flow functions and fills in their defaults.';

CREATE FUNCTION sales_kpi_internal.pipeline_flow_rows(p_from_at timestamptz, p_to_at timestamptz, p_mode text,
                                               p_dimension text, p_team text, p_close_before date,
                                               p_totals boolean)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, category text, deals bigint, deal_change bigint, amount numeric,
               stage_kind_start text, stage_position_start integer, amount_start numeric,
               expected_close_start date, owner_id_start bigint,
               stage_kind_end text, stage_position_end integer, amount_end numeric,
               expected_close_end date, owner_id_end bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    a record;
    v_day date;
    v_primary boolean;
BEGIN
    a := sales_kpi_internal.pipeline_flow_args(p_from_at, p_to_at, p_mode, p_dimension, p_close_before);
    PERFORM sales_kpi_internal.check_team(p_team);
    v_primary := p_mode = 'primary';
    v_day := (a.to_at_r AT TIME ZONE @extschema@.reporting_timezone())::date;
    RETURN QUERY
    WITH st AS (
        SELECT s.*,
               coalesce(@extschema@.to_base(s.amount_s, s.currency, v_day), 0) AS base_s,
               coalesce(@extschema@.to_base(s.amount_e, s.currency, v_day), 0) AS base_e,
               @extschema@.dimension_value(p_dimension, dd.pipeline, rs.name, rs.team,
                   dd.source, dd.industry, dd.segment, dd.region, dd.competitor, dd.kind, dd.product) AS dv_s,
               @extschema@.dimension_value(p_dimension, dd.pipeline, re.name, re.team,
                   dd.source, dd.industry, dd.segment, dd.region, dd.competitor, dd.kind, dd.product) AS dv_e,
               s.exists_s AND s.stage_kind_s = 'open'
                 AND (s.expected_close_s IS NULL OR s.expected_close_s < a.close_before_r) AS win_s,
               s.exists_e AND s.stage_kind_e = 'open'
                 AND (s.expected_close_e IS NULL OR s.expected_close_e < a.close_before_r) AS win_e,
               p_team IS NULL OR rs.team IS NOT DISTINCT FROM p_team AS team_s,
               p_team IS NULL OR re.team IS NOT DISTINCT FROM p_team AS team_e
          FROM sales_kpi_internal.pipeline_flow_states(a.from_at_r, a.to_at_r, p_team) s
          -- the deal's attributes only for a breakdown by one of them
          LEFT JOIN @extschema@.deal_dimensions dd
                 ON p_dimension NOT IN ('company', 'rep', 'team') AND dd.opportunity_id = s.opportunity_id
          LEFT JOIN @extschema@.rep rs ON rs.rep_id = s.owner_id_s
          LEFT JOIN @extschema@.rep re ON re.rep_id = s.owner_id_e
    ), cl AS (
        SELECT st.*,
               st.win_s AND st.team_s AS in_s,
               st.win_e AND st.team_e AS in_e,
               st.base_e - st.base_s AS delta,
               CASE WHEN st.stage_kind_s = 'open' AND st.stage_kind_e = 'open'
                    THEN sign(st.stage_position_e - st.stage_position_s) ELSE 0 END AS stage_move
          FROM st
    ), sides AS (
        SELECT cl.*,
               cl.in_s AND cl.in_e AND cl.dv_s = cl.dv_e AS stays,
               cl.in_s AND NOT (cl.in_e AND cl.dv_s = cl.dv_e) AS exits,
               cl.in_e AND NOT (cl.in_s AND cl.dv_s = cl.dv_e) AS enters,
               CASE WHEN cl.stage_kind_e = 'won' THEN 'won'
                    WHEN cl.stage_kind_e = 'lost' THEN 'lost'
                    WHEN NOT cl.win_e THEN 'pushed'
                    ELSE 'moved_out' END AS exit_cat,
               CASE WHEN NOT cl.exists_s THEN 'created'
                    WHEN cl.stage_kind_s <> 'open' THEN 'reopened'
                    WHEN NOT cl.win_s THEN 'pulled_in'
                    ELSE 'moved_in' END AS entry_cat
          FROM cl
         WHERE cl.in_s OR cl.in_e
    ), flows AS (
        -- primary: one row per deal and side, the whole change in it
        SELECT x.dv_e AS dv, x.opportunity_id,
               CASE WHEN x.delta > 0 THEN 'amount_up' WHEN x.delta < 0 THEN 'amount_down'
                    WHEN x.stage_move > 0 THEN 'advanced' WHEN x.stage_move < 0 THEN 'regressed'
                    ELSE 'unchanged' END AS category,
               0 AS deal_change, x.delta AS amount
          FROM sides x WHERE v_primary AND x.stays
        UNION ALL
        SELECT x.dv_s, x.opportunity_id, x.exit_cat, -1, -x.base_s
          FROM sides x WHERE v_primary AND x.exits
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, x.entry_cat, 1, x.base_e
          FROM sides x WHERE v_primary AND x.enters
        -- all: every change, the amount change apart from the entry or exit.
        -- The amount change is booked on the exit side when there is one
        -- (a deal moving between values changed before it left), else on
        -- the entry side; a created deal enters with its end amount.
        UNION ALL
        SELECT CASE WHEN x.exits OR x.stays THEN x.dv_s ELSE x.dv_e END, x.opportunity_id,
               CASE WHEN x.delta > 0 THEN 'amount_up' ELSE 'amount_down' END, 0, x.delta
          FROM sides x
         WHERE NOT v_primary AND x.delta <> 0 AND x.exists_s
        UNION ALL
        SELECT CASE WHEN x.exits OR x.stays THEN x.dv_s ELSE x.dv_e END, x.opportunity_id,
               CASE WHEN x.stage_move > 0 THEN 'advanced' ELSE 'regressed' END, 0, 0
          FROM sides x
         WHERE NOT v_primary AND x.stage_move <> 0
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, 'unchanged', 0, 0
          FROM sides x WHERE NOT v_primary AND x.stays AND x.delta = 0 AND x.stage_move = 0
        UNION ALL
        SELECT x.dv_s, x.opportunity_id, x.exit_cat, -1, -x.base_e
          FROM sides x WHERE NOT v_primary AND x.exits
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, x.entry_cat, 1,
               CASE WHEN x.exits OR NOT x.exists_s THEN x.base_e ELSE x.base_s END
          FROM sides x WHERE NOT v_primary AND x.enters
        -- the pipeline at both instants, for the reconciliation
        UNION ALL
        SELECT x.dv_s, x.opportunity_id, 'start', NULL, x.base_s FROM sides x WHERE x.in_s
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, 'end', NULL, x.base_e FROM sides x WHERE x.in_e
    )
    -- deal by deal
    SELECT p_dimension, f.dv, a.from_at_r, a.to_at_r,
           f.opportunity_id, f.category, NULL::bigint, f.deal_change::bigint, f.amount,
           x.stage_kind_s, x.stage_position_s, CASE WHEN x.exists_s THEN x.base_s END,
           x.expected_close_s, x.owner_id_s,
           x.stage_kind_e, x.stage_position_e, x.base_e, x.expected_close_e, x.owner_id_e
      FROM flows f
      JOIN sides x ON x.opportunity_id = f.opportunity_id
     WHERE NOT p_totals
    UNION ALL
    -- or the totals per dimension value and category
    SELECT p_dimension, f.dv, a.from_at_r, a.to_at_r,
           NULL, f.category, count(*), sum(f.deal_change), sum(f.amount),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM flows f
     WHERE p_totals
     GROUP BY f.dv, f.category;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_flow_rows(timestamptz, timestamptz, text, text, text, date, boolean) IS
    'Internal: the rows of pipeline_flow_deals, or with p_totals the totals per dimension value and category for pipeline_flow.';

CREATE FUNCTION @extschema@.pipeline_flow_deals(from_at timestamptz DEFAULT NULL,
                                                to_at timestamptz DEFAULT NULL,
                                                mode text DEFAULT 'primary',
                                                dimension text DEFAULT 'company',
                                                team text DEFAULT NULL,
                                                close_before date DEFAULT NULL)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, category text, deal_change integer, amount numeric,
               stage_kind_start text, stage_position_start integer, amount_start numeric,
               expected_close_start date, owner_id_start bigint,
               stage_kind_end text, stage_position_end integer, amount_end numeric,
               expected_close_end date, owner_id_end bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT r.dimension, r.dimension_value, r.period_start, r.period_end, r.opportunity_id, r.category,
           r.deal_change::integer, r.amount, r.stage_kind_start, r.stage_position_start, r.amount_start,
           r.expected_close_start, r.owner_id_start, r.stage_kind_end, r.stage_position_end, r.amount_end,
           r.expected_close_end, r.owner_id_end
      FROM sales_kpi_internal.pipeline_flow_rows(from_at, to_at, mode, dimension, team, close_before, false) r
$$;
COMMENT ON FUNCTION @extschema@.pipeline_flow_deals(timestamptz, timestamptz, text, text, text, date) IS
    'Pipeline flow deal by deal: for each deal in the pipeline (open, expected to close before close_before, of the team) at from_at or to_at, its start and end rows and its flow categories with the signed change of the pipeline''s deal count and amount (base currency at to_at''s rate), and its state at both instants.';

CREATE FUNCTION @extschema@.pipeline_flow(from_at timestamptz DEFAULT NULL,
                                          to_at timestamptz DEFAULT NULL,
                                          mode text DEFAULT 'primary',
                                          dimension text DEFAULT 'company',
                                          team text DEFAULT NULL,
                                          close_before date DEFAULT NULL)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               step integer, category text, deals bigint, deal_change bigint, amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH t AS MATERIALIZED (
        SELECT r.dimension_value, r.category, r.deals, r.deal_change, r.amount
          FROM sales_kpi_internal.pipeline_flow_rows(from_at, to_at, mode, dimension, team, close_before, true) r
    ), a AS (
        SELECT * FROM sales_kpi_internal.pipeline_flow_args(from_at, to_at, mode, dimension, close_before)
    ), dv AS (
        SELECT DISTINCT t.dimension_value FROM t
        UNION
        SELECT 'all' WHERE pipeline_flow.dimension = 'company'
    ), cat(step, category) AS (
        VALUES (1, 'start'), (2, 'created'), (3, 'reopened'), (4, 'pulled_in'), (5, 'moved_in'),
               (6, 'amount_up'), (7, 'amount_down'), (8, 'advanced'), (9, 'regressed'), (10, 'unchanged'),
               (11, 'pushed'), (12, 'won'), (13, 'lost'), (14, 'moved_out'), (15, 'end')
    )
    SELECT pipeline_flow.dimension, dv.dimension_value, a.from_at_r, a.to_at_r, cat.step, cat.category,
           coalesce(t.deals, 0),
           CASE WHEN cat.category NOT IN ('start', 'end') THEN coalesce(t.deal_change, 0) END,
           coalesce(t.amount, 0)
      FROM a CROSS JOIN dv CROSS JOIN cat
      LEFT JOIN t ON t.dimension_value = dv.dimension_value AND t.category = cat.category
     ORDER BY dv.dimension_value, cat.step
$$;
COMMENT ON FUNCTION @extschema@.pipeline_flow(timestamptz, timestamptz, text, text, text, date) IS
    'Pipeline flow (waterfall) between two instants per dimension value: the pipeline at from_at (start), what entered it (created, reopened, pulled_in, moved_in), changed in it (amount_up, amount_down, advanced, regressed, unchanged) and left it (pushed, won, lost, moved_out), and the pipeline at to_at (end); start + sum of flows = end exactly, by deal_change and by amount.';

CREATE VIEW @extschema@.pipeline_flow WITH (security_invoker = true) AS
SELECT * FROM @extschema@.pipeline_flow();
COMMENT ON VIEW @extschema@.pipeline_flow IS
    'Pipeline flow of the whole company from the start of the current fiscal quarter to now, one bucket per deal (primary mode), for this quarter''s pipeline.';
