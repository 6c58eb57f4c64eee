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

-- Deals closed in [period_start, period_end) as they stood at as_of: the
-- deal's newest stage event not after as_of is won or lost and entered in
-- the period.  A deal reopened after as_of still counts; one closed, then
-- reopened before as_of does not.  The owner is the one at the close (the
-- rep credited with the win), the amount the one known at as_of, converted
-- at the rate of the close date.
--
-- Only deals with stage events after as_of can differ from their current
-- row, and only deals with snapshots after the close (or after as_of: the
-- deal's snapshot_at tells) need their history read: at as_of = now that is
-- nearly none, so the common case is one range scan of opportunity.closed_at.  PL/pgSQL so that each
-- call is planned with its actual dates; JIT compilation would cost more
-- than these queries run.  The range is read with a bitmap scan: deals
-- close in another order than they were written, so an index scan visits
-- heap pages at random (2.1 s against 0.3 s for a year at 1M deals).
CREATE FUNCTION @extschema@.closed_deals(period_start timestamptz, period_end timestamptz,
                                         as_of timestamptz DEFAULT now())
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, outcome text,
               stage_id bigint, created_at timestamptz, closed_at timestamptz,
               amount numeric, currency character(3), amount_base numeric, account_id bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
SET enable_indexscan = off
AS $$
BEGIN
    RETURN QUERY
    WITH closing AS (
        SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.owner_id, o.created_at, o.amount,
               o.currency, o.stage_id, o.closed_at,
               -- a snapshot after the close (snapshot_at is the newest's time)
               coalesce(o.snapshot_at > o.closed_at, false) AS changed
          FROM @extschema@.opportunity o
         WHERE o.closed_at >= closed_deals.period_start AND o.closed_at < closed_deals.period_end
           AND o.closed_at <= closed_deals.as_of
        UNION ALL
        -- closed at as_of, but moved since (reopened, or closed again later)
        SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.owner_id, o.created_at, o.amount,
               o.currency, e.stage_id, e.entered_at, true
          FROM @extschema@.opportunity o
          CROSS JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = o.opportunity_id AND ev.entered_at <= closed_deals.as_of
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
         WHERE o.opportunity_id IN (SELECT ev.opportunity_id FROM @extschema@.stage_event ev
                                     WHERE ev.entered_at > closed_deals.as_of)
           AND (o.closed_at IS NULL OR o.closed_at > closed_deals.as_of)
           AND e.entered_at >= closed_deals.period_start AND e.entered_at < closed_deals.period_end
    ), credited AS (
        -- only a snapshot after the close (which is also any after as_of)
        -- can make the owner at the close or the amount at as_of differ from
        -- the deal's row, which always equals its newest snapshot
        SELECT c.opportunity_id, c.pipeline_id, c.account_id, c.created_at, c.currency, c.stage_id,
               c.closed_at,
               CASE WHEN NOT c.changed THEN c.owner_id
                    ELSE coalesce((SELECT hi.owner_id FROM @extschema@.opportunity_history hi
                                    WHERE hi.opportunity_id = c.opportunity_id
                                      AND hi.changed_at <= c.closed_at
                                    ORDER BY hi.changed_at DESC LIMIT 1), c.owner_id) END AS owner_id,
               CASE WHEN NOT c.changed THEN c.amount
                    ELSE coalesce((SELECT hi.amount FROM @extschema@.opportunity_history hi
                                    WHERE hi.opportunity_id = c.opportunity_id
                                      AND hi.changed_at <= closed_deals.as_of
                                    ORDER BY hi.changed_at DESC LIMIT 1), c.amount) END AS amount
          FROM closing c
    )
    SELECT r.opportunity_id, r.pipeline_id, r.owner_id, s.kind, r.stage_id, r.created_at, r.closed_at,
           r.amount, r.currency,
           @extschema@.to_base(r.amount, r.currency,
                               (r.closed_at AT TIME ZONE @extschema@.reporting_timezone())::date),
           r.account_id
      FROM credited r
      JOIN @extschema@.stage s ON s.stage_id = r.stage_id AND s.kind IN ('won', 'lost');
END;
$$;
COMMENT ON FUNCTION @extschema@.closed_deals(timestamptz, timestamptz, timestamptz) IS
    'Deals closed (won or lost) in [period_start, period_end) as the history stood at as_of, with the owner at the close, the amount known at as_of and that amount in the base currency at the close-date rate.';

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
