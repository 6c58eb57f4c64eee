-- The KPI engine, funnel (see 53_closed_partials.sql for the pattern): the
-- partials of stage_conversion.  For the deals created in each period, per
-- dimension key and pipeline, funnel summaries of the open-stage rank each
-- deal reached as the history stood at as_of: over all of them, over those
-- still open at as_of and over those won by then.  The conventions are
-- those of 61_kpi_funnel.sql: a deal reached rank k when the highest open
-- rank it entered is at least k, or when it ever entered a won stage; with
-- strict, only the ranks it first entered in order count (ties in time
-- count as in order).  The rep credited is the owner at as_of.
--
-- One pass, in one of two ways: the deals created in the periods walked
-- with their stage events in deal order (funnel_deals), or their stage
-- events not after as_of grouped per deal and joined to the deals'
-- attributes (hash joins and hash aggregates; work_mem is raised so that a
-- million deals hash in memory).  The outcome at as_of is the current
-- stage's kind, except for a deal that moved since (stage_entered_at is
-- after as_of), whose newest event not after as_of is looked up; the owner
-- likewise comes from the history only for a deal with a snapshot after
-- as_of.

-- How far each deal created in [created_from, created_to) got through its
-- funnel as of as_of, from one ordered pass over the deals and their stage
-- history (C, see funnel_walk.c): per deal created by as_of with an event
-- by as_of, the columns of its row that the funnel partials read, the
-- reached rank and the strict rank that grouping its events in SQL gives
-- (the other way of funnel_partials).  Only the deals with opportunity_id
-- between first_id and last_id (null: unbounded) are read, so that a
-- caller can read halves of the deals in calls that parallel workers run
-- at once, and a period's deals without the rest of the history where ids
-- grow with creation.
CREATE FUNCTION sales_kpi_internal.funnel_deals(as_of timestamptz, created_from timestamptz,
                                                created_to timestamptz, first_id bigint DEFAULT NULL,
                                                last_id bigint DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, created_at timestamptz, stage_id bigint,
               stage_entered_at timestamptz, reached_rank integer, strict_rank integer)
AS 'MODULE_PATHNAME', 'funnel_deals'
-- the cost of reading the whole history, so that the planner runs the two
-- halves in parallel workers
LANGUAGE C STABLE PARALLEL SAFE COST 10000000 ROWS 500000;
COMMENT ON FUNCTION sales_kpi_internal.funnel_deals(timestamptz, timestamptz, timestamptz, bigint, bigint) IS
    'Internal: per deal created in [created_from, created_to) by as_of with a stage event by as_of (opportunity_id between first_id and last_id): pipeline, creation, current stage and its entry, and the reached and strict ranks, from one ordered pass over the deals and their history.';

CREATE FUNCTION sales_kpi_internal.funnel_partials(bounds timestamptz[], as_of timestamptz,
                                            dimension text DEFAULT 'company', strict boolean DEFAULT false,
                                            method text DEFAULT NULL)
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, reached @extschema@.funnel, reached_open @extschema@.funnel,
               reached_won @extschema@.funnel)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '256MB'
-- a period with few deals reads their events by index (stage_event's
-- opportunity index), one with many reads them all in one scan; the probes
-- hit cached pages, which the default random_page_cost (4) prices as disk
-- reads and so scans every event even for a quarter
SET random_page_cost = 1.1
-- the planner cannot estimate the number of breakdown values and takes
-- every deal for a group of its own, so it prices gathering one row per
-- deal from the workers above the gain of the walk's halves in parallel
SET parallel_tuple_cost = 0.01
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    in_order boolean := strict IS DISTINCT FROM false;
    lo timestamptz;
    hi timestamptz;
    born_deals bigint;
    all_deals double precision;
    every_deal boolean;
    first_id bigint;
    last_id bigint;
    mid bigint;
    walk boolean;
    label record;
    too_long record;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'argument "as_of" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- a funnel summary counts ranks 1..64: name the pipeline that has more
    SELECT p.name, r.open_stages INTO too_long
      FROM sales_kpi_internal.funnel_stage_ranks() r
      JOIN @extschema@.pipeline p ON p.pipeline_id = r.pipeline_id
     WHERE r.open_stages > 64
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pipeline "%" has % open stages; the funnel KPIs count at most 64', too_long.name,
                        too_long.open_stages
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    label := sales_kpi_internal.dimension_sql(dim, 'b', 'b.owner_id');
    lo := bounds[1];
    hi := bounds[cardinality(bounds)];
    -- How each deal's reached rank is found (method, null: by size).  When
    -- the periods hold more than a quarter of the deals, one ordered pass
    -- over the deals and their stage history (funnel_deals, two halves in
    -- parallel) costs less than grouping their events in a query (walk);
    -- otherwise their events are read through the deal index of
    -- stage_event and grouped (group).  The walk reads the deals between
    -- the smallest and the largest id created in the periods: where ids
    -- grow with creation, as identity columns do, that is the periods'
    -- share of the history, not all of it.
    SELECT c.reltuples INTO all_deals FROM pg_catalog.pg_class c
     WHERE c.oid OPERATOR(pg_catalog.=) '@extschema@.opportunity'::pg_catalog.regclass;
    -- whether the periods hold every deal (probes of the creation index):
    -- then the id span is the primary key's, and counting the deals would
    -- read them all once more
    every_deal := NOT EXISTS (SELECT FROM @extschema@.opportunity o WHERE o.created_at < lo)
                  AND NOT EXISTS (SELECT FROM @extschema@.opportunity o WHERE o.created_at >= hi)
                  AND NOT EXISTS (SELECT FROM @extschema@.opportunity o WHERE o.created_at > as_of);
    IF every_deal THEN
        SELECT min(o.opportunity_id), max(o.opportunity_id) INTO first_id, last_id FROM @extschema@.opportunity o;
        -- only whether there is one matters then
        born_deals := CASE WHEN first_id IS NULL THEN 0 ELSE 1 END;
    ELSE
        SELECT count(*), min(o.opportunity_id), max(o.opportunity_id) INTO born_deals, first_id, last_id
          FROM @extschema@.opportunity o
         WHERE o.created_at >= lo AND o.created_at < hi AND o.created_at <= as_of;
    END IF;
    IF method IS NOT NULL AND method NOT IN ('walk', 'group') THEN
        RAISE EXCEPTION 'argument "method" must be walk, group or null, got "%"', method
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- reltuples is -1 before the table's first ANALYZE: then group.  By
    -- company or pipeline the walk reads nothing but the deals and their
    -- events (no join), so it is the cheaper way whenever the id span holds
    -- not many more deals than the periods (measured at 1M deals: a
    -- quarter's 100,000 deals in 0.2 s walked, 0.67 s grouped)
    walk := coalesce(method = 'walk',
                     born_deals > 0
                     AND (every_deal
                          OR (dim IN ('company', 'pipeline') AND last_id::numeric - first_id < 4 * born_deals)
                          OR (all_deals > 0 AND born_deals > 0.25 * all_deals)));
    IF born_deals = 0 THEN
        RETURN;                 -- no deals
    END IF;
    -- halves [first_id, mid] and [mid + 1, last_id] (no overflow at the ends
    -- of bigint; one piece when the span is a single id)
    mid := first_id / 2 + last_id / 2;
    IF mid >= last_id THEN
        mid := NULL;
    END IF;
    -- one query text per way and mode, run by EXECUTE so that each run is
    -- planned with its dates and dimension ($1 .. $8 below).  Only the
    -- strict mode of the grouping way has the materialized prefix CTE,
    -- which keeps a query out of parallel workers.
    RETURN QUERY EXECUTE format($sql$
    WITH %s, labelled AS NOT MATERIALIZED (
        SELECT b.*, %s AS value
          FROM born b
          %s
    )%s
    SELECT sales_kpi_internal.dimension_key($4, rd.pipeline_id, rd.owner_id, rd.value), rd.value,
           $5[rd.piece], $5[rd.piece + 1], rd.pipeline_id,
           @extschema@.funnel_agg(rd.rk),
           @extschema@.funnel_agg(rd.rk) FILTER (WHERE rd.outcome = 'open'),
           @extschema@.funnel_agg(rd.rk) FILTER (WHERE rd.outcome = 'won')
      FROM (SELECT l.pipeline_id, l.outcome, l.owner_id, l.value, %s AS piece, %s AS rk
              FROM labelled l%s) rd
     GROUP BY rd.pipeline_id, rd.owner_id, rd.value, rd.piece$sql$,
        CASE WHEN walk THEN format($walk$walked AS (
        -- the deals created in the periods with their ranks, in two halves
        SELECT w.* FROM sales_kpi_internal.funnel_deals($3, $1, $2, $7, coalesce($6, $8)) w
        UNION ALL
        SELECT w.* FROM sales_kpi_internal.funnel_deals($3, $1, $2, $6 + 1, $8) w WHERE $6 IS NOT NULL
    ), born AS (
        SELECT w.opportunity_id, w.created_at, w.pipeline_id, w.reached_rank, w.strict_rank,
               %s,
               cs.kind AS outcome
          FROM walked w
          %s
          -- the stage at as_of: the current one, unless the deal moved since
          LEFT JOIN @extschema@.stage cs
            ON cs.stage_id = CASE WHEN w.stage_entered_at > $3
                                  THEN (sales_kpi_internal.stage_event_at(w.opportunity_id, $3)).stage_id
                                  ELSE w.stage_id END
    )$walk$,
            -- the breakdowns beyond the pipeline read the deal's row
            CASE WHEN dim IN ('company', 'pipeline')
                 THEN 'NULL::bigint AS account_id, NULL::bigint AS owner_id'
                 ELSE $row$o.account_id, o.source, o.competitor, o.kind, o.product,
               CASE WHEN $4 NOT IN ('rep', 'team') THEN NULL
                    WHEN coalesce(o.snapshot_at > $3, false)
                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id, $3)).owner_id, o.owner_id)
                    ELSE o.owner_id END AS owner_id$row$ END,
            CASE WHEN dim IN ('company', 'pipeline') THEN ''
                 ELSE 'JOIN @extschema@.opportunity o ON o.opportunity_id = w.opportunity_id' END)
        ELSE $born$born AS (
        SELECT o.opportunity_id, o.created_at, o.pipeline_id, o.account_id, o.source, o.competitor,
               o.kind, o.product, cs.kind AS outcome,
               CASE WHEN $4 NOT IN ('rep', 'team') THEN NULL
                    WHEN coalesce(o.snapshot_at > $3, false)
                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id, $3)).owner_id, o.owner_id)
                    ELSE o.owner_id END AS owner_id
          FROM @extschema@.opportunity o
          -- the stage at as_of: the current one, unless the deal moved since
          -- (calls, not subqueries, so that the pass may run in parallel)
          LEFT JOIN @extschema@.stage cs
            ON cs.stage_id = CASE WHEN o.stage_entered_at > $3
                                  THEN (sales_kpi_internal.stage_event_at(o.opportunity_id, $3)).stage_id
                                  ELSE o.stage_id END
         -- deals created after as_of did not exist yet
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3
    )$born$ END,
        label.value, label.joins,
        CASE WHEN walk THEN '' ELSE $join$, events AS NOT MATERIALIZED (
        -- the stage events by as_of of the deals created in the periods
        SELECT e.opportunity_id, e.entered_at, rk.kind, rk.rank, rk.open_stages
          FROM @extschema@.opportunity o
          JOIN @extschema@.stage_event e ON e.opportunity_id = o.opportunity_id
          JOIN sales_kpi_internal.funnel_stage_ranks() rk ON rk.stage_id = e.stage_id
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3 AND e.entered_at <= $3
    ), progress AS (
        -- per deal with an event by as_of: the rank it reached
        SELECT ev.opportunity_id,
               CASE WHEN bool_or(ev.kind = 'won') THEN min(ev.open_stages) ELSE max(ev.rank) END AS reached_rank
          FROM events ev
         GROUP BY ev.opportunity_id
    )$join$ END
        || CASE WHEN in_order AND NOT walk THEN $strict$, firsts AS (
        -- when each open rank was first entered
        SELECT ev.opportunity_id, ev.rank, min(ev.entered_at) AS first_at
          FROM events ev
         WHERE ev.kind = 'open'
         GROUP BY ev.opportunity_id, ev.rank
    ), strict_prefix AS MATERIALIZED (
        -- the prefix 1..k of ranks first entered in order ends before the
        -- first rank that is missing or was first entered too early (once:
        -- as the inner side of a nested loop it would run per deal)
        SELECT f.opportunity_id,
               nullif(coalesce(min(f.rn) FILTER (WHERE f.broken) - 1, count(*)), 0)::integer AS strict_rank
          FROM (SELECT firsts.opportunity_id,
                       row_number() OVER w AS rn,
                       firsts.rank <> row_number() OVER w
                           OR firsts.first_at < lag(firsts.first_at) OVER w AS broken
                  FROM firsts
                WINDOW w AS (PARTITION BY firsts.opportunity_id ORDER BY firsts.rank)) f
         GROUP BY f.opportunity_id
    )$strict$ ELSE '' END,
        sales_kpi_internal.period_column(bounds, 'l.created_at'),
        -- a won deal of a pipeline without open stages reached no rank
        CASE WHEN NOT in_order AND walk THEN 'nullif(l.reached_rank, 0)'
             WHEN NOT in_order THEN 'nullif(pr.reached_rank, 0)'
             WHEN walk THEN 'l.strict_rank'
             ELSE 'sp.strict_rank' END,
        CASE WHEN walk THEN ''
             ELSE '
              JOIN progress pr ON pr.opportunity_id = l.opportunity_id' END
        || CASE WHEN in_order AND NOT walk THEN '
              LEFT JOIN strict_prefix sp ON sp.opportunity_id = pr.opportunity_id' ELSE '' END)
        USING lo, hi, as_of, dim, bounds, mid, first_id, last_id;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.funnel_partials(timestamptz[], timestamptz, text, boolean, text) IS
    'Internal: per period [bounds[i], bounds[i+1]) of creation, dimension key and pipeline, funnel summaries of the open-stage rank the deals reached as of as_of (all, still open, won); with strict, only ranks first entered in order; method walk or group (null: by the share of deals in the periods).';
