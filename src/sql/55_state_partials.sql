-- The KPI engine, deal states (see 53_closed_partials.sql for the pattern):
-- every deal created in a range as it stood at an instant, and the
-- partials of the cohort KPIs built on it (cohort_win_rate, the
-- Kaplan-Meier part of sales_cycle): per (dimension key, creation period),
-- the survival summary of the deals' ages at their close, open deals
-- censored at the instant.
--
-- The deal's state at the instant is its current row unless it moved since
-- (stage_entered_at is after the instant), in which case its newest stage
-- event not after the instant gives the outcome and the close.  The rep
-- credited is the owner at the close (closed deals) or at the instant (open
-- deals), read from opportunity_history only for a deal with a snapshot
-- after that (or that moved), falling back to the current owner when no
-- snapshot is that old.  The lookups are calls, not subqueries, so that
-- the pass can run in parallel workers; nearly every deal needs none.

-- The query of the deals created in [$1, $2) and no later than $3, as they
-- stood at $3, with their pipeline and breakdown key and value for the
-- dimension $4
-- (checked by the caller).  Deals with no stage by $3 are absent.  Run by
-- EXECUTE in deal_states_at (the rows) and state_partials (summed up in the
-- same query): each run is planned with its actual dates, so the lookups a
-- dimension does not need are planned away, and the text holds only the
-- joins its dimension needs (dimension_sql).  With moved false, the caller
-- has found that no deal moved after $3 (moved_since(), the common case of
-- an instant that is now), and every deal stands where its row says.
CREATE FUNCTION sales_kpi_internal.deal_state_query(dimension text, moved boolean DEFAULT true)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
WITH state AS (
    SELECT o.opportunity_id, o.created_at, o.owner_id, o.pipeline_id, o.account_id, o.source,
           o.competitor, o.kind, o.product,
           %s
           coalesce(o.snapshot_at > least(o.closed_at, $3), false) AS late
      FROM %s o
), labelled AS (
    -- deals with no stage by the instant drop out here
    SELECT st.*, s.kind AS outcome, CASE WHEN s.kind <> 'open' THEN st.closed_at END AS closed
      FROM state st
      JOIN @extschema@.stage s ON s.stage_id = st.stage_id
), owned AS (
    SELECT lb.*,
           CASE WHEN $4 NOT IN ('rep', 'team') THEN NULL
                WHEN NOT (lb.late OR lb.moved) THEN lb.owner_id
                ELSE coalesce((sales_kpi_internal.snapshot_at(lb.opportunity_id, coalesce(lb.closed, $3))).owner_id,
                              lb.owner_id)
           END AS owner_then
      FROM labelled lb
), valued AS (
    SELECT ow.opportunity_id, ow.created_at, ow.outcome, ow.closed, ow.owner_then, ow.pipeline_id,
           %s AS value
      FROM owned ow
      %s
)
SELECT v.opportunity_id, v.created_at, v.outcome, v.closed AS closed_at, v.owner_then AS owner_id,
       sales_kpi_internal.dimension_key($4, v.pipeline_id, v.owner_then, v.value) AS dimension_key,
       v.value AS dimension_value, v.pipeline_id
  FROM valued v
$sql$,
        CASE WHEN moved IS NOT FALSE THEN $moved$o.stage_entered_at > $3 AS moved,
           CASE WHEN o.stage_entered_at > $3 THEN (o.e).stage_id ELSE o.stage_id END AS stage_id,
           CASE WHEN o.stage_entered_at > $3 THEN (o.e).entered_at ELSE o.closed_at END AS closed_at,$moved$
             ELSE 'false AS moved, o.stage_id, o.closed_at,' END,
        CASE WHEN moved IS NOT FALSE THEN $moved$(
            -- a deal that moved since has its newest event not after $3
            -- looked up, once: OFFSET 0 keeps this subquery apart (pulled
            -- up, the call would be made once per field read) and, unlike
            -- a LIMIT, out of no parallel plan
            SELECT o.opportunity_id, o.created_at, o.owner_id, o.pipeline_id, o.account_id, o.source,
                   o.competitor, o.kind, o.product, o.stage_entered_at, o.snapshot_at, o.stage_id, o.closed_at,
                   sales_kpi_internal.stage_event_at(CASE WHEN o.stage_entered_at > $3 THEN o.opportunity_id END, $3)
                       AS e
              FROM @extschema@.opportunity o
             WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3
            OFFSET 0)$moved$
             ELSE $plain$(SELECT o.* FROM @extschema@.opportunity o
             WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3)$plain$ END,
        d.value, d.joins)
      FROM sales_kpi_internal.dimension_sql(dimension, 'ow', 'ow.owner_then') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.deal_state_query(text, boolean) IS
    'Internal: the query of the deals created in [$1, $2) and by $3 as they stood at $3, with their breakdown for a dimension (also passed as $4), run by deal_states_at() and state_partials(); with moved false, for when no deal moved after $3.';

-- Internal: every deal created in [created_from, created_to) and no later
-- than at, as it stood at `at`, with its breakdown key and value: outcome
-- won, lost or open, the close instant (NULL when open) and, for the rep
-- and team breakdowns, the rep credited (owner_id; NULL for the others).
CREATE FUNCTION sales_kpi_internal.deal_states_at(created_from timestamptz, created_to timestamptz,
                                           at timestamptz, dimension text DEFAULT 'company')
RETURNS TABLE (opportunity_id bigint, created_at timestamptz, outcome text, closed_at timestamptz,
               owner_id bigint, dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    IF created_from IS NULL OR created_to IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'arguments "created_from", "created_to" and "at" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.finite_instant(at, 'at');
    RETURN QUERY EXECUTE format($sql$
        SELECT ds.opportunity_id, ds.created_at, ds.outcome, ds.closed_at, ds.owner_id, ds.dimension_key,
               ds.dimension_value
          FROM (%s) ds$sql$, sales_kpi_internal.deal_state_query(dim, sales_kpi_internal.moved_since(at)))
        USING created_from, created_to, at, dim;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.deal_states_at(timestamptz, timestamptz, timestamptz, text) IS
    'Internal: deals created in [created_from, created_to) as they stood at an instant: outcome won, lost or open and close instant from the newest stage event not after it, with the breakdown key and value of a dimension (the rep credited: the owner at the close, or at the instant when open).';

-- Internal: runs a state partials query (its text, and the arguments of
-- state_partials) grouped by sorting, in the leader alone: for the
-- breakdowns with many keys (rep, team).  A survival summary takes 6 kB
-- per group: a year of monthly rep groups (tens of thousands) hashes to
-- disk, at twice the time of sorting the deals by group, and parallel
-- workers would each pass their summary per group through the gather (750
-- MB for a year of monthly rep groups at 1M deals, 1.6 s against 1.2 s in
-- the leader; the planner prices a row the same whatever its width).
-- Settings of the function rather than set_config(), which a parallel
-- query refuses.
CREATE FUNCTION sales_kpi_internal.state_partials_sorted(query text, bounds timestamptz[], at timestamptz,
                                                         dimension text)
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               ages @extschema@.survival, still_open bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
SET enable_hashagg = off
SET max_parallel_workers_per_gather = 0
AS $$
BEGIN
    RETURN QUERY EXECUTE query USING bounds[1], bounds[cardinality(bounds)], at, dimension, bounds;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.state_partials_sorted(text, timestamptz[], timestamptz, text) IS
    'Internal: runs the query of state_partials() for a breakdown with many keys, grouped by sorting and without parallel workers.';

-- The partials of the cohort KPIs: per creation period [bounds[i],
-- bounds[i+1]) and dimension key, the deals created then (and by `at`) as
-- they stood at `at`: the survival summary of their age at the close, open
-- deals censored at `at` (negative ages as 0), and how many are still
-- open.  Only periods and keys with a deal have a row; any split of a
-- period into consecutive bounds rolls up to the same summaries.
CREATE FUNCTION sales_kpi_internal.state_partials(bounds timestamptz[], at timestamptz,
                                           dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               ages @extschema@.survival, still_open bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
-- parallel workers only where they pay for their start (closed_partials
-- says why)
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    query text;
BEGIN
    PERFORM sales_kpi_internal.required_instant(at, 'at');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- rep, team and pipeline are grouped by the rep credited or the pipeline,
    -- and named afterwards (partials_sql)
    query := sales_kpi_internal.partials_sql(
            dim, sales_kpi_internal.deal_state_query(sales_kpi_internal.row_dimension(dim),
                                                     sales_kpi_internal.moved_since(at)),
            sales_kpi_internal.period_column(bounds, 'r.created_at'),
            $agg$@extschema@.compact(@extschema@.survival_agg(
                     greatest(coalesce(r.closed_at, $3) - r.created_at, interval '0'), r.outcome)) AS ages,
                 count(*) FILTER (WHERE r.outcome = 'open') AS still_open$agg$,
            '@extschema@.compact(@extschema@.rollup(l.ages)), sum(l.still_open)::bigint');
    -- the few groups of the other breakdowns hash in memory
    IF dim IN ('rep', 'team') THEN
        RETURN QUERY SELECT * FROM sales_kpi_internal.state_partials_sorted(query, bounds, at, dim);
    ELSE
        RETURN QUERY EXECUTE query USING bounds[1], bounds[cardinality(bounds)], at, dim, bounds;
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.state_partials(timestamptz[], timestamptz, text) IS
    'Internal: per creation period [bounds[i], bounds[i+1]) and dimension key, the deals created then as they stood at an instant: survival summary of their age at the close (open deals censored at the instant) and how many are still open.';
