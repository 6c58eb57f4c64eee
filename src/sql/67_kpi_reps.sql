-- Reps over time and organisational attainment (kpis.md sections 2 and 3):
-- rep_timeline (rep vs peers per period), rep_volatility and
-- last_minute_share ("roller coaster" and "last-minute closer"),
-- org_attainment (net new revenue against quota).

-- The two parts of rep_timeline, per period (the index b of its start in
-- starts), dimension value and peer group: the closed deals of [lo, hi) as
-- of as_of, credited to the owner at the close, and the activities, to the
-- rep who took them.  Two functions so that they run in two workers.
CREATE FUNCTION sales_kpi_internal.rep_timeline_closed(lo timestamptz, hi timestamptz, as_of timestamptz,
                                                starts timestamptz[], dim text)
RETURNS TABLE (b integer, dv text, peer text, wl @extschema@.winloss, cycle_days numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the cost of a pass over a year of closed deals or activities, so that the
-- planner runs the two parts of rep_timeline in parallel workers
COST 10000000 ROWS 50000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    by_rep boolean := dim = 'rep';
BEGIN
    -- the breakdown (rep credited: the owner at the close) comes with the rows
    RETURN QUERY
        SELECT c.b, c.dimension_value AS dv,
               CASE WHEN by_rep THEN coalesce(r.team, '(none)') ELSE 'all' END AS peer,
               @extschema@.winloss_agg(c.outcome = 'won', c.amount_base) AS wl,
               avg(extract(epoch FROM c.closed_at - c.created_at) / 86400.0)
                   FILTER (WHERE c.outcome = 'won') AS cycle_days
          FROM (SELECT width_bucket(cd.closed_at, starts) AS b, cd.owner_id, cd.outcome,
                       cd.amount_base, cd.closed_at, cd.created_at, cd.dimension_value
                  FROM sales_kpi_internal.closed_deal_rows(lo, hi, as_of, dim) cd) c
          LEFT JOIN @extschema@.rep r ON r.rep_id = c.owner_id AND by_rep
         GROUP BY 1, 2, 3;
END;
$fn$;
COMMENT ON FUNCTION sales_kpi_internal.rep_timeline_closed(timestamptz, timestamptz, timestamptz, timestamptz[], text) IS
    'Internal: the closed deals of rep_timeline per period, dimension value and peer group.';

CREATE FUNCTION sales_kpi_internal.rep_timeline_activity(lo timestamptz, hi timestamptz, as_of timestamptz,
                                                  starts timestamptz[], dim text)
RETURNS TABLE (b integer, dv text, peer text, n numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the cost of a pass over a year of closed deals or activities, so that the
-- planner runs the two parts of rep_timeline in parallel workers
COST 10000000 ROWS 50000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    by_deal boolean := dim NOT IN ('company', 'rep', 'team');
    by_rep boolean := dim = 'rep';
BEGIN
    RETURN QUERY
    WITH act_rep AS (
        -- activities per period, rep and, only when the dimension is a deal
        -- attribute, deal (periods start at local midnights).  Per rep and
        -- period, the activities are counted from the index on (rep_id,
        -- occurred_at) alone, without reading the table.
        SELECT p.b, r0.rep_id, NULL::bigint AS opportunity_id, x.n
          FROM @extschema@.rep r0
         CROSS JOIN generate_subscripts(starts, 1) p(b)
         CROSS JOIN LATERAL (
                SELECT count(*) AS n
                  FROM @extschema@.activity a
                 WHERE a.rep_id = r0.rep_id
                   AND a.occurred_at >= starts[p.b] AND a.occurred_at < coalesce(starts[p.b + 1], hi)
                   AND a.occurred_at <= as_of) x
         WHERE NOT by_deal AND x.n > 0
        UNION ALL
        SELECT width_bucket(a.occurred_at, starts), NULL, NULL, count(*)
          FROM @extschema@.activity a
         WHERE NOT by_deal AND a.rep_id IS NULL
           AND a.occurred_at >= lo AND a.occurred_at < hi AND a.occurred_at <= as_of
         GROUP BY 1
        UNION ALL
        SELECT width_bucket(a.occurred_at, starts), a.rep_id, a.opportunity_id, count(*)
          FROM @extschema@.activity a
         WHERE by_deal AND a.occurred_at >= lo AND a.occurred_at < hi AND a.occurred_at <= as_of
         GROUP BY 1, 2, 3
    ), bd AS (
        -- a deal attribute's breakdown of the deals with activities, read in one pass
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN by_deal
                        THEN ARRAY(SELECT DISTINCT a.opportunity_id FROM act_rep a WHERE a.opportunity_id IS NOT NULL)
                        ELSE '{}' END, as_of, dim) b
    )
        SELECT a.b,
               CASE WHEN by_deal
                    -- an activity with no deal has no deal attribute
                    THEN coalesce(bd.dimension_value, '(none)')
                    ELSE @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
               END,
               CASE WHEN by_rep THEN coalesce(r.team, '(none)') ELSE 'all' END,
               sum(a.n)
          FROM act_rep a
          LEFT JOIN @extschema@.rep r ON r.rep_id = a.rep_id
          LEFT JOIN bd ON bd.opportunity_id = a.opportunity_id
         GROUP BY 1, 2, 3;
END;
$fn$;
COMMENT ON FUNCTION sales_kpi_internal.rep_timeline_activity(timestamptz, timestamptz, timestamptz, timestamptz[], text) IS
    'Internal: the activities of rep_timeline per period, dimension value and peer group.';

-- Per dimension value and period: bookings, win rate, mean cycle and
-- activities, each with its percentile rank among the peers of the same
-- period (for dimension 'rep', the reps of the same team; otherwise every
-- value of the dimension).  Closed deals are credited to the owner at the
-- close (closed_deals), activities to the rep who took them.  Ranks are
-- percent_rank(): 0 for the lowest value among the peers, 1 for the
-- highest, (rank - 1) / (peers with a value - 1); a shorter cycle ranks
-- higher; a NULL measure (no closed or no won deal) has no rank.
-- The rows of rep_timeline (whose dimension argument shares its name with
-- the first column, which PL/pgSQL refuses): PL/pgSQL so that the query is
-- planned with the actual dates (a generic plan misjudges how many
-- activities fall in the range by a factor of ten).  Closed deals and
-- activities are each read in one pass and counted per period, rep and (for
-- the deal dimensions) deal, by rep_timeline_closed and
-- rep_timeline_activity; the period is found by binary search in the array
-- of period starts (width_bucket) rather than by a join.
CREATE FUNCTION sales_kpi_internal.rep_timeline_rows(from_at timestamptz, to_at timestamptz, grain text,
                                              dim text, as_of timestamptz)
RETURNS TABLE (dimension_value text, period_start timestamptz, period_end timestamptz,
               peer_group text, bookings numeric, won bigint, lost bigint, win_rate double precision,
               mean_cycle_days double precision, activities bigint, peers bigint,
               bookings_percentile double precision, win_rate_percentile double precision,
               cycle_percentile double precision, activity_percentile double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
-- the sorts of the window functions stay in memory
SET work_mem = '64MB'
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    starts timestamptz[];
    ends timestamptz[];
    lo timestamptz;
    hi timestamptz;
BEGIN
    PERFORM sales_kpi_internal.check_health_rep_args(dim, as_of, grain, from_at, to_at);
    SELECT array_agg(s.period_start ORDER BY s.period_start), array_agg(s.period_end ORDER BY s.period_start),
           min(s.period_start), max(s.period_end)
      INTO starts, ends, lo, hi
      FROM sales_kpi_internal.resolve_series(from_at, to_at, grain, as_of) s;
    IF lo IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH parts AS MATERIALIZED (
        -- the closed deals and the activities, each read in one pass and
        -- counted per period, dimension value and peer group: two
        -- independent branches, which parallel workers run at once
        SELECT c.b, c.dv, c.peer, c.wl, c.cycle_days, NULL::numeric AS n
          FROM sales_kpi_internal.rep_timeline_closed(lo, hi, as_of, starts, dim) c
        UNION ALL
        SELECT a.b, a.dv, a.peer, NULL, NULL, a.n
          FROM sales_kpi_internal.rep_timeline_activity(lo, hi, as_of, starts, dim) a
    ), measures AS (
        -- one closed row and one activity row at most per key
        SELECT starts[p.b] AS ps, ends[p.b] AS pe, p.dv, p.peer,
               coalesce(sum(@extschema@.won_amount(p.wl)), 0) AS bookings,
               coalesce(sum(@extschema@.won_count(p.wl)), 0)::bigint AS won,
               coalesce(sum(@extschema@.lost_count(p.wl)), 0)::bigint AS lost,
               max(@extschema@.win_rate(p.wl)) AS win_rate,
               max(p.cycle_days)::double precision AS cycle_days,
               coalesce(sum(p.n), 0)::bigint AS activities
          FROM parts p
         GROUP BY p.b, p.dv, p.peer
    )
    SELECT m.dv, m.ps, m.pe, m.peer, m.bookings, m.won, m.lost, m.win_rate, m.cycle_days,
           m.activities,
           count(*) OVER (PARTITION BY m.ps, m.peer),
           percent_rank() OVER (PARTITION BY m.ps, m.peer ORDER BY m.bookings),
           CASE WHEN m.win_rate IS NOT NULL
                THEN percent_rank() OVER (PARTITION BY m.ps, m.peer, m.win_rate IS NULL ORDER BY m.win_rate) END,
           CASE WHEN m.cycle_days IS NOT NULL
                THEN percent_rank() OVER (PARTITION BY m.ps, m.peer, m.cycle_days IS NULL
                                          ORDER BY m.cycle_days DESC) END,
           percent_rank() OVER (PARTITION BY m.ps, m.peer ORDER BY m.activities)
      FROM measures m;
END;
$fn$;
COMMENT ON FUNCTION sales_kpi_internal.rep_timeline_rows(timestamptz, timestamptz, text, text, timestamptz) IS
    'Internal: the rows of rep_timeline without its dimension column.';

CREATE FUNCTION @extschema@.rep_timeline(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                         grain text DEFAULT 'month', dimension text DEFAULT 'rep',
                                         as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               peer_group text, bookings numeric, won bigint, lost bigint, win_rate double precision,
               mean_cycle_days double precision, activities bigint, peers bigint,
               bookings_percentile double precision, win_rate_percentile double precision,
               cycle_percentile double precision, activity_percentile double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT dimension, t.* FROM sales_kpi_internal.rep_timeline_rows(from_at, to_at, grain, dimension, as_of) t
$$;
COMMENT ON FUNCTION @extschema@.rep_timeline(timestamptz, timestamptz, text, text, timestamptz) IS
    'Per rep (or other dimension value) and period: bookings, win rate, mean sales cycle of won deals and activity count, each with its percentile rank (percent_rank, 1 = best) among the peers of the same team and period.';

CREATE VIEW @extschema@.rep_timeline WITH (security_invoker = true) AS
SELECT * FROM @extschema@.rep_timeline();
COMMENT ON VIEW @extschema@.rep_timeline IS
    'Each rep per month over the last year against the peers of the same team (see the function).';

-- The twelve complete months before the month holding as_of.
CREATE FUNCTION sales_kpi_internal.trailing_months(as_of timestamptz, n integer DEFAULT 12)
RETURNS TABLE (period_start timestamptz, period_end timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.period_start, p.period_end
      FROM (SELECT @extschema@.period_start(as_of, 'month') AS hi) h,
           @extschema@.periods(((h.hi AT TIME ZONE @extschema@.reporting_timezone()) - make_interval(months => n))
                                   AT TIME ZONE @extschema@.reporting_timezone(),
                               h.hi, 'month') p
$$;
COMMENT ON FUNCTION sales_kpi_internal.trailing_months(timestamptz, integer) IS
    'Internal: the n complete months (in the reporting time zone) before the month holding as_of.';

-- Coefficient of variation (population standard deviation / mean) of each
-- dimension value's monthly bookings over the trailing twelve complete
-- months; months without a win count as zero bookings.  Values with a
-- closed deal in those months are listed; with no bookings the mean is 0
-- and the volatility NULL.
CREATE FUNCTION @extschema@.rep_volatility(as_of timestamptz DEFAULT now(), dimension text DEFAULT 'rep')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               months bigint, active_months bigint, bookings numeric, mean_monthly_bookings numeric,
               stddev_monthly_bookings numeric, volatility double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
AS $$
    WITH m AS MATERIALIZED (
        SELECT t.period_start AS ps, t.period_end AS pe
          FROM sales_kpi_internal.trailing_months(as_of) t
    ), closed AS (
        -- the breakdown (rep credited: the owner at the close) comes with the
        -- rows; the month of a close: binary search in the month starts
        SELECT rng.starts[width_bucket(c.closed_at, rng.starts)] AS ps, c.dimension_value AS dv,
               coalesce(sum(c.amount_base) FILTER (WHERE c.outcome = 'won'), 0) AS bookings
          FROM (SELECT min(m.ps) AS lo, max(m.pe) AS hi, array_agg(m.ps ORDER BY m.ps) AS starts FROM m) rng
         CROSS JOIN LATERAL sales_kpi_internal.closed_deal_rows(rng.lo, rng.hi, as_of, dimension) c
         GROUP BY 1, 2
    ), grid AS (
        SELECT v.dv, m.ps, coalesce(c.bookings, 0) AS bookings
          FROM (SELECT DISTINCT c.dv FROM closed c) v
         CROSS JOIN m
          LEFT JOIN closed c ON c.dv = v.dv AND c.ps = m.ps
    )
    SELECT dimension, g.dv, (SELECT min(m.ps) FROM m), (SELECT max(m.pe) FROM m),
           count(*), count(*) FILTER (WHERE g.bookings > 0),
           sum(g.bookings), avg(g.bookings), stddev_pop(g.bookings),
           (stddev_pop(g.bookings) / nullif(avg(g.bookings), 0))::double precision
      FROM grid g
     WHERE sales_kpi_internal.check_health_rep_args(dimension, as_of)
     GROUP BY g.dv
$$;
COMMENT ON FUNCTION @extschema@.rep_volatility(timestamptz, text) IS
    'Performance volatility: per rep (or other dimension value), the coefficient of variation (population standard deviation / mean) of monthly bookings over the twelve complete months before the month holding as_of, months without bookings counting as zero.';

CREATE VIEW @extschema@.rep_volatility WITH (security_invoker = true) AS
SELECT * FROM @extschema@.rep_volatility();
COMMENT ON VIEW @extschema@.rep_volatility IS
    'Each rep''s bookings volatility over the last twelve complete months (see the function).';

-- Share of a period's bookings closed in its last tenth ("last-minute
-- closer"): won deals with closed_at >= period_end - (period_end -
-- period_start) / 10, by amount, and the counts.
CREATE FUNCTION @extschema@.last_minute_share(period_start timestamptz DEFAULT NULL,
                                              period_end timestamptz DEFAULT NULL,
                                              dimension text DEFAULT 'company',
                                              as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               last_minute_start timestamptz, won bigint, last_minute_won bigint, bookings numeric,
               last_minute_bookings numeric, last_minute_share double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
AS $$
    WITH p AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe,
               r.period_end - (r.period_end - r.period_start) / 10 AS cut
          FROM sales_kpi_internal.resolve_period(period_start, period_end, as_of) r
    ), parts AS (
        -- the period's wins in two parts, before its last tenth and in it
        -- (one part when the cut falls on a bound): summed per part in the
        -- pass, rolled up here
        SELECT cp.dimension_value AS dv, cp.period_start >= p.cut AS late, cp.outcomes
          FROM p
         CROSS JOIN LATERAL sales_kpi_internal.closed_partials(
                    ARRAY(SELECT DISTINCT b FROM unnest(ARRAY[p.ps, p.cut, p.pe]) b ORDER BY b),
                    as_of, dimension, false, true) cp
    ), g AS (
        SELECT parts.dv, @extschema@.rollup(parts.outcomes) AS w,
               @extschema@.rollup(parts.outcomes) FILTER (WHERE parts.late) AS late
          FROM parts
         GROUP BY parts.dv
    )
    SELECT dimension, g.dv, p.ps, p.pe, p.cut,
           @extschema@.won_count(g.w), coalesce(@extschema@.won_count(g.late), 0),
           @extschema@.won_amount(g.w), coalesce(@extschema@.won_amount(g.late), 0),
           (coalesce(@extschema@.won_amount(g.late), 0) / nullif(@extschema@.won_amount(g.w), 0))::double precision
      FROM g CROSS JOIN p
     WHERE sales_kpi_internal.check_health_rep_args(dimension, as_of)
$$;
COMMENT ON FUNCTION @extschema@.last_minute_share(timestamptz, timestamptz, text, timestamptz) IS
    'Last-minute closing: the share of a period''s bookings (won amount, base currency) closed in the last 10% of the period, per dimension value; NULL with no bookings.';

CREATE VIEW @extschema@.last_minute_share WITH (security_invoker = true) AS
SELECT * FROM @extschema@.last_minute_share();
COMMENT ON VIEW @extschema@.last_minute_share IS
    'Share of this fiscal quarter''s bookings closed in its last tenth, whole company (see the function).';

-- Net new revenue of a period = new-business bookings (won deals of kind
-- new closed in the period, at the close-date rate) + net expansion of the
-- recurring revenue in the months of the period (expansion + reactivation
-- - contraction - churn, each month against the account's previous month;
-- a month without a row counts as zero MRR, so a gap is churn; revenue of
-- an account that never had any is "new" and left out: it comes from new
-- business already booked).  Months count once they have begun by as_of and
-- are not after the newest month in recurring_revenue.  Attainment = net
-- new revenue / the summed quota (quota_in_period) of the reps of the
-- dimension value (all reps for company); NULL with no quota, and for
-- dimensions that are not about reps.  For rep, team and the deal
-- dimensions, an account's MRR movement is credited to its newest deal won
-- before the end of the month (and its owner at the close); movements of
-- accounts without such a deal go to '(none)'.
CREATE FUNCTION @extschema@.org_attainment(period_start timestamptz DEFAULT NULL,
                                           period_end timestamptz DEFAULT NULL,
                                           dimension text DEFAULT 'company',
                                           as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               new_business_bookings numeric, expansion_mrr numeric, reactivation_mrr numeric,
               contraction_mrr numeric, churn_mrr numeric, net_expansion_mrr numeric,
               net_new_revenue numeric, quota numeric, attainment double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
AS $$
    WITH p AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe,
               (r.period_start AT TIME ZONE @extschema@.reporting_timezone()) AS lo_local,
               (r.period_end AT TIME ZONE @extschema@.reporting_timezone()) AS hi_local,
               (SELECT max(rr.month) FROM @extschema@.recurring_revenue rr) AS last_month
          FROM sales_kpi_internal.resolve_period(period_start, period_end, as_of) r
    ), months AS (
        -- first days of the months of the period that have begun by as_of
        SELECT m::date AS month
          FROM p, generate_series(date_trunc('month', p.lo_local) +
                                    CASE WHEN date_trunc('month', p.lo_local) < p.lo_local
                                         THEN interval '1 month' ELSE interval '0' END,
                                  p.hi_local - interval '1 microsecond', interval '1 month') m
         WHERE m::date <= p.last_month
           AND m AT TIME ZONE @extschema@.reporting_timezone() <= as_of
    ), cur AS (
        SELECT rr.account_id, rr.month, rr.mrr
          FROM @extschema@.recurring_revenue rr
         WHERE rr.month IN (SELECT month FROM months)
    ), prev AS (
        SELECT rr.account_id, (rr.month + interval '1 month')::date AS month, rr.mrr
          FROM @extschema@.recurring_revenue rr
         WHERE (rr.month + interval '1 month')::date IN (SELECT month FROM months)
    ), move AS (
        SELECT coalesce(c.account_id, q.account_id) AS account_id,
               coalesce(c.month, q.month) AS month,
               coalesce(c.mrr, 0) AS mrr, coalesce(q.mrr, 0) AS prev_mrr
          FROM cur c
          FULL JOIN prev q ON q.account_id = c.account_id AND q.month = c.month
         WHERE coalesce(c.mrr, 0) <> coalesce(q.mrr, 0)
    ), classified AS (
        SELECT mv.account_id, mv.month,
               CASE WHEN mv.prev_mrr > 0 AND mv.mrr > mv.prev_mrr THEN mv.mrr - mv.prev_mrr ELSE 0 END AS expansion,
               CASE WHEN mv.prev_mrr = 0 AND EXISTS (SELECT 1 FROM @extschema@.recurring_revenue h
                                                      WHERE h.account_id = mv.account_id
                                                        AND h.month < mv.month AND h.mrr > 0)
                    THEN mv.mrr ELSE 0 END AS reactivation,
               CASE WHEN mv.mrr > 0 AND mv.mrr < mv.prev_mrr THEN mv.prev_mrr - mv.mrr ELSE 0 END AS contraction,
               CASE WHEN mv.mrr = 0 THEN mv.prev_mrr ELSE 0 END AS churn
          FROM move mv
    ), won AS (
        SELECT o.account_id, o.opportunity_id, o.closed_at
          FROM @extschema@.opportunity o
          JOIN @extschema@.stage s ON s.stage_id = o.stage_id AND s.kind = 'won'
         WHERE dimension NOT IN ('company', 'industry', 'segment', 'region')
    ), credited AS (
        -- rep, team and the deal dimensions: each movement goes to the
        -- account's newest deal won before the end of the month (the won
        -- deals hashed by account, so an account's months meet only its
        -- own deals); the deals are labelled once each below
        SELECT DISTINCT ON (cl.account_id, cl.month)
               w.opportunity_id, cl.expansion, cl.reactivation, cl.contraction, cl.churn
          FROM classified cl
          LEFT JOIN won w
                 ON w.account_id = cl.account_id
                -- before the end of the month and not after as_of, as one
                -- join condition: as_of alone would be pushed into the scan
                -- of the deals, where a parameter's range is guessed at a
                -- third of the rows and read through the index of closes
                AND w.closed_at <= least(((cl.month + interval '1 month')::timestamp
                                          AT TIME ZONE @extschema@.reporting_timezone())
                                         - interval '1 microsecond',
                                         as_of)
         WHERE dimension NOT IN ('company', 'industry', 'segment', 'region')
         ORDER BY cl.account_id, cl.month, w.closed_at DESC, w.opportunity_id DESC
    ), by_deal AS (
        SELECT cr.opportunity_id, sum(cr.expansion) AS expansion, sum(cr.reactivation) AS reactivation,
               sum(cr.contraction) AS contraction, sum(cr.churn) AS churn
          FROM credited cr
         GROUP BY 1
    ), mrr AS (
        -- the company's sums need no account
        SELECT 'all' AS dv, sum(cl.expansion) AS expansion, sum(cl.reactivation) AS reactivation,
               sum(cl.contraction) AS contraction, sum(cl.churn) AS churn
          FROM classified cl
         WHERE dimension = 'company'
        HAVING count(*) > 0
        UNION ALL
        SELECT @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, a.industry,
                                           a.segment, a.region, NULL, NULL, NULL),
               sum(cl.expansion), sum(cl.reactivation), sum(cl.contraction), sum(cl.churn)
          FROM classified cl
          JOIN @extschema@.account a ON a.account_id = cl.account_id
         WHERE dimension IN ('industry', 'segment', 'region')
         GROUP BY 1
        UNION ALL
        -- a movement without a won deal has no deal: every attribute is
        -- missing, so it falls under '(none)'; the owner is the one at the
        -- close, which only a snapshot after the close can make differ
        -- from the deal's row
        SELECT @extschema@.dimension_value(dimension, p.name, r.name, r.team, o.source, a.industry,
                                           a.segment, a.region, o.competitor, o.kind, o.product),
               sum(b.expansion), sum(b.reactivation), sum(b.contraction), sum(b.churn)
          FROM by_deal b
          LEFT JOIN @extschema@.opportunity o ON o.opportunity_id = b.opportunity_id
          LEFT JOIN @extschema@.pipeline p ON p.pipeline_id = o.pipeline_id
          LEFT JOIN @extschema@.account a ON a.account_id = o.account_id
          LEFT JOIN @extschema@.rep r
                 ON r.rep_id = CASE WHEN o.snapshot_at > o.closed_at
                                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id,
                                                                                   o.closed_at)).owner_id,
                                                  o.owner_id)
                                    ELSE o.owner_id END
         GROUP BY 1
    ), booked AS (
        SELECT c.dimension_value AS dv, sum(c.amount_base) AS bookings
          FROM p
         CROSS JOIN LATERAL sales_kpi_internal.closed_deal_rows(p.ps, p.pe, as_of, dimension, 'won') c
         WHERE c.deal_kind = 'new'
         GROUP BY 1
    ), target AS (
        SELECT @extschema@.dimension_value(dimension, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS dv,
               sum(q.quota) AS quota
          FROM p
         CROSS JOIN LATERAL @extschema@.quota_in_period(p.ps, p.pe) q
          JOIN @extschema@.rep r ON r.rep_id = q.rep_id
         WHERE dimension IN ('company', 'rep', 'team')
         GROUP BY 1
    ), keys AS (
        SELECT b.dv FROM booked b UNION SELECT m.dv FROM mrr m UNION SELECT t.dv FROM target t
    )
    SELECT dimension, k.dv, p.ps, p.pe,
           coalesce(b.bookings, 0),
           coalesce(m.expansion, 0), coalesce(m.reactivation, 0), coalesce(m.contraction, 0), coalesce(m.churn, 0),
           coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0),
           coalesce(b.bookings, 0) + coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0),
           t.quota,
           ((coalesce(b.bookings, 0) + coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0))
            / nullif(t.quota, 0))::double precision
      FROM keys k
     CROSS JOIN p
      LEFT JOIN booked b ON b.dv = k.dv
      LEFT JOIN mrr m ON m.dv = k.dv
      LEFT JOIN target t ON t.dv = k.dv
     WHERE sales_kpi_internal.check_health_rep_args(dimension, as_of)
$$;
COMMENT ON FUNCTION @extschema@.org_attainment(timestamptz, timestamptz, text, timestamptz) IS
    'Organizational attainment: net new revenue of a period (new-business bookings + expansion + reactivation - contraction - churn of recurring revenue) and its ratio to the summed quota of the reps concerned (NULL without quota).';

CREATE VIEW @extschema@.org_attainment WITH (security_invoker = true) AS
SELECT * FROM @extschema@.org_attainment();
COMMENT ON VIEW @extschema@.org_attainment IS
    'Net new revenue and attainment of this fiscal quarter, whole company (see the function).';
