-- The KPI engine, created deals (see 53_closed_partials.sql for the
-- pattern): the deals created in a period, by an instant, with the rep
-- credited at that instant and their breakdown, for the KPIs that count
-- new opportunities (funnel_rates).
--
-- The owner at the instant is the deal's own unless its newest snapshot is
-- after the instant (changed since); only those deals read their history,
-- one index probe each inside the plan.  The attributes come by hash
-- joins in the same pass, only those the dimension needs (dimension_sql).

CREATE FUNCTION @extschema@.created_deal_query(dimension text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
SELECT cr.opportunity_id, cr.pipeline_id, cr.owner_id, cr.created_at,
       @extschema@.dimension_key($4, cr.pipeline_id, cr.owner_id, v.value) AS dimension_key,
       v.value AS dimension_value
  FROM (SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.source, o.competitor, o.kind, o.product,
               o.created_at,
               CASE WHEN o.snapshot_at > $3
                    THEN coalesce((@extschema@.snapshot_at(o.opportunity_id, $3)).owner_id, o.owner_id)
                    ELSE o.owner_id END AS owner_id
          FROM @extschema@.opportunity o
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3) cr
  %s
 CROSS JOIN LATERAL (SELECT %s AS value) v
$sql$, d.joins, d.value)
      FROM @extschema@.dimension_sql(dimension, 'cr', 'cr.owner_id') d
$query$;
COMMENT ON FUNCTION @extschema@.created_deal_query(text) IS
    'Internal: the query of the deals created in [$1, $2) and by $3, with the owner at $3 and their breakdown for a dimension (also passed as $4), run by created_deal_rows().';

CREATE FUNCTION @extschema@.created_deal_rows(period_start timestamptz, period_end timestamptz,
                                              as_of timestamptz, dimension text DEFAULT 'company')
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, created_at timestamptz,
               dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    dim text := @extschema@.outcome_dimension(dimension);
BEGIN
    IF period_start IS NULL OR period_end IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'arguments "period_start", "period_end" and "as_of" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.finite_instant(as_of, 'as_of');
    RETURN QUERY EXECUTE @extschema@.created_deal_query(dim)
        USING period_start, period_end, as_of, dim;
END;
$$;
COMMENT ON FUNCTION @extschema@.created_deal_rows(timestamptz, timestamptz, timestamptz, text) IS
    'Internal: the deals created in [period_start, period_end) and by as_of, with the owner at as_of (the rep credited) and the breakdown key and value of a dimension.';
