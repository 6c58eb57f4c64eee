-- Breakdowns.  Every KPI function takes dimension text DEFAULT 'company'
-- and returns the columns (dimension, dimension_value): 'company' gives one
-- group, 'all'; the others group deals by pipeline, rep, team (of the rep
-- credited by the KPI: the owner at the as-of instant for pipeline, at the
-- close for outcomes), source, industry, segment, region, competitor, deal
-- kind or product.  A missing attribute is its own group, '(none)'.

CREATE FUNCTION @extschema@.dimension_value(dimension text, pipeline text, rep text, team text,
                                            source text, industry text, segment text, region text,
                                            competitor text, kind text, product text)
RETURNS text
AS 'MODULE_PATHNAME', 'dimension_value'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.dimension_value(text, text, text, text, text, text, text, text, text, text, text) IS
    'The attribute named by dimension (company, pipeline, rep, team, source, industry, segment, region, competitor, kind, product): ''all'' for company, ''(none)'' for a missing attribute; an unknown dimension is an error.';

-- Internal: the breakdown of the KPI engine's passes as SQL, for a query
-- text: the joins a dimension needs (only those: pipeline, account or rep)
-- and the value expression, over a deal row named deal (with the columns
-- pipeline_id, account_id, source, competitor, kind and product) and the
-- owner expression owner (the rep credited).  The value is that of
-- dimension_value(); written out per dimension, it names the one column
-- it reads, so the planner estimates the groups from that column's
-- statistics (a call over every attribute multiplies them all).  The
-- dimension must be one of dimension_value()'s (checked here, so the
-- fragments only ever hold known names); the caller supplies the aliases.
CREATE FUNCTION sales_kpi_internal.dimension_sql(dimension text, deal text, owner text,
                                          OUT joins text, OUT value text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the name check and its error are dimension_value()'s
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    joins := CASE
        WHEN dimension = 'pipeline' THEN
            format('LEFT JOIN @extschema@.pipeline p ON p.pipeline_id = %s.pipeline_id', deal)
        WHEN dimension IN ('rep', 'team') THEN
            format('LEFT JOIN @extschema@.rep r ON r.rep_id = %s', owner)
        WHEN dimension IN ('industry', 'segment', 'region') THEN
            format('LEFT JOIN @extschema@.account a ON a.account_id = %s.account_id', deal)
        ELSE '' END;
    value := CASE
        WHEN dimension = 'company' THEN $v$'all'::text$v$
        WHEN dimension = 'pipeline' THEN 'p.name'
        WHEN dimension = 'rep' THEN 'r.name'
        WHEN dimension = 'team' THEN 'r.team'
        WHEN dimension IN ('industry', 'segment', 'region') THEN 'a.' || dimension
        ELSE deal || '.' || dimension END;
    IF dimension <> 'company' THEN
        value := format($v$coalesce(%s, '(none)')$v$, value);
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.dimension_sql(text, text, text) IS
    'Internal: the joins and the value expression of a breakdown for a query text of the KPI engine, over a deal row and an owner expression (the value of dimension_value()).';

-- Internal: what a partials query groups by, as SQL over a row named
-- alias (with pipeline_id and owner_id).  key_column: the column that
-- keys a breakdown value besides the value itself (the owner for rep, the
-- pipeline for pipeline, none otherwise), passed as both ids to
-- dimension_key() once per group; period_column: the period a row falls
-- in, width_bucket(instant, $5) over the bounds $5, or the constant 1 for
-- one period.  Grouping by these, rather than by dimension_key() and
-- width_bucket() of every row, lets the planner estimate the groups from
-- column statistics (an expression over an instant counts one group per
-- instant) and sum them up in the workers.
CREATE FUNCTION sales_kpi_internal.key_column(dimension text, alias text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE dimension WHEN 'rep' THEN alias || '.owner_id'
                          WHEN 'pipeline' THEN alias || '.pipeline_id'
                          ELSE 'NULL::bigint' END
$$;
COMMENT ON FUNCTION sales_kpi_internal.key_column(text, text) IS
    'Internal: the id column that keys a breakdown value in a partials query (owner for rep, pipeline for pipeline, none otherwise), as SQL.';

CREATE FUNCTION sales_kpi_internal.period_column(bounds timestamptz[], instant text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(bounds) = 2 THEN '1' ELSE format('width_bucket(%s, $5)', instant) END
$$;
COMMENT ON FUNCTION sales_kpi_internal.period_column(timestamptz[], text) IS
    'Internal: the period of a row in a partials query over the bounds $5, as SQL: width_bucket of the instant, or 1 for one period.';

-- Internal: the breakdown a pass's rows carry for a partials query of a
-- dimension: none ('company') for those that label an id (rep and team the
-- owner, pipeline the pipeline), which partials_sql() names after grouping;
-- the dimension itself otherwise.
CREATE FUNCTION sales_kpi_internal.row_dimension(dimension text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN dimension IN ('rep', 'team', 'pipeline') THEN 'company' ELSE dimension END
$$;
COMMENT ON FUNCTION sales_kpi_internal.row_dimension(text) IS
    'Internal: the breakdown the rows of a partials pass carry: company for rep, team and pipeline (named after grouping by id), the dimension otherwise.';

-- Internal: a partials query, as SQL.  The rows of a pass (the query text
-- rows, of the breakdown row_dimension(dimension), read as alias r) are
-- summed per key, value and period (period, over r) by the select list
-- aggregates.  For rep, team and pipeline, which label an id, they are
-- summed per id and period, with no join per row; the names are joined to
-- those few groups, which are summed again per key, value and period by
-- the select list rollups, over alias l (a team's owners become one row).
-- Columns: dimension_key, dimension_value, period_start, period_end, the
-- columns of the rows named in groups (each kept apart, for a KPI that
-- splits its summaries further; their names must not be owner_id,
-- pipeline_id, piece or value), then the summaries.  $4 is the dimension
-- and $5 the bounds, as in every partials query.  The rows are grouped by
-- the keys that vary only: hashing a constant key (NULL::bigint for the id
-- a dimension does not use, 1 for a single period) with each of a million
-- rows is work for nothing.
CREATE FUNCTION sales_kpi_internal.partials_sql(dimension text, rows text, period text,
                                                aggregates text, rollups text, groups text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    label record;
    -- ', r.a, r.b' and ', l.a, l.b' for groups {a, b}
    r_groups text := (SELECT coalesce(string_agg(', r.' || quote_ident(g), '' ORDER BY i), '')
                        FROM unnest(groups) WITH ORDINALITY u(g, i));
    l_groups text := (SELECT coalesce(string_agg(', l.' || quote_ident(g), '' ORDER BY i), '')
                        FROM unnest(groups) WITH ORDINALITY u(g, i));
BEGIN
    IF dimension IS NULL THEN
        RAISE EXCEPTION 'argument "dimension" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF groups IS NULL OR array_position(groups, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'argument "groups" must not be null or hold a null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF groups && ARRAY['owner_id', 'pipeline_id', 'piece', 'value'] THEN
        RAISE EXCEPTION 'argument "groups" must not name owner_id, pipeline_id, piece or value'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF sales_kpi_internal.row_dimension(dimension) = dimension THEN
        -- the key column is NULL::bigint for these dimensions
        RETURN format($sql$
            SELECT sales_kpi_internal.dimension_key($4, %1$s, %1$s, r.dimension_value), r.dimension_value,
                   $5[%2$s], $5[%2$s + 1]%5$s, %3$s
              FROM (%4$s) r
             GROUP BY r.dimension_value%6$s%5$s$sql$,
            sales_kpi_internal.key_column(dimension, 'r'), period, aggregates, rows, r_groups,
            CASE WHEN period = '1' THEN '' ELSE ', ' || period END);
    END IF;
    label := sales_kpi_internal.dimension_sql(dimension, 'g', 'g.owner_id');
    -- grouped by the id in use (1 the owner, 2 the pipeline) and by the
    -- period unless there is one
    RETURN format($sql$
        SELECT sales_kpi_internal.dimension_key($4, %1$s, %1$s, l.value), l.value,
               $5[l.piece], $5[l.piece + 1]%10$s, %2$s
          FROM (SELECT g.*, %3$s AS value
                  FROM (SELECT %4$s AS owner_id, %5$s AS pipeline_id, %6$s AS piece%11$s, %7$s
                          FROM (%8$s) r
                         GROUP BY %12$s%11$s) g
                %9$s) l
         GROUP BY %1$s, l.value, l.piece%10$s$sql$,
        sales_kpi_internal.key_column(dimension, 'l'), rollups, label.value,
        CASE WHEN dimension = 'pipeline' THEN 'NULL::bigint' ELSE 'r.owner_id' END,
        CASE WHEN dimension = 'pipeline' THEN 'r.pipeline_id' ELSE 'NULL::bigint' END,
        period, aggregates, rows, label.joins, l_groups, r_groups,
        CASE WHEN dimension = 'pipeline' THEN '2' ELSE '1' END || CASE WHEN period = '1' THEN '' ELSE ', 3' END);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.partials_sql(text, text, text, text, text, text[]) IS
    'Internal: the SQL of a partials query: the rows summed per key, value, period and the group columns named; for rep, team and pipeline per owner or pipeline id, period and group columns, the names joined to those groups, summed again.';

CREATE VIEW @extschema@.deal_dimensions WITH (security_invoker = true) AS
SELECT o.opportunity_id,
       p.name AS pipeline,
       o.source,
       a.industry,
       a.segment,
       a.region,
       o.competitor,
       o.kind,
       o.product
  FROM @extschema@.opportunity o
  JOIN @extschema@.pipeline p ON p.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id
  LEFT JOIN @extschema@.account a ON a.account_id OPERATOR(pg_catalog.=) o.account_id;
COMMENT ON VIEW @extschema@.deal_dimensions IS
    'The attributes of each deal that KPIs break down by, apart from the rep and team (which depend on when the owner is taken).';

-- Each rep's target for [period_start, period_end): the quota rows that
-- overlap the period, each counted for the share of its days inside it (a
-- monthly view of quarterly quotas gets a third of each).  Quota dates are
-- read as local days of the reporting time zone.  Reps without a quota row
-- overlapping the period are absent (no target, not a zero target).
CREATE FUNCTION @extschema@.quota_in_period(period_start timestamptz, period_end timestamptz)
RETURNS TABLE (rep_id bigint, quota numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS (
        SELECT (period_start AT TIME ZONE @extschema@.reporting_timezone()) AS lo,
               (period_end AT TIME ZONE @extschema@.reporting_timezone()) AS hi
    )
    SELECT q.rep_id,
           sum(q.amount
               * extract(epoch FROM least(q.period_end::timestamp, p.hi) - greatest(q.period_start::timestamp, p.lo))
               / extract(epoch FROM q.period_end::timestamp - q.period_start::timestamp))
      FROM @extschema@.quota q, p
     WHERE q.period_start::timestamp < p.hi AND q.period_end::timestamp > p.lo
     GROUP BY q.rep_id
$$;
COMMENT ON FUNCTION @extschema@.quota_in_period(timestamptz, timestamptz) IS
    'Each rep''s target for a period: the overlapping quota rows, each prorated by the share of its time inside the period; reps with no overlapping quota are absent.';
