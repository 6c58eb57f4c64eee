-- Process health (kpis.md section 6): data-quality findings over the whole
-- data set, and stage-gate violations over the stage history.

-- Open stages numbered 1..n in position order within their pipeline (the
-- "ordinal"), so that a pipeline whose positions have gaps (1, 2, 4) does not
-- make every move across the gap look like a skip.  Terminal stages get none.
CREATE FUNCTION sales_kpi_internal.stage_ordinal()
RETURNS TABLE (stage_id bigint, pipeline_id bigint, name text, kind text, "position" integer,
               ordinal bigint)
LANGUAGE sql STABLE PARALLEL SAFE ROWS 50
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.stage_id, s.pipeline_id, s.name, s.kind, s.position,
           CASE WHEN s.kind = 'open'
                THEN row_number() OVER (PARTITION BY s.pipeline_id, s.kind = 'open' ORDER BY s.position, s.stage_id)
           END
      FROM @extschema@.stage s
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_ordinal() IS
    'Internal: every stage with its open-stage ordinal (1..n in position order within the pipeline; null for won and lost).';

-- One ordered pass over the stage history (C, see stage_walk.c): the events
-- entered by as_of and in [from_at, to_at) (null: open) that followed a move
-- listed in (pair_from[i], pair_to[i]), and with suspects also the events
-- recorded before an event entered later, negative amounts and events in
-- the same instant as the previous one; each with the previous event, the
-- smallest id of the later events, whether it is the deal's newest, and the
-- deal's first event.  Only the deals with opportunity_id between first_id
-- and last_id (null: unbounded) are read, so that a caller can read halves
-- of the deals in calls that parallel workers run at once.
CREATE FUNCTION sales_kpi_internal.stage_event_walk(as_of timestamptz, from_at timestamptz, to_at timestamptz,
                                             pair_from bigint[], pair_to bigint[], suspects boolean,
                                             first_id bigint DEFAULT NULL, last_id bigint DEFAULT NULL)
RETURNS TABLE (stage_event_id bigint, opportunity_id bigint, stage_id bigint, entered_at timestamptz,
               amount numeric, rep_id bigint, prev_stage_id bigint, prev_entered_at timestamptz,
               min_later_id bigint, is_newest boolean, first_entered_at timestamptz, first_event_id bigint)
AS 'MODULE_PATHNAME', 'stage_event_walk'
-- the cost of reading the whole history, so that the planner runs the two
-- halves in parallel workers
LANGUAGE C STABLE PARALLEL SAFE COST 10000000 ROWS 10000;
COMMENT ON FUNCTION sales_kpi_internal.stage_event_walk(timestamptz, timestamptz, timestamptz, bigint[], bigint[], boolean, bigint, bigint) IS
    'Internal: one ordered pass over the stage history returning the events a process-health KPI needs, each with its previous event, the smallest id of the later events, whether it is the newest and the deal''s first event.';

-- The gated moves entered by as_of and in [from_at, to_at) (null: open) that
-- left a required milestone incomplete (C, see stage_walk.c), from one pass
-- over the stage history and the milestone completions, deal by deal: a
-- move from stage gate_from[i] to gate_to[i] needs milestone
-- gate_milestone[i], named gate_label[i] (the labels of a move listed in the
-- order given); a needed milestone is missing without a completion at or
-- before the move (completions after as_of are unknown).  first_id and
-- last_id bound the deals read, as for stage_event_walk.
CREATE FUNCTION sales_kpi_internal.gate_move_violations(as_of timestamptz, from_at timestamptz, to_at timestamptz,
                                                 gate_from bigint[], gate_to bigint[], gate_milestone bigint[],
                                                 gate_label text[],
                                                 first_id bigint DEFAULT NULL, last_id bigint DEFAULT NULL)
RETURNS TABLE (stage_event_id bigint, opportunity_id bigint, from_stage_id bigint, stage_id bigint,
               entered_at timestamptz, rep_id bigint, missing_milestones text, missing_count bigint,
               completed_late_count bigint)
AS 'MODULE_PATHNAME', 'gate_move_violations'
LANGUAGE C STABLE PARALLEL SAFE COST 10000000 ROWS 10000;
COMMENT ON FUNCTION sales_kpi_internal.gate_move_violations(timestamptz, timestamptz, timestamptz, bigint[], bigint[], bigint[], text[], bigint, bigint) IS
    'Internal: the gated moves of the stage history that left a required milestone incomplete, with the missing milestones, their count and how many were completed later.';

-- What data_quality_findings needs of the stage history, in one pass over
-- the deals, all their stage events and their first snapshots, merged in
-- deal order (C, see stage_walk.c): the rows of stage_event_walk(as_of,
-- NULL, NULL, pair_from, pair_to, true) (is_deal false), and the deals
-- created by as_of whose own row may break a rule (is_deal true): no stage
-- event by as_of, first event before the creation, closed_at against the
-- current stage (terminal_stages: the won and lost stages), stage fields
-- against the newest event, negative amount, no owner, no snapshot by the
-- creation.  A deal row carries the row's stage_id, amount,
-- stage_entered_at, owner, creation and close, the newest and first events,
-- whether the deal has events after as_of, and its first snapshot.
-- first_id and last_id bound the deals read, as for stage_event_walk.
CREATE FUNCTION sales_kpi_internal.stage_history_check(as_of timestamptz, pair_from bigint[], pair_to bigint[],
                                                terminal_stages bigint[],
                                                first_id bigint DEFAULT NULL, last_id bigint DEFAULT NULL)
RETURNS TABLE (stage_event_id bigint, opportunity_id bigint, stage_id bigint, entered_at timestamptz,
               amount numeric, rep_id bigint, prev_stage_id bigint, prev_entered_at timestamptz,
               min_later_id bigint, is_newest boolean, first_entered_at timestamptz, first_event_id bigint,
               is_deal boolean, owner_id bigint, created_at timestamptz, closed_at timestamptz,
               ev_stage_id bigint, ev_entered_at timestamptz, moved_after_as_of boolean,
               first_changed_at timestamptz, stage_entered_at timestamptz)
AS 'MODULE_PATHNAME', 'stage_history_check'
LANGUAGE C STABLE PARALLEL SAFE COST 10000000 ROWS 10000;
COMMENT ON FUNCTION sales_kpi_internal.stage_history_check(timestamptz, bigint[], bigint[], bigint[], bigint, bigint) IS
    'Internal: one pass over the deals, their stage history and first snapshots: the suspect stage events (as stage_event_walk) and the deals whose own row may break a data-quality rule.';

-- The opportunity_id that splits the deals' id range in two halves: the
-- passes over the whole history above read each half in a call of its own,
-- and the two calls, branches of a UNION ALL, run in parallel workers.
CREATE FUNCTION sales_kpi_internal.deal_id_midpoint()
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(o.opportunity_id) / 2 + max(o.opportunity_id) / 2 FROM @extschema@.opportunity o
$$;
COMMENT ON FUNCTION sales_kpi_internal.deal_id_midpoint() IS
    'Internal: the opportunity_id halfway through the range of deal ids (null with no deal), where the whole-history passes split their work.';

-- Negative snapshot amounts and activity durations break a CHECK constraint,
-- so they are rare (a constraint dropped or not yet validated, a load that
-- bypassed it): data_quality_findings finds them through these partial
-- indexes, empty as long as the data is clean, instead of a scan.
CREATE INDEX opportunity_history_negative_amount_idx
    ON @extschema@.opportunity_history (changed_at) WHERE amount OPERATOR(pg_catalog.<) 0;
CREATE INDEX activity_negative_duration_idx
    ON @extschema@.activity (occurred_at) WHERE duration_s OPERATOR(pg_catalog.<) 0;

-- Argument checks shared by the functions of this file and 67_kpi_reps:
-- called in the top-level WHERE of a KPI query, where it is evaluated once,
-- before any table is read, so that a bad argument is an error even when
-- there is no data.
CREATE FUNCTION sales_kpi_internal.check_health_rep_args(dimension text, as_of timestamptz, grain text DEFAULT NULL,
                                                  from_at timestamptz DEFAULT NULL,
                                                  to_at timestamptz DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- as_of, dimension and grain as every KPI checks them
    PERFORM sales_kpi_internal.check_kpi_args(as_of, dimension, coalesce(grain, 'month'));
    IF to_at <= from_at THEN
        RAISE EXCEPTION 'argument "to_at" (%) must be later than "from_at" (%)', to_at, from_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_health_rep_args(text, timestamptz, text, timestamptz, timestamptz) IS
    'Internal: validates the arguments of the process-health and rep KPI functions (true, or an error naming the argument).';

-- One row per finding.  Scope at as_of: stage events entered, deals created,
-- snapshots taken and activities occurred no later than as_of; rules on a
-- deal's own fields (amount, owner, stage, closed_at) read its current row.
-- The stage history is read in one ordered pass with the deals and their
-- first snapshots (stage_history_check), in two halves of the deals; the
-- rare negative snapshot amounts and activity durations through partial
-- indexes.
CREATE FUNCTION @extschema@.data_quality_findings(as_of timestamptz DEFAULT now())
RETURNS TABLE (table_name text, key text, rule text, detail text,
               opportunity_id bigint, rep_id bigint, found_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
SET work_mem = '64MB'
AS $fn$
#variable_conflict use_column
DECLARE
    -- the moves that break a rule whatever their instants: between open
    -- stages not one ordinal apart, and from a close to anything but an
    -- open stage
    pair_from bigint[];
    pair_to bigint[];
    -- the won and lost stages
    terminal bigint[];
    -- the deals are read in two halves, ids up to mid and after it
    mid bigint := coalesce(sales_kpi_internal.deal_id_midpoint(), 0);
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'argument "as_of" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT coalesce(array_agg(p.stage_id), '{}'), coalesce(array_agg(s.stage_id), '{}')
      INTO pair_from, pair_to
      FROM sales_kpi_internal.stage_ordinal() p, sales_kpi_internal.stage_ordinal() s
     WHERE (p.kind = 'open' AND s.kind = 'open' AND s.ordinal <> p.ordinal + 1)
        OR (p.kind IN ('won', 'lost') AND s.kind <> 'open');
    SELECT coalesce(array_agg(s.stage_id), '{}') INTO terminal
      FROM @extschema@.stage s WHERE s.kind IN ('won', 'lost');
    RETURN QUERY
    -- (not materialized: a CTE scan would keep the query from parallel workers)
    WITH st AS NOT MATERIALIZED (
        SELECT * FROM sales_kpi_internal.stage_ordinal()
    ), hist AS MATERIALIZED (
        -- one pass over the deals, their histories and their first
        -- snapshots (stage_history_check), in two halves of the deals that
        -- parallel workers read at once: the events that may break a rule
        -- (the moves between the pairs of stages listed and the other
        -- suspects) and the deals whose row may
        SELECT * FROM sales_kpi_internal.stage_history_check(as_of, pair_from, pair_to, terminal, NULL, mid)
        UNION ALL
        SELECT * FROM sales_kpi_internal.stage_history_check(as_of, pair_from, pair_to, terminal, mid + 1, NULL)
    ), ev AS (
        -- the suspect events (the rules are checked below: an event that
        -- breaks none gives no row)
        SELECT x.stage_event_id, x.opportunity_id, x.stage_id, x.entered_at, x.amount, x.rep_id,
               x.prev_entered_at, x.min_later_id,
               s.kind, s.ordinal, s.name, ps.kind AS prev_kind, ps.ordinal AS prev_ordinal, ps.name AS prev_name
          FROM hist x
          JOIN st s ON s.stage_id = x.stage_id
          LEFT JOIN st ps ON ps.stage_id = x.prev_stage_id
         WHERE NOT x.is_deal
    ), deal AS (
        -- the deals whose row may break a rule
        SELECT d.opportunity_id, d.owner_id, d.amount, d.created_at, d.closed_at, d.stage_id,
               d.stage_entered_at, cs.kind AS cur_kind, cs.name AS cur_name,
               d.ev_stage_id, es.kind AS ev_kind, d.ev_entered_at,
               d.first_entered_at, d.first_event_id, d.moved_after_as_of, d.first_changed_at
          FROM hist d
          LEFT JOIN st cs ON cs.stage_id = d.stage_id
          LEFT JOIN st es ON es.stage_id = d.ev_stage_id
         WHERE d.is_deal
    ), open_positions AS (
        SELECT s.pipeline_id, count(*) AS n, max(s.position) AS top,
               string_agg(s.position::text, ', ' ORDER BY s.position) AS positions
          FROM @extschema@.stage s
         WHERE s.kind = 'open'
         GROUP BY s.pipeline_id
    )
    -- stage history (the detail is formatted only for the rules hit); the
    -- rules an event breaks come from an array in the target list, which
    -- costs far less per row than a join to a list of rules
    SELECT 'stage_event'::text, 'stage_event_id=' || e.stage_event_id, e.rule,
           CASE e.rule
             WHEN 'event_out_of_order' THEN
                  format('entered %s at %s, earlier than event %s recorded before it',
                         e.name, e.entered_at, e.min_later_id)
             WHEN 'event_after_close' THEN
                  CASE WHEN e.kind <> 'open'
                       THEN format('%s after %s without a reopening', e.name, e.prev_name)
                       ELSE format('%s in the same instant as %s', e.name, e.prev_name) END
             WHEN 'regression' THEN
                  format('from %s (%s) back to %s (%s)', e.prev_name, e.prev_ordinal, e.name, e.ordinal)
             WHEN 'skipped_stage' THEN
                  format('from %s (%s) to %s (%s), skipping %s open stage(s)',
                         e.prev_name, e.prev_ordinal, e.name, e.ordinal, e.ordinal - e.prev_ordinal - 1)
             WHEN 'negative_amount' THEN format('amount %s', e.amount)
           END,
           e.opportunity_id, e.rep_id, e.entered_at
      FROM (SELECT v.*,
                   unnest(array_remove(ARRAY[
                       CASE WHEN v.min_later_id < v.stage_event_id THEN 'event_out_of_order' END,
                       CASE WHEN v.prev_kind IN ('won', 'lost') AND (v.kind <> 'open' OR v.entered_at = v.prev_entered_at)
                            THEN 'event_after_close' END,
                       CASE WHEN v.prev_kind = 'open' AND v.kind = 'open' AND v.ordinal <= v.prev_ordinal
                            THEN 'regression' END,
                       CASE WHEN v.prev_kind = 'open' AND v.kind = 'open' AND v.ordinal > v.prev_ordinal + 1
                            THEN 'skipped_stage' END,
                       CASE WHEN v.amount < 0 THEN 'negative_amount' END], NULL)) AS rule
              FROM ev v) e
    UNION ALL
    -- deals
    SELECT 'opportunity'::text, 'opportunity_id=' || d.opportunity_id, d.rule,
           CASE d.rule
             WHEN 'no_stage_event' THEN 'no stage event entered by as_of'
             WHEN 'event_before_creation' THEN
                  format('first stage event %s entered at %s, before created_at %s',
                         d.first_event_id, d.first_entered_at, d.created_at)
             WHEN 'closed_without_terminal_stage' THEN
                  format('closed_at %s but stage %s', d.closed_at,
                         coalesce(d.cur_name || ' (' || d.cur_kind || ')', 'null'))
             WHEN 'terminal_stage_without_close' THEN
                  format('stage %s (%s) but closed_at null', d.cur_name, d.cur_kind)
             WHEN 'stage_out_of_sync' THEN
                  format('row says stage_id %s, closed_at %s, stage_entered_at %s; newest event says stage_id %s, closed_at %s, entered at %s',
                         coalesce(d.stage_id::text, 'null'), coalesce(d.closed_at::text, 'null'),
                         coalesce(d.stage_entered_at::text, 'null'), d.ev_stage_id,
                         coalesce(CASE WHEN d.ev_kind <> 'open' THEN d.ev_entered_at END::text, 'null'),
                         d.ev_entered_at)
             WHEN 'negative_amount' THEN format('amount %s', d.amount)
             WHEN 'missing_owner' THEN 'owner_id is null'
             WHEN 'missing_snapshot' THEN
                  CASE WHEN d.first_changed_at IS NULL THEN 'no opportunity_history snapshot'
                       ELSE format('first opportunity_history snapshot at %s, after created_at %s',
                                   d.first_changed_at, d.created_at) END
           END,
           d.opportunity_id, d.owner_id,
           CASE d.rule
             WHEN 'event_before_creation' THEN d.first_entered_at
             WHEN 'closed_without_terminal_stage' THEN d.closed_at
             WHEN 'stage_out_of_sync' THEN d.ev_entered_at
             ELSE d.created_at
           END
      -- the rules a deal breaks, as for the events
      FROM (SELECT x.*,
                   unnest(array_remove(ARRAY[
                       CASE WHEN x.ev_stage_id IS NULL THEN 'no_stage_event' END,
                       CASE WHEN x.first_entered_at < x.created_at THEN 'event_before_creation' END,
                       CASE WHEN x.closed_at IS NOT NULL AND x.cur_kind IS DISTINCT FROM 'won'
                                 AND x.cur_kind IS DISTINCT FROM 'lost'
                            THEN 'closed_without_terminal_stage' END,
                       CASE WHEN x.closed_at IS NULL AND x.cur_kind IN ('won', 'lost')
                            THEN 'terminal_stage_without_close' END,
                       CASE WHEN x.ev_stage_id IS NOT NULL AND NOT x.moved_after_as_of
                                 AND (x.stage_id, x.closed_at, x.stage_entered_at) IS DISTINCT FROM
                                     (x.ev_stage_id, CASE WHEN x.ev_kind <> 'open' THEN x.ev_entered_at END,
                                      x.ev_entered_at)
                            THEN 'stage_out_of_sync' END,
                       CASE WHEN x.amount < 0 THEN 'negative_amount' END,
                       CASE WHEN x.owner_id IS NULL THEN 'missing_owner' END,
                       CASE WHEN x.first_changed_at IS NULL OR x.first_changed_at > x.created_at
                            THEN 'missing_snapshot' END], NULL)) AS rule
              FROM deal x) d
    UNION ALL
    -- deals without a customer (allowed: real CRM exports have them)
    SELECT 'opportunity'::text, 'opportunity_id=' || o.opportunity_id, 'missing_account'::text,
           'account_id is null', o.opportunity_id, o.owner_id, o.created_at
      FROM @extschema@.opportunity o
     WHERE o.account_id IS NULL AND o.created_at <= as_of
    UNION ALL
    -- amounts converted at a rate that does not apply: the currency has no
    -- rate at all (every KPI converting the row fails), or the row is dated
    -- before the currency's first rate (which then applies)
    SELECT x.table_name, x.key, 'missing_fx_rate'::text,
           CASE WHEN r.first_from IS NULL
                THEN format('no exchange rate for currency %s: every KPI that converts it fails', x.currency)
                ELSE format('%s %s, before the first %s rate (valid_from %s), which is used',
                            x.what, x.on_date, x.currency, r.first_from) END,
           x.opportunity_id, x.rep_id, x.found_at
      FROM (SELECT 'opportunity'::text AS table_name, 'opportunity_id=' || o.opportunity_id AS key,
                   o.currency, 'created on'::text AS what,
                   (o.created_at AT TIME ZONE @extschema@.reporting_timezone())::date AS on_date,
                   o.opportunity_id, o.owner_id AS rep_id, o.created_at AS found_at
              FROM @extschema@.opportunity o
             WHERE o.currency <> @extschema@.base_currency() AND o.created_at <= as_of
            UNION ALL
            SELECT 'collection', 'collection_id=' || c.collection_id, c.currency, 'due on', c.due_on,
                   c.opportunity_id, NULL::bigint, c.due_on::timestamptz
              FROM @extschema@.collection c
             WHERE c.currency <> @extschema@.base_currency()) x
      LEFT JOIN (SELECT f.currency, min(f.valid_from) AS first_from
                   FROM @extschema@.fx_rate f GROUP BY f.currency) r ON r.currency = x.currency
     WHERE r.first_from IS NULL OR x.on_date < r.first_from
    UNION ALL
    -- history dated beyond now() + future_tolerance(), whatever as_of: a
    -- typo or a bad import that the triggers refuse, got in with them off
    SELECT 'stage_event'::text, 'stage_event_id=' || e.stage_event_id, 'future_event'::text,
           format('entered at %s, more than %s after now', e.entered_at, @extschema@.future_tolerance()),
           e.opportunity_id, e.rep_id, e.entered_at
      FROM @extschema@.stage_event e
     WHERE e.entered_at > now() + @extschema@.future_tolerance()
    UNION ALL
    SELECT 'opportunity_history'::text,
           format('opportunity_id=%s,changed_at=%s', h.opportunity_id, h.changed_at), 'future_event'::text,
           format('snapshot at %s, more than %s after now', h.changed_at, @extschema@.future_tolerance()),
           h.opportunity_id, h.owner_id, h.changed_at
      FROM @extschema@.opportunity_history h
     WHERE h.changed_at > now() + @extschema@.future_tolerance()
    UNION ALL
    SELECT 'opportunity'::text, 'opportunity_id=' || o.opportunity_id, 'future_event'::text,
           format('created at %s, more than %s after now', o.created_at, @extschema@.future_tolerance()),
           o.opportunity_id, o.owner_id, o.created_at
      FROM @extschema@.opportunity o
     WHERE o.created_at > now() + @extschema@.future_tolerance()
    UNION ALL
    -- snapshots
    SELECT 'opportunity_history'::text,
           format('opportunity_id=%s,changed_at=%s', h.opportunity_id, h.changed_at),
           'negative_amount'::text, format('amount %s', h.amount),
           h.opportunity_id, h.owner_id, h.changed_at
      FROM @extschema@.opportunity_history h
     WHERE h.amount < 0 AND h.changed_at <= as_of
    UNION ALL
    -- activities
    SELECT 'activity'::text, 'activity_id=' || a.activity_id, 'negative_duration'::text,
           format('duration_s %s', a.duration_s),
           a.opportunity_id, a.rep_id, a.occurred_at
      FROM @extschema@.activity a
     WHERE a.duration_s < 0 AND a.occurred_at <= as_of
    UNION ALL
    -- process definition
    SELECT 'stage'::text, 'pipeline_id=' || p.pipeline_id, 'stage_position_gap'::text,
           format('open stage positions are %s, not 1..%s', p.positions, p.n),
           NULL::bigint, NULL::bigint, NULL::timestamptz
      FROM open_positions p
     WHERE p.top <> p.n;
END;
$fn$;
COMMENT ON FUNCTION @extschema@.data_quality_findings(timestamptz) IS
    'Rows that break the sales process as the data stood at as_of, one row per finding: stage events out of order or after a close, regressions, skipped stages, stage fields that contradict the history, negative amounts and durations, missing owners, accounts, stage events and snapshots, amounts in a currency without a rate on their date, history dated in the future, gaps in open-stage positions.';

CREATE VIEW @extschema@.data_quality_findings WITH (security_invoker = true) AS
SELECT * FROM @extschema@.data_quality_findings();
COMMENT ON VIEW @extschema@.data_quality_findings IS
    'Data-quality findings now: one row per row that breaks a rule of the sales process (see the function).';

-- Moves in [from_at, to_at) that left a stage with required milestones
-- incomplete, read from the stage history whatever the gate mode was (or
-- is): the rules of the live gate (stage_gate_violations) applied to every
-- move of the history.  A move is forward when it goes from an open stage to
-- a later open stage (every stage from the one left up to the target is
-- passed, so skipped stages are passed too) or to won (every open stage from
-- the one left on).  Regressions, losses, reopenings and a deal's first
-- event are not gated.  A required milestone of a passed stage is missing
-- when it has no completion at or before the move; completions after as_of
-- are unknown at as_of.
-- The rows of gate_violations (whose dimension argument shares its name
-- with the first column, which PL/pgSQL refuses): PL/pgSQL so that the
-- query is planned with the actual dates.  The forward moves in the range
-- come from one ordered pass over the stage history (stage_event_walk, told
-- the pairs of stages that make a gated move); deal attributes are read
-- only for the breakdowns that need them.
CREATE FUNCTION sales_kpi_internal.gate_violation_rows(from_at timestamptz, to_at timestamptz, dim text,
                                                as_of timestamptz)
RETURNS TABLE (dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, stage_event_id bigint, pipeline_id bigint, gate_mode text,
               from_stage text, to_stage text, moved_at timestamptz, rep_id bigint,
               missing_milestones text, missing_count bigint, completed_late_count bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    lo timestamptz;
    hi timestamptz;
    by_deal boolean := dim NOT IN ('company', 'rep', 'team');
    -- the deals are read in two halves, ids up to mid and after it
    mid bigint := coalesce(sales_kpi_internal.deal_id_midpoint(), 0);
    gate_from bigint[];
    gate_to bigint[];
    gate_milestone bigint[];
    gate_label text[];
BEGIN
    PERFORM sales_kpi_internal.check_health_rep_args(dim, as_of, NULL, from_at, to_at);
    SELECT min(s.period_start), max(s.period_end) INTO lo, hi
      FROM sales_kpi_internal.resolve_series(from_at, to_at, 'month', as_of) s;
    -- for every forward move between two stages of a pipeline (a later
    -- open stage, or won): the required milestones of the stages passed
    SELECT coalesce(array_agg(f.stage_id ORDER BY ps.position, ms.position), '{}'),
           coalesce(array_agg(t.stage_id ORDER BY ps.position, ms.position), '{}'),
           coalesce(array_agg(ms.milestone_id ORDER BY ps.position, ms.position), '{}'),
           coalesce(array_agg(format('%s: %s', ps.name, ms.name) ORDER BY ps.position, ms.position), '{}')
      INTO gate_from, gate_to, gate_milestone, gate_label
      FROM @extschema@.stage f
      JOIN @extschema@.stage t
        ON t.pipeline_id = f.pipeline_id
       AND (t.kind = 'won' OR (t.kind = 'open' AND t.position > f.position))
      JOIN @extschema@.stage ps
        ON ps.pipeline_id = f.pipeline_id AND ps.kind = 'open' AND ps.position >= f.position
       AND (t.kind = 'won' OR ps.position < t.position)
      JOIN @extschema@.milestone ms ON ms.stage_id = ps.stage_id AND ms.required
     WHERE f.kind = 'open';
    RETURN QUERY
    WITH violation AS (
        -- each forward move in the range that left a required milestone
        -- of a stage it passed incomplete
        SELECT v.stage_event_id, v.opportunity_id, v.from_stage_id, v.stage_id, v.entered_at, v.rep_id,
               v.missing_milestones, v.missing_count, v.completed_late_count
          FROM (SELECT * FROM sales_kpi_internal.gate_move_violations(as_of, lo, hi, gate_from, gate_to, gate_milestone,
                                                              gate_label, NULL, mid)
                UNION ALL
                SELECT * FROM sales_kpi_internal.gate_move_violations(as_of, lo, hi, gate_from, gate_to, gate_milestone,
                                                              gate_label, mid + 1, NULL)) v
    ), bd AS (
        -- a deal attribute's breakdown of the deals that moved, read in one pass
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN by_deal THEN ARRAY(SELECT DISTINCT v.opportunity_id FROM violation v)
                        ELSE '{}' END, as_of, dim) b
    )
    SELECT CASE WHEN by_deal THEN bd.dimension_value
                ELSE @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
           END,
           lo, hi,
           v.opportunity_id, v.stage_event_id, f.pipeline_id,
           coalesce(p.gate_mode, @extschema@.default_stage_gate_mode()),
           f.name, t.name, v.entered_at, r.rep_id,
           v.missing_milestones, v.missing_count, v.completed_late_count
      FROM violation v
      JOIN @extschema@.stage f ON f.stage_id = v.from_stage_id
      JOIN @extschema@.stage t ON t.stage_id = v.stage_id
      JOIN @extschema@.pipeline p ON p.pipeline_id = f.pipeline_id
      -- the rep credited: the deal's owner at the move
      LEFT JOIN LATERAL (
            SELECT sn.owner_id
              FROM @extschema@.opportunity_history sn
             WHERE sn.opportunity_id = v.opportunity_id AND sn.changed_at <= v.entered_at
             ORDER BY sn.changed_at DESC
             LIMIT 1) w ON true
      LEFT JOIN @extschema@.rep r
        ON r.rep_id = coalesce(w.owner_id, v.rep_id,
                               (SELECT o.owner_id FROM @extschema@.opportunity o
                                 WHERE o.opportunity_id = v.opportunity_id))
      LEFT JOIN bd ON bd.opportunity_id = v.opportunity_id;
END;
$fn$;
COMMENT ON FUNCTION sales_kpi_internal.gate_violation_rows(timestamptz, timestamptz, text, timestamptz) IS
    'Internal: the rows of gate_violations without its dimension column.';

CREATE FUNCTION @extschema@.gate_violations(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                            dimension text DEFAULT 'company', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, stage_event_id bigint, pipeline_id bigint, gate_mode text,
               from_stage text, to_stage text, moved_at timestamptz, rep_id bigint,
               missing_milestones text, missing_count bigint, completed_late_count bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT dimension, t.* FROM sales_kpi_internal.gate_violation_rows(from_at, to_at, dimension, as_of) t
$$;
COMMENT ON FUNCTION @extschema@.gate_violations(timestamptz, timestamptz, text, timestamptz) IS
    'Forward moves in [from_at, to_at) (default: the twelve months before the month holding as_of, and that month) that left a stage with required milestones incomplete, from the stage history as it stood at as_of, whatever the gate mode; with the missing milestones and the rep who owned the deal at the move.';

CREATE VIEW @extschema@.gate_violations WITH (security_invoker = true) AS
SELECT * FROM @extschema@.gate_violations();
COMMENT ON VIEW @extschema@.gate_violations IS
    'Stage-gate violations of the last twelve months and this month, whole company (see the function).';
