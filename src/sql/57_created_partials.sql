-- The KPI engine, created deals (see 53_closed_partials.sql for the
-- pattern): the deals created in a period, by an instant.
--
-- * created_deal_rows: with the rep credited at that instant and the
--   breakdown (its query text also makes the new deals of
--   qualification_partials); deal_breakdowns: the same for listed deals
--   (conversion_alerts).
--   The owner at the instant is the deal's own unless its newest snapshot
--   is after the instant (changed since); only those deals read their
--   history, one index probe each inside the plan.
-- * creation_partials: per period of creation and breakdown key, the new
--   deals as created (count and amount of their first snapshot, the rep
--   credited being the owner then) and how many of them reached the second
--   open stage by the instant (pipeline_creation).
-- * qualification_partials: the leads, new deals and closed deals of a
--   period and how many qualified (funnel_rates).
--
-- The attributes come by hash joins in the same pass, only those the
-- dimension needs (dimension_sql).

CREATE FUNCTION sales_kpi_internal.created_deal_query(dimension text, by_ids boolean DEFAULT false,
                                                      with_stage boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
SELECT cr.opportunity_id, cr.pipeline_id, cr.owner_id, cr.created_at,
       sales_kpi_internal.dimension_key($4, cr.pipeline_id, cr.owner_id, v.value) AS dimension_key,
       v.value AS dimension_value%s
  FROM (SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.source, o.competitor, o.kind, o.product,
               o.created_at, o.stage_id, o.stage_entered_at,
               CASE WHEN o.snapshot_at > $3
                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id, $3)).owner_id, o.owner_id)
                    ELSE o.owner_id END AS owner_id
          FROM @extschema@.opportunity o
         WHERE %s) cr
  %s
 CROSS JOIN LATERAL (SELECT %s AS value) v
$sql$, CASE WHEN with_stage THEN ', cr.stage_id, cr.stage_entered_at' ELSE '' END,
       CASE WHEN by_ids THEN 'o.opportunity_id = ANY ($5)'
            ELSE 'o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3' END,
       d.joins, d.value)
      FROM sales_kpi_internal.dimension_sql(dimension, 'cr', 'cr.owner_id') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.created_deal_query(text, boolean, boolean) IS
    'Internal: the query of the deals created in [$1, $2) and by $3 (by_ids: the deals listed in $5, whenever created), with the owner at $3 and their breakdown for a dimension (also passed as $4), and with_stage their current stage and its entry, run by created_deal_rows(), deal_breakdowns() and qualification_partials().';

CREATE FUNCTION sales_kpi_internal.created_deal_rows(period_start timestamptz, period_end timestamptz,
                                              as_of timestamptz, dimension text DEFAULT 'company')
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, created_at timestamptz,
               dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    IF period_start IS NULL OR period_end IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'arguments "period_start", "period_end" and "as_of" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.finite_instant(as_of, 'as_of');
    RETURN QUERY EXECUTE sales_kpi_internal.created_deal_query(dim)
        USING period_start, period_end, as_of, dim;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.created_deal_rows(timestamptz, timestamptz, timestamptz, text) IS
    'Internal: the deals created in [period_start, period_end) and by as_of, with the owner at as_of (the rep credited) and the breakdown key and value of a dimension.';

-- The same for a set of deals found by other means (the entries of a
-- stage in a window): one index probe per listed deal, in id order.
CREATE FUNCTION sales_kpi_internal.deal_breakdowns(opportunity_ids bigint[], as_of timestamptz,
                                            dimension text DEFAULT 'company')
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, created_at timestamptz,
               dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    RETURN QUERY EXECUTE sales_kpi_internal.created_deal_query(dim, true)
        USING NULL::timestamptz, NULL::timestamptz, as_of, dim, opportunity_ids;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.deal_breakdowns(bigint[], timestamptz, text) IS
    'Internal: the listed deals with the owner at as_of (the rep credited) and the breakdown key and value of a dimension.';

-- Deals created in [$1, $2) and by $3 as they were created (first snapshot
-- by $3: amount, and owner for the breakdown, else the deal's own), with
-- "reached the second open stage by $3": entered one of the stages $6
-- (rank 2 and up of a pipeline with two open stages or more, and won), for
-- deals of the pipelines $7 (NULL for the others): a deal in one of those
-- stages since before $3 did, the others cost one index probe, stopping
-- at the first entry.  The first snapshot is one probe per deal.  $4 is
-- the dimension, $5 the period bounds, $8 the reporting time zone (the
-- creation date's rate).
CREATE FUNCTION sales_kpi_internal.creation_deal_query(dimension text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
SELECT cr.opportunity_id, cr.pipeline_id, cr.owner_id, cr.created_at,
       @extschema@.to_base(cr.amount, cr.currency, (cr.created_at AT TIME ZONE $8)::date) AS amount_base,
       cr.reached_second,
       sales_kpi_internal.dimension_key($4, cr.pipeline_id, cr.owner_id, v.value) AS dimension_key,
       v.value AS dimension_value
  FROM (SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.source, o.competitor, o.kind, o.product,
               o.created_at, o.currency,
               coalesce(h.amount, o.amount) AS amount, coalesce(h.owner_id, o.owner_id) AS owner_id,
               CASE WHEN o.pipeline_id = ANY($7) THEN r2.hit IS NOT NULL END AS reached_second
          FROM @extschema@.opportunity o
          -- a deal in one of those stages since before $3 entered it: no probe
          LEFT JOIN LATERAL (
                SELECT 1 AS hit
                 WHERE o.stage_id = ANY($6) AND o.stage_entered_at <= $3
                UNION ALL
                (SELECT 1
                   FROM @extschema@.stage_event e
                  WHERE NOT (o.stage_id = ANY($6) AND o.stage_entered_at <= $3)
                    AND e.opportunity_id = o.opportunity_id AND e.entered_at <= $3 AND e.stage_id = ANY($6)
                  LIMIT 1)) r2 ON o.pipeline_id = ANY($7)
          LEFT JOIN LATERAL (
                -- the deal as created: its first snapshot (the one the history trigger takes at created_at)
                SELECT hi.amount, hi.owner_id
                  FROM @extschema@.opportunity_history hi
                 WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= $3
                 ORDER BY hi.changed_at
                 LIMIT 1) h ON true
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3) cr
  %s
 CROSS JOIN LATERAL (SELECT %s AS value) v
$sql$, d.joins, d.value)
      FROM sales_kpi_internal.dimension_sql(dimension, 'cr', 'cr.owner_id') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.creation_deal_query(text) IS
    'Internal: the query of the deals created in [$1, $2) and by $3 as created (first snapshot: amount in the base currency at the creation-date rate, owner credited), whether each reached the second open stage by $3, and their breakdown for a dimension ($4), run by creation_partials().';

CREATE FUNCTION sales_kpi_internal.creation_partials(bounds timestamptz[], as_of timestamptz,
                                              dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opps bigint, amount numeric, reached_second @extschema@.winloss)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- one index probe per deal and history: a cache of probe results would never hit
SET enable_memoize = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    second_stages bigint[];
    two_stage_pipelines bigint[];
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- only pipelines with two open stages or more have a stage 1 -> 2 step
    SELECT ARRAY(SELECT st.stage_id FROM sales_kpi_internal.funnel_stage_ranks() st
                  WHERE st.open_stages >= 2 AND (st.rank >= 2 OR st.kind = 'won')),
           ARRAY(SELECT DISTINCT st.pipeline_id FROM sales_kpi_internal.funnel_stage_ranks() st WHERE st.open_stages >= 2)
      INTO second_stages, two_stage_pipelines;
    RETURN QUERY EXECUTE format($sql$
        SELECT cd.dimension_key, cd.dimension_value, $5[%2$s], $5[%2$s + 1], count(*), sum(cd.amount_base),
               @extschema@.winloss_agg(cd.reached_second)
          FROM (%3$s) cd
         GROUP BY %1$s, cd.dimension_key, cd.dimension_value, %2$s$sql$,
        sales_kpi_internal.key_column(dim, 'cd'),
        sales_kpi_internal.period_column(bounds, 'cd.created_at'),
        sales_kpi_internal.creation_deal_query(dim))
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, second_stages, two_stage_pipelines,
              @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.creation_partials(timestamptz[], timestamptz, text) IS
    'Internal: per creation period [bounds[i], bounds[i+1]) and dimension key, the deals created then (by as_of) as created: count, amount in the base currency at the creation-date rate (rep credited: the owner at creation), and a winloss summary of "reached the second open stage by as_of" over the deals of pipelines with two open stages or more.';

-- The partials of funnel_rates: per period [bounds[i], bounds[i+1]) and
-- dimension key, as of as_of: the leads created in the period, those
-- converted into a deal by as_of and those whose deal qualified by then;
-- the deals created in it and those qualified by as_of; the qualified
-- deals closed in it (won and lost, a winloss summary); the deals won in
-- it.  Qualified: entered by as_of a stage from its pipeline's
-- qualified_position on, or a won stage (a won deal did); one index probe
-- of the deal's events, stopping at the first such entry, for each deal
-- that needs it.  The rep credited is the lead's SDR, the owner at as_of
-- of a created deal, the owner at the close of a closed one.  Leads have a
-- source, an SDR and an account, no pipeline, competitor, kind or product:
-- for those dimensions the lead counts are 0 (funnel_rates shows NULL).
--
-- One query: the three row sources (closed_deal_query, created_deal_query
-- and the leads) are text in it, so that it is planned with the actual
-- dates.
CREATE FUNCTION sales_kpi_internal.qualification_partials(bounds timestamptz[], as_of timestamptz,
                                                          dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               leads bigint, converted_leads bigint, qualified_leads bigint, opps bigint, qualified_opps bigint,
               qops @extschema@.winloss, deals_won bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
-- one index probe per deal: a cache of probe results would never hit
SET enable_memoize = off
-- unlike closed_partials, index scans stay on: the probes read the deal
-- index of stage_event alone, and a range of closes read by index costs
-- less than those probes as bitmap heap scans
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    row_dim text := sales_kpi_internal.row_dimension(dim);
    lead_dims boolean := dim IN ('company', 'rep', 'team', 'source', 'industry', 'segment', 'region');
    lead_label record;
    qualifying bigint[];
    rows text;
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    SELECT ARRAY(SELECT s.stage_id
                   FROM @extschema@.stage s
                   JOIN @extschema@.pipeline pl ON pl.pipeline_id = s.pipeline_id
                  WHERE s.kind = 'won' OR (s.kind = 'open' AND s.position >= pl.qualified_position))
      INTO qualifying;
    -- rows: owner and pipeline ids (for rep, team and pipeline), the
    -- breakdown value (for the others), the instant that places the row in
    -- a period, what it is (1 closed deal, 2 created deal, 3 lead), whether
    -- it qualified when that is known without the history (a won deal, a
    -- deal in a qualifying stage since before as_of, a lead not converted
    -- by as_of), and the deal whose history tells otherwise
    rows := format($sql$
        SELECT c.owner_id, c.pipeline_id, c.dimension_value, c.closed_at AS at, 1 AS what,
               c.outcome = 'won' AS won, false AS converted,
               CASE WHEN c.outcome = 'won' THEN true END AS known, c.opportunity_id AS deal_id
          FROM (%1$s) c
        UNION ALL
        SELECT n.owner_id, n.pipeline_id, n.dimension_value, n.created_at, 2, false, false,
               CASE WHEN n.stage_id = ANY ($7) AND n.stage_entered_at <= $3 THEN true END, n.opportunity_id
          FROM (%2$s) n$sql$,
        sales_kpi_internal.closed_deal_query(row_dim, sales_kpi_internal.moved_since(as_of)),
        sales_kpi_internal.created_deal_query(row_dim, false, true));
    IF lead_dims THEN
        lead_label := sales_kpi_internal.dimension_sql(row_dim, 'l', 'l.rep_id');
        rows := rows || format($sql$
        UNION ALL
        SELECT l.rep_id, NULL::bigint, %1$s, l.created_at, 3, false, coalesce(l.converted_at <= $3, false),
               CASE WHEN l.converted_at <= $3 THEN NULL ELSE false END, l.opportunity_id
          FROM @extschema@.lead l
          %2$s
         WHERE l.created_at >= $1 AND l.created_at < $2 AND l.created_at <= $3$sql$,
            lead_label.value, lead_label.joins);
    END IF;
    -- whether the deal entered a qualifying stage by as_of, stopping at the
    -- first such entry, asked only where it is not known (coalesce stops
    -- at the first value): one expression over all three kinds of rows, and
    -- the outer OFFSET 0 keeps it a column computed once per row.  The
    -- inner OFFSET 0 keeps it a probe of the deal's events: given enough
    -- work_mem, the planner would rather read every qualifying event of
    -- the history into a hash (3M at 1M deals), which costs what the whole
    -- history costs, 2-4 times the probes of a quarter's or a year's deals
    -- (PostgreSQL never hashes an EXISTS whose subquery has an OFFSET).
    rows := format($sql$
        SELECT u.owner_id, u.pipeline_id, u.dimension_value, u.at, u.what, u.won, u.converted,
               coalesce(u.known,
                        EXISTS (SELECT FROM @extschema@.stage_event e
                                 WHERE e.opportunity_id = u.deal_id AND e.entered_at <= $3
                                   AND e.stage_id = ANY ($7)
                                OFFSET 0)) AS qualified
          FROM (%s) u
        OFFSET 0$sql$, rows);
    RETURN QUERY EXECUTE sales_kpi_internal.partials_sql(
            dim, rows,
            sales_kpi_internal.period_column(bounds, 'r.at'),
            $agg$count(*) FILTER (WHERE r.what = 3) AS leads, count(*) FILTER (WHERE r.converted) AS converted_leads,
                 count(*) FILTER (WHERE r.what = 3 AND r.qualified) AS qualified_leads,
                 count(*) FILTER (WHERE r.what = 2) AS opps,
                 count(*) FILTER (WHERE r.what = 2 AND r.qualified) AS qualified_opps,
                 @extschema@.winloss_agg(CASE WHEN r.what = 1 AND r.qualified THEN r.won END) AS qops,
                 count(*) FILTER (WHERE r.won) AS deals_won$agg$,
            $agg$sum(l.leads)::bigint, sum(l.converted_leads)::bigint, sum(l.qualified_leads)::bigint,
                 sum(l.opps)::bigint, sum(l.qualified_opps)::bigint, @extschema@.rollup(l.qops),
                 sum(l.deals_won)::bigint$agg$)
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, @extschema@.reporting_timezone(),
              qualifying;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.qualification_partials(timestamptz[], timestamptz, text) IS
    'Internal: per period [bounds[i], bounds[i+1]) and dimension key, as of as_of: leads created, converted and converted into a qualified deal; deals created and qualified; qualified deals closed (winloss summary); deals won.';
