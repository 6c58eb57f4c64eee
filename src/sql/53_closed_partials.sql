-- The KPI engine, closed deals.  Every KPI is computed in two steps, as the
-- summary aggregates are: an internal *partials* function makes one pass
-- over the rows the KPI family needs and returns a summary per (dimension
-- key, period); the public KPI function rolls those up (rollup() and sums)
-- per dimension value and applies the accessors.  The pass happens inside
-- one custom-planned query that reads the deal's attributes in the same
-- scan that finds the deal (hash joins to account and rep, no probe per
-- deal), so no function boundary hides a row count from the planner where
-- it matters: what crosses it is either one row per deal into an
-- aggregate, or a few summaries.
--
-- The dimension key is the stable identity of a breakdown value: the rep or
-- pipeline id for those dimensions, the value itself for the others.  Two
-- reps with the same name are two keys with one value; the public KPIs
-- group by value, as they always have.

-- Internal: the stable key of a breakdown value (dimension.c).
CREATE FUNCTION sales_kpi_internal.dimension_key(dimension text, pipeline_id bigint, owner_id bigint, value text)
RETURNS text
AS 'MODULE_PATHNAME', 'dimension_key'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sales_kpi_internal.dimension_key(text, bigint, bigint, text) IS
    'Internal: the stable key of a breakdown value: the owner id for rep, the pipeline id for pipeline, the value itself otherwise.';

-- Internal: refuses period bounds that are not a strictly increasing
-- one-dimensional array of at least two instants, without NULLs, indexed
-- from 1.  Returns true.
CREATE FUNCTION sales_kpi_internal.check_bounds(bounds timestamptz[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF bounds IS NULL OR array_ndims(bounds) IS DISTINCT FROM 1 OR array_lower(bounds, 1) <> 1
       OR cardinality(bounds) < 2 OR array_position(bounds, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'argument "bounds" must be an array of at least two instants, indexed from 1, without nulls'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. cardinality(bounds) - 1 LOOP
        IF bounds[i + 1] <= bounds[i] THEN
            RAISE EXCEPTION 'argument "bounds" must be strictly increasing, got "%" after "%"',
                    bounds[i + 1], bounds[i]
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_bounds(timestamptz[]) IS
    'Internal: checks an array of period bounds (at least two, strictly increasing, no nulls); true or 22023.';

-- Internal: validates a dimension argument and returns it.  The common
-- dimensions are those of dimension_value(); a KPI may accept extra ones.
CREATE FUNCTION sales_kpi_internal.outcome_dimension(dimension text, extra text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF dimension IS NULL THEN
        RAISE EXCEPTION 'argument "dimension" must not be null'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Use ''company'' for no breakdown.';
    END IF;
    IF dimension = ANY (extra) THEN
        RETURN dimension;
    END IF;
    -- the names dimension_value() knows (no exception block: a function
    -- that starts a subtransaction cannot run in a parallel query)
    IF cardinality(extra) > 0
       AND NOT dimension = ANY (ARRAY['company', 'pipeline', 'rep', 'team', 'source', 'industry', 'segment',
                                      'region', 'competitor', 'kind', 'product']) THEN
        RAISE EXCEPTION 'invalid value for argument "dimension": "%"', dimension
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid dimensions are: company, pipeline, rep, team, source, industry, segment, region, competitor, kind, product, '
                         || array_to_string(extra, ', ') || '.';
    END IF;
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    RETURN dimension;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.outcome_dimension(text, text[]) IS
    'Internal: checks a dimension argument (the common dimensions plus the extra ones a KPI accepts) and returns it; 22023 for an unknown one.';

-- Deal size bands of the win-rate breakdown 'deal_size_band', on the amount
-- in the base currency: [0, 10k), [10k, 50k), [50k, 250k), [250k, inf).
CREATE FUNCTION @extschema@.deal_size_band(amount numeric)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN amount IS NULL THEN '(none)'
                WHEN amount < 10000 THEN '< 10k'
                WHEN amount < 50000 THEN '10k - 50k'
                WHEN amount < 250000 THEN '50k - 250k'
                ELSE '>= 250k' END
$$;
COMMENT ON FUNCTION @extschema@.deal_size_band(numeric) IS
    'The deal size band of an amount in the base currency: < 10k, 10k - 50k, 50k - 250k, >= 250k (lower bounds included); ''(none)'' for NULL.';

-- Internal: checks the dimension of the closed-deal functions: those of
-- dimension_value() and deal_size_band.
CREATE FUNCTION sales_kpi_internal.closed_dimension(dimension text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN dimension = 'deal_size_band' THEN dimension
                ELSE sales_kpi_internal.outcome_dimension(dimension) END
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_dimension(text) IS
    'Internal: checks the dimension of the closed-deal partials (the common ones and deal_size_band) and returns it.';

-- Internal: whether any deal entered a stage after an instant, that is
-- whether a pass at that as_of must read the history of deals that moved
-- since.  Planned with the instant itself (EXECUTE), it reads the entered_at
-- index from as_of on only (by an index scan, which the passes that call it
-- turn off for themselves): under row security too, it reads no more than
-- the part of the pass it decides on.  NULL: true.
CREATE FUNCTION sales_kpi_internal.moved_since(as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET enable_indexscan = on
AS $$
DECLARE
    moved boolean;
BEGIN
    IF as_of IS NULL THEN
        RETURN true;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM @extschema@.stage_event e WHERE e.entered_at OPERATOR(pg_catalog.>) $1)'
        INTO moved USING as_of;
    RETURN moved;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.moved_since(timestamptz) IS
    'Internal: true when a stage event was entered after as_of, or as_of is null (a pass at as_of must then read the history of the deals that moved since).';

-- Internal: whether any deal has a snapshot after an instant (its
-- snapshot_at, the time of its newest, is later), that is whether a pass
-- at that as_of must read the snapshots of deals that changed since.  One
-- probe of the snapshot_at index, planned with the instant.  NULL: true.
CREATE FUNCTION sales_kpi_internal.changed_since(as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET enable_indexscan = on
AS $$
DECLARE
    changed boolean;
BEGIN
    IF as_of IS NULL THEN
        RETURN true;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM @extschema@.opportunity o WHERE o.snapshot_at OPERATOR(pg_catalog.>) $1)'
        INTO changed USING as_of;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.changed_since(timestamptz) IS
    'Internal: true when a deal has a snapshot after as_of, or as_of is null (a pass at as_of must then read the snapshots of the deals that changed since).';

-- Deals closed in [$1, $2) as they stood at $3, each with its breakdown
-- key and value for the dimension (checked by the caller, and passed as $4
-- too; $5 is the partials' period bounds, $6 the reporting time zone, read
-- once rather than per deal for the close date's rate): the deal's
-- newest stage event not after as_of is won or lost and entered in the
-- period.  A deal reopened after as_of still counts; one closed, then
-- reopened before as_of does not.  The owner is the one at the close (the
-- rep credited with the win), the amount the one known at as_of, converted
-- at the rate of the close date.  Besides the dimensions of
-- dimension_value(), deal_size_band (of the amount in the base currency).
-- The last columns are whether the deal was won and its kind (deal_kind:
-- new-business bookings are the won deals of kind new).
--
-- Only deals with stage events after as_of can differ from their current
-- row, and only deals with snapshots after the close (or after as_of: the
-- deal's snapshot_at tells) need their history read: at as_of = now that is
-- nearly none, so the common case is one range scan of opportunity.closed_at.
-- The lookups are function calls, not subqueries, so that the query can
-- run in parallel workers.
--
-- The query is text, run by EXECUTE in closed_deal_rows (the rows) and
-- closed_partials (summed up in the same query, in parallel workers when
-- the range is big enough): each run is planned with its actual dates, and
-- the text holds only the joins its dimension needs (dimension_sql).
-- With moved false, the text leaves out the deals that moved after as_of: the
-- caller has found that none did (moved_since()), which is the common case
-- of as_of = now, and spares planning and starting that part.  With
-- only_outcome 'won' or 'lost', the deals closed the other way are left
-- out (bookings: a third of the deals to convert and sum; the losses);
-- NULL reads both, and any other value is refused.
CREATE FUNCTION sales_kpi_internal.closed_deal_query(dimension text, moved boolean DEFAULT true,
                                                     only_outcome text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
BEGIN
    IF only_outcome NOT IN ('won', 'lost') THEN
        RAISE EXCEPTION 'argument "only_outcome" must be won, lost or null, got "%"', only_outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN (SELECT format($sql$
WITH closed AS (
    SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.owner_id, o.created_at, o.amount,
           o.currency, o.stage_id, o.closed_at, o.source, o.competitor, o.kind, o.product, o.lost_reason,
           s.kind AS outcome,
           -- a snapshot after the close (snapshot_at is the newest's time)
           coalesce(o.snapshot_at > o.closed_at, false) AS changed
      FROM @extschema@.opportunity o
      JOIN @extschema@.stage s ON s.stage_id = o.stage_id
     WHERE o.closed_at >= $1
       AND o.closed_at < $2
       AND o.closed_at <= $3
       AND s.kind IN (%1$s)
%2$s), credited AS (
    -- only a snapshot after the close (which is also any after as_of)
    -- can make the owner at the close or the amount at as_of differ from
    -- the deal's row, which always equals its newest snapshot
    SELECT c.opportunity_id, c.pipeline_id, c.account_id, c.created_at, c.currency, c.stage_id,
           c.closed_at, c.source, c.competitor, c.kind, c.product, c.lost_reason, c.outcome,
           CASE WHEN NOT c.changed THEN c.owner_id
                ELSE coalesce((sales_kpi_internal.snapshot_at(c.opportunity_id, c.closed_at)).owner_id, c.owner_id)
           END AS owner_id,
           CASE WHEN NOT c.changed THEN c.amount
                ELSE coalesce((sales_kpi_internal.snapshot_at(c.opportunity_id, $3)).amount, c.amount)
           END AS amount
      FROM closed c
), converted AS (
    SELECT r.*,
           @extschema@.to_base(r.amount, r.currency,
                               (r.closed_at AT TIME ZONE $6)::date)
               AS amount_base
      FROM credited r
), labelled AS (
    SELECT c.*, %3$s AS value
      FROM converted c
      %4$s
)
SELECT l.opportunity_id, l.pipeline_id, l.owner_id, l.outcome, l.stage_id, l.created_at, l.closed_at,
       l.amount, l.currency, l.amount_base, l.account_id,
       sales_kpi_internal.dimension_key($4, l.pipeline_id, l.owner_id, l.value) AS dimension_key,
       l.value AS dimension_value, l.lost_reason, l.competitor,
       -- once per deal here rather than in each aggregate that asks
       l.outcome = 'won' AS won, l.kind AS deal_kind
  FROM labelled l
$sql$,
        k.kinds,
        CASE WHEN moved IS NOT FALSE THEN format($moved$    UNION ALL
    -- closed at as_of, but moved since (reopened, or closed again later):
    -- the newest event not after as_of.  Only a deal with a close in the
    -- period can have closed there as of as_of: at a past as_of most deals
    -- have moved since, so the candidates come from the period's closing
    -- events, and the lookup is made for those alone: its argument names
    -- both sides of the join, so that the planner cannot push the filters
    -- on its result down to every closing event.
    SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.owner_id, o.created_at, o.amount,
           o.currency, (o.e).stage_id, (o.e).entered_at, o.source, o.competitor, o.kind, o.product,
           o.lost_reason, s.kind, true
      FROM (SELECT o.*,
                   sales_kpi_internal.stage_event_at(CASE WHEN o.stage_entered_at > $3 THEN c.opportunity_id END, $3)
                       AS e
              FROM (SELECT DISTINCT t.opportunity_id
                      FROM @extschema@.stage_event t
                      JOIN @extschema@.stage ts ON ts.stage_id = t.stage_id
                     WHERE ts.kind IN (%1$s)
                       AND t.entered_at >= $1 AND t.entered_at < $2 AND t.entered_at <= $3) c
              JOIN @extschema@.opportunity o ON o.opportunity_id = c.opportunity_id
             WHERE o.opportunity_id IN (SELECT ev.opportunity_id FROM @extschema@.stage_event ev
                                         WHERE ev.entered_at > $3)
               AND (o.closed_at IS NULL OR o.closed_at > $3)) o
      JOIN @extschema@.stage s ON s.stage_id = (o.e).stage_id
     WHERE (o.e).entered_at >= $1
       AND (o.e).entered_at < $2
       AND s.kind IN (%1$s)
$moved$, k.kinds) ELSE '' END,
        -- deal_size_band: of the amount in the base currency
        CASE WHEN dimension = 'deal_size_band' THEN '@extschema@.deal_size_band(c.amount_base)' ELSE d.value END,
        CASE WHEN dimension = 'deal_size_band' THEN '' ELSE d.joins END)
      FROM sales_kpi_internal.dimension_sql(CASE WHEN dimension = 'deal_size_band' THEN 'company' ELSE dimension END,
                                     'c', 'c.owner_id') d,
           -- the closing stage kinds the pass reads
           (SELECT CASE only_outcome WHEN 'won' THEN $k$'won'$k$ WHEN 'lost' THEN $k$'lost'$k$
                                     ELSE $k$'won', 'lost'$k$ END AS kinds) k);
END;
$query$;
COMMENT ON FUNCTION sales_kpi_internal.closed_deal_query(text, boolean, text) IS
    'Internal: the query of the deals closed in [$1, $2) as of $3 with their breakdown for a dimension (also passed as $4), run by closed_deal_rows(), closed_partials() and loss_partials(); with moved false, for when no deal moved after as_of; with only_outcome won or lost, those deals alone.';

-- JIT compilation would cost more than these queries run.  The range is
-- read with a bitmap scan: deals close in another order than they were
-- written, so an index scan visits heap pages at random (2.1 s against
-- 0.3 s for a year at 1M deals).
CREATE FUNCTION sales_kpi_internal.closed_deal_rows(period_start timestamptz, period_end timestamptz,
                                             as_of timestamptz, dimension text,
                                             only_outcome text DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, outcome text,
               stage_id bigint, created_at timestamptz, closed_at timestamptz,
               amount numeric, currency character(3), amount_base numeric, account_id bigint,
               dimension_key text, dimension_value text, lost_reason text, competitor text,
               deal_kind text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_indexscan = off
-- the start of parallel workers priced as in closed_partials: rows passed
-- back one by one gain less from workers than sums do
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.closed_dimension(dimension);
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT q.opportunity_id, q.pipeline_id, q.owner_id, q.outcome, q.stage_id, q.created_at, q.closed_at,
               q.amount, q.currency, q.amount_base, q.account_id, q.dimension_key, q.dimension_value,
               q.lost_reason, q.competitor, q.deal_kind
          FROM (%s) q$sql$,
        sales_kpi_internal.closed_deal_query(dim, sales_kpi_internal.moved_since(as_of), only_outcome))
        USING period_start, period_end, as_of, dim, NULL::timestamptz[], @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_deal_rows(timestamptz, timestamptz, timestamptz, text, text) IS
    'Internal: the rows of closed_deals() with each deal''s breakdown key and value for a dimension (those of dimension_value() and deal_size_band), read in the same pass, and its lost_reason, competitor and kind (deal_kind); with only_outcome won or lost, those deals alone.';

-- The won deals of a period per breakdown value, summed in the pass that
-- finds them: their win/loss summary (count and won amount in the base
-- currency at the close-date rate), how many distinct accounts they were
-- won from, and the won amount of those with an account (for ARPA).
-- Distinct accounts do not add up across periods or keys, so these are
-- the sums of one period, not partials; summed in the pass, no deal's row
-- is handed back (at 1M deals, deal_size by rep over all time: 0.54-0.75
-- s, against 0.71-0.88 s through closed_deal_rows).
CREATE FUNCTION sales_kpi_internal.won_deal_summary(period_start timestamptz, period_end timestamptz,
                                                    as_of timestamptz, dimension text)
RETURNS TABLE (dimension_value text, outcomes @extschema@.winloss, accounts bigint, account_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_indexscan = off
-- parallel workers only where they pay for their start (closed_partials)
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.closed_dimension(dimension);
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT q.dimension_value, @extschema@.winloss_agg(true, q.amount_base),
               count(DISTINCT q.account_id), sum(q.amount_base) FILTER (WHERE q.account_id IS NOT NULL)
          FROM (%s) q
         GROUP BY q.dimension_value$sql$,
        sales_kpi_internal.closed_deal_query(dim, sales_kpi_internal.moved_since(as_of), 'won'))
        USING period_start, period_end, as_of, dim, NULL::timestamptz[], @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.won_deal_summary(timestamptz, timestamptz, timestamptz, text) IS
    'Internal: per breakdown value, the deals won in [period_start, period_end) as of as_of: win/loss summary (won amount in the base currency at the close-date rate), distinct accounts and the won amount of the deals with an account.';

CREATE FUNCTION @extschema@.closed_deals(period_start timestamptz, period_end timestamptz,
                                         as_of timestamptz DEFAULT now())
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, outcome text,
               stage_id bigint, created_at timestamptz, closed_at timestamptz,
               amount numeric, currency character(3), amount_base numeric, account_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cd.opportunity_id, cd.pipeline_id, cd.owner_id, cd.outcome, cd.stage_id, cd.created_at,
           cd.closed_at, cd.amount, cd.currency, cd.amount_base, cd.account_id
      FROM sales_kpi_internal.closed_deal_rows(period_start, period_end, as_of, 'company') cd
$$;
COMMENT ON FUNCTION @extschema@.closed_deals(timestamptz, timestamptz, timestamptz) IS
    'Deals closed (won or lost) in [period_start, period_end) as the history stood at as_of, with the owner at the close, the amount known at as_of and that amount in the base currency at the close-date rate.';

-- The partials of the closed-deal KPIs (win rate, sales cycle, quota
-- attainment, bookings): the deals closed in each period [bounds[i],
-- bounds[i+1]) as of as_of, per dimension key: their win/loss summary
-- (won amount in the base currency at the close-date rate), the summary of
-- the won deals' cycles (creation to win, negative ones as 0; NULL without
-- a win, and left out without with_cycles: it takes 8 kB per group) and
-- the closed amount; with won_only, of the won deals alone (their lost
-- count is 0).  Only periods and keys with a closed deal have a row.  Any
-- split of a period into consecutive bounds rolls up to the same
-- summaries as the whole period.
CREATE FUNCTION sales_kpi_internal.closed_partials(bounds timestamptz[], as_of timestamptz,
                                            dimension text DEFAULT 'company', with_cycles boolean DEFAULT true,
                                            won_only boolean DEFAULT false)
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               outcomes @extschema@.winloss, won_cycles @extschema@.duration_summary, closed_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_indexscan = off
-- a duration summary takes 8 kB per group: hashing a year of rep groups
-- needs more than the default 4 MB
SET work_mem = '64MB'
-- parallel workers only where they pay for their start: on a virtual
-- machine a Gather takes 25-30 ms to start its workers, and each worker
-- then faults in every shared buffer it reads for the first time: some
-- 50 ms, 15,000-20,000 units of these plans' costs (a quarter's pass at 1M
-- deals is priced 47,000 and takes 0.14 s), where the default of 1,000
-- assumes a few ms.  A quarter's pass then runs in the leader alone (0.14
-- s, against 0.23 s with two workers); a year or more still gains from them
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.closed_dimension(dimension);
    -- the cycles' summary only when asked for (with_cycles): its 8 kB per
    -- group would otherwise steer the planner away from hashing the groups
    cycles text := CASE WHEN with_cycles
                        THEN $agg$CASE WHEN bool_or(r.won) THEN
                                 @extschema@.duration_agg(greatest(r.closed_at - r.created_at, interval '0'))
                                     FILTER (WHERE r.won) END$agg$
                        ELSE 'NULL::@extschema@.duration_summary' END;
BEGIN
    IF as_of IS NULL OR with_cycles IS NULL OR won_only IS NULL THEN
        RAISE EXCEPTION 'arguments "as_of", "with_cycles" and "won_only" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- rep, team and pipeline are grouped by the owner at the close or the
    -- pipeline, and named afterwards (partials_sql)
    RETURN QUERY EXECUTE sales_kpi_internal.partials_sql(
            dim,
            sales_kpi_internal.closed_deal_query(sales_kpi_internal.row_dimension(dim),
                                                 sales_kpi_internal.moved_since(as_of),
                                                 CASE WHEN won_only THEN 'won' END),
            sales_kpi_internal.period_column(bounds, 'r.closed_at'),
            -- the closed amount is the summary's won amount plus the others':
            -- one amount added per deal (PostgreSQL runs an aggregate
            -- written twice once); NULL when no amount is known, like sum()
            $agg$@extschema@.winloss_agg(r.won, r.amount_base) AS outcomes,
                 $agg$ || cycles || $agg$ AS won_cycles,
                 coalesce(@extschema@.won_amount(@extschema@.winloss_agg(r.won, r.amount_base))
                              + sum(r.amount_base) FILTER (WHERE NOT r.won),
                          @extschema@.won_amount(@extschema@.winloss_agg(r.won, r.amount_base)),
                          sum(r.amount_base) FILTER (WHERE NOT r.won)) AS closed_amount$agg$,
            -- NULL without a win, as in one pass (rollup() of no summary is an empty one)
            '@extschema@.rollup(l.outcomes), '
            || CASE WHEN with_cycles
                    THEN 'CASE WHEN bool_or(l.won_cycles IS NOT NULL) THEN @extschema@.rollup(l.won_cycles) END, '
                    ELSE 'NULL::@extschema@.duration_summary, ' END
            || 'sum(l.closed_amount)')
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_partials(timestamptz[], timestamptz, text, boolean, boolean) IS
    'Internal: per period [bounds[i], bounds[i+1]) and dimension key, the deals closed as of as_of (won_only: the won ones): win/loss summary (won amount in the base currency), duration summary of the won deals'' cycles (with_cycles) and the closed amount.';

-- The partials of loss_stage: the deals lost in each period [bounds[i],
-- bounds[i+1]) as of as_of, per dimension key, pipeline, the last open
-- stage the deal entered before its loss (NULL: none), lost_reason and
-- competitor (the deal's current values, which the history does not keep;
-- '(none)' for NULL): how many and their amount in the base
-- currency at the close-date rate.  The stage is one short probe of the
-- deal's events per lost deal (the deal index read backward from the
-- loss to the first open stage), in the same pass that finds the deals.
CREATE FUNCTION sales_kpi_internal.loss_partials(bounds timestamptz[], as_of timestamptz,
                                                 dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, stage_id bigint, lost_reason text, competitor text,
               deals bigint, amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- one probe per lost deal: a cache of probe results would never hit
SET enable_memoize = off
-- by rep over a year, nearly a group per lost deal: hashed in memory
SET work_mem = '64MB'
-- parallel workers only where they pay for their start (closed_partials)
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    RETURN QUERY EXECUTE sales_kpi_internal.partials_sql(
            dim,
            format($sql$
        SELECT c.owner_id, c.pipeline_id, c.dimension_value, c.closed_at, c.amount_base,
               c.pipeline_id AS lost_pipeline_id, le.stage_id AS lost_stage_id,
               coalesce(c.lost_reason, '(none)') AS lost_reason,
               coalesce(c.competitor, '(none)') AS lost_competitor
          FROM (%s) c
          LEFT JOIN LATERAL (
                SELECT e.stage_id
                  FROM @extschema@.stage_event e
                 WHERE e.opportunity_id = c.opportunity_id AND e.entered_at <= c.closed_at
                   AND e.stage_id = ANY ($7)
                 ORDER BY e.entered_at DESC, e.stage_event_id DESC
                 LIMIT 1) le ON true$sql$,
                sales_kpi_internal.closed_deal_query(sales_kpi_internal.row_dimension(dim),
                                                     sales_kpi_internal.moved_since(as_of), 'lost')),
            sales_kpi_internal.period_column(bounds, 'r.closed_at'),
            'count(*) AS deals, sum(r.amount_base) AS amount',
            'sum(l.deals)::bigint, sum(l.amount)',
            ARRAY['lost_pipeline_id', 'lost_stage_id', 'lost_reason', 'lost_competitor'])
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, @extschema@.reporting_timezone(),
              ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'open');
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.loss_partials(timestamptz[], timestamptz, text) IS
    'Internal: per period [bounds[i], bounds[i+1]) and dimension key, the deals lost as of as_of per pipeline, last open stage before the loss, lost_reason and competitor: count and amount in the base currency at the close-date rate.';
