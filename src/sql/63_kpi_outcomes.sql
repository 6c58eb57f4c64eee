-- Outcome KPIs (kpis.md sections 2 and 3): win rate, cohort win rate, sales
-- cycle, deal size and quota attainment.  Each is a function taking the
-- period (or series), the dimension and the as-of instant, plus a view of
-- the same name with the defaults.
--
-- Shared conventions:
-- * Closed deals of a period are those of closed_deals(period_start,
--   period_end, as_of) (53_closed_partials.sql): the deal's state as the
--   stage history stood at as_of, the rep credited is the owner at the
--   close, amounts are in the base currency at the close-date rate.  The
--   KPIs roll up closed_partials() or read closed_deal_rows(), which carry
--   each deal's breakdown value.
-- * Every KPI function runs with jit off: its generic cost estimates are
--   high enough to trigger JIT compilation, which costs more than the query.
-- * Cohorts (cohort_win_rate, and the Kaplan-Meier part of sales_cycle) roll
--   up state_partials() (55_state_partials.sql): each deal's state at an
--   instant rebuilt from its newest stage event not after it; the rep is
--   the owner at the close for a closed deal and the owner at the instant
--   for an open one.
-- * A group with no deals has NULL rates and zero counts and sums; the
--   company breakdown always returns its row ('all'), even when empty.

-- Internal: the closed-deal partials of the rep breakdown rolled up per
-- owner at the close: won and lost counts and the won amount in the base
-- currency (win_rate_by_rep).
CREATE FUNCTION sales_kpi_internal.closed_by_owner(p_start timestamptz, p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (owner_id bigint, won bigint, lost bigint, won_amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT o.owner_id, @extschema@.won_count(o.w), @extschema@.lost_count(o.w),
           CASE WHEN @extschema@.won_count(o.w) > 0 THEN @extschema@.won_amount(o.w) END
      FROM (SELECT cp.dimension_key::bigint AS owner_id, @extschema@.rollup(cp.outcomes) AS w
              FROM sales_kpi_internal.closed_partials(ARRAY[p_start, p_end], p_as_of, 'rep', false) cp
             GROUP BY cp.dimension_key) o
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_by_owner(timestamptz, timestamptz, timestamptz) IS
    'Internal: deals closed in a period as of an instant, totalled per owner at the close: won, lost and won amount in the base currency.';

-------------------------------------------------------------------------------
-- Win rate
-------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.win_rate(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                     dimension text DEFAULT 'company', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               closed bigint, won bigint, lost bigint, win_rate double precision,
               win_rate_lower double precision, win_rate_upper double precision,
               won_amount numeric, closed_amount numeric, amount_win_rate double precision,
               company_win_rate double precision, win_rate_vs_company double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end,
               sales_kpi_internal.outcome_dimension(win_rate.dimension, '{contact_role,deal_size_band}') AS dim
          FROM sales_kpi_internal.resolve_period(win_rate.period_start, win_rate.period_end, win_rate.as_of) r
    ), parts AS MATERIALIZED (
        -- a deal has several contact roles: that breakdown reads the deals
        -- below, and its partials are the company's, for the company rate
        SELECT cp.dimension_value AS value, cp.outcomes, cp.closed_amount
          FROM p, sales_kpi_internal.closed_partials(ARRAY[p.period_start, p.period_end], win_rate.as_of,
                                              CASE WHEN p.dim = 'contact_role' THEN 'company' ELSE p.dim END,
                                              false) cp
    ), roles AS (
        -- once per distinct role of the deal's contacts; no contact: '(none)'
        SELECT DISTINCT ON (c.opportunity_id, coalesce(oc.role, '(none)'))
               c.outcome, c.amount_base, coalesce(oc.role, '(none)') AS value
          FROM p
         CROSS JOIN sales_kpi_internal.closed_deal_rows(p.period_start, p.period_end, win_rate.as_of, 'company') c
          LEFT JOIN @extschema@.opportunity_contact oc ON oc.opportunity_id = c.opportunity_id
         WHERE win_rate.dimension = 'contact_role'
    ), g AS (
        SELECT parts.value, @extschema@.rollup(parts.outcomes) AS w, sum(parts.closed_amount) AS closed_amount
          FROM parts
         WHERE win_rate.dimension <> 'contact_role'
         GROUP BY parts.value
        UNION ALL
        SELECT roles.value, @extschema@.winloss_agg(roles.outcome = 'won', roles.amount_base),
               sum(roles.amount_base)
          FROM roles
         GROUP BY roles.value
    ), overall AS (
        SELECT @extschema@.win_rate(@extschema@.rollup(parts.outcomes)) AS rate
          FROM parts
    )
    SELECT p.dim, v.value, p.period_start, p.period_end,
           coalesce(@extschema@.won_count(g.w) + @extschema@.lost_count(g.w), 0),
           coalesce(@extschema@.won_count(g.w), 0),
           coalesce(@extschema@.lost_count(g.w), 0),
           @extschema@.win_rate(g.w),
           @extschema@.wilson_lower(g.w),
           @extschema@.wilson_upper(g.w),
           coalesce(@extschema@.won_amount(g.w), 0),
           coalesce(g.closed_amount, 0),
           (coalesce(@extschema@.won_amount(g.w), 0) / nullif(g.closed_amount, 0))::double precision,
           o.rate,
           @extschema@.win_rate(g.w) - o.rate
      FROM p
     CROSS JOIN overall o
     CROSS JOIN (SELECT g.value FROM g
                 UNION
                 SELECT 'all' WHERE win_rate.dimension = 'company') v
      LEFT JOIN g ON g.value = v.value
     ORDER BY array_position(ARRAY['< 10k', '10k - 50k', '50k - 250k', '>= 250k'], v.value), v.value
$$;
COMMENT ON FUNCTION @extschema@.win_rate(timestamptz, timestamptz, text, timestamptz) IS
    'Win rate of the deals closed in a period (as the history stood at as_of), per dimension value: won / (won + lost) with a 95% Wilson interval, amount-weighted win rate, and the difference from the company rate. Besides the common dimensions accepts contact_role and deal_size_band.';

CREATE VIEW @extschema@.win_rate WITH (security_invoker = true) AS SELECT * FROM @extschema@.win_rate();
COMMENT ON VIEW @extschema@.win_rate IS
    'Company win rate of the current fiscal quarter so far, with its Wilson interval and amount-weighted rate (win_rate() with its defaults).';

-------------------------------------------------------------------------------
-- Cohort win rate
-------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.cohort_win_rate(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                            grain text DEFAULT 'month', dimension text DEFAULT 'company',
                                            as_of timestamptz DEFAULT now(), horizon interval DEFAULT '90 days')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               deals bigint, won bigint, still_open bigint,
               naive_win_rate double precision, cumulative_win_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH s AS MATERIALIZED (
        SELECT r.period_start, r.period_end,
               row_number() OVER (ORDER BY r.period_start) AS idx
          FROM sales_kpi_internal.resolve_series(cohort_win_rate.from_at, cohort_win_rate.to_at,
                                          cohort_win_rate.grain, cohort_win_rate.as_of) r
         -- checked before the series is made
         WHERE sales_kpi_internal.check_kpi_args(grain => cohort_win_rate.grain, horizon => cohort_win_rate.horizon)
    ), b AS (
        -- the series' periods are consecutive: their starts and the last end
        SELECT array_agg(s.period_start ORDER BY s.period_start) || max(s.period_end) AS bounds,
               sales_kpi_internal.outcome_dimension(cohort_win_rate.dimension) AS dim
          FROM s
    ), g AS (
        SELECT s.idx, sp.dimension_value AS value, @extschema@.rollup(sp.ages) AS sv,
               sum(sp.still_open) AS still_open
          FROM b
         CROSS JOIN sales_kpi_internal.state_partials(b.bounds, cohort_win_rate.as_of, b.dim) sp
          JOIN s ON s.period_start = sp.period_start
         GROUP BY 1, 2
    )
    SELECT b.dim, coalesce(g.value, 'all'), s.period_start, s.period_end,
           coalesce(@extschema@.survival_count(g.sv), 0),
           coalesce(round(@extschema@.naive_win_rate(g.sv, cohort_win_rate.horizon)
                          * @extschema@.survival_count(g.sv))::bigint, 0),
           coalesce(g.still_open, 0)::bigint,
           @extschema@.naive_win_rate(g.sv, cohort_win_rate.horizon),
           @extschema@.cumulative_win_rate(g.sv, cohort_win_rate.horizon)
      FROM b
     CROSS JOIN s
      LEFT JOIN g ON g.idx = s.idx
     WHERE g.value IS NOT NULL OR cohort_win_rate.dimension = 'company'
     ORDER BY 2, 3
$$;
COMMENT ON FUNCTION @extschema@.cohort_win_rate(timestamptz, timestamptz, text, text, timestamptz, interval) IS
    'Per creation cohort (week, month, quarter or year): deals, those won within the horizon of creation, the naive share and the Aalen-Johansen cumulative incidence of winning by the horizon (lost competing, open deals censored at as_of), as the history stood at as_of.';

CREATE VIEW @extschema@.cohort_win_rate WITH (security_invoker = true) AS SELECT * FROM @extschema@.cohort_win_rate();
COMMENT ON VIEW @extschema@.cohort_win_rate IS
    'Monthly creation cohorts of the last year: share won within 90 days, naive and Aalen-Johansen (cohort_win_rate() with its defaults).';

-------------------------------------------------------------------------------
-- Sales cycle
-------------------------------------------------------------------------------
-- Two populations:
-- * won deals closed in the period (closed_deals): days from created_at to
--   the win, count, mean, median, p75, p90 (duration_agg: count and mean
--   exact, percentiles within 1%);
-- * for the Kaplan-Meier median time to close: every deal created in the
--   lookback (default 365 days) before the reference instant least(period_end,
--   as_of), as it stood at that instant; a close is a win or a loss, deals
--   still open are censored at the reference instant (survival_agg).
CREATE FUNCTION @extschema@.sales_cycle(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                        dimension text DEFAULT 'company', as_of timestamptz DEFAULT now(),
                                        lookback interval DEFAULT '365 days')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               won bigint, mean_days double precision, median_days double precision,
               p75_days double precision, p90_days double precision,
               km_deals bigint, km_closed bigint, km_median_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end, least(r.period_end, sales_cycle.as_of) AS t_ref,
               sales_kpi_internal.outcome_dimension(sales_cycle.dimension) AS dim,
               CASE WHEN sales_kpi_internal.check_kpi_args(lookback => sales_cycle.lookback) THEN sales_cycle.lookback END
                   AS lookback
          FROM sales_kpi_internal.resolve_period(sales_cycle.period_start, sales_cycle.period_end, sales_cycle.as_of) r
    ), w AS (
        SELECT cp.dimension_value AS value, @extschema@.rollup(cp.won_cycles) AS ds
          FROM p
         CROSS JOIN sales_kpi_internal.closed_partials(ARRAY[p.period_start, p.period_end], sales_cycle.as_of, p.dim) cp
         WHERE cp.won_cycles IS NOT NULL
         GROUP BY 1
    ), k AS (
        SELECT sp.dimension_value AS value, @extschema@.rollup(sp.ages) AS sv,
               @extschema@.survival_count(@extschema@.rollup(sp.ages)) - sum(sp.still_open) AS closed
          FROM p
         CROSS JOIN sales_kpi_internal.state_partials(ARRAY[p.t_ref - p.lookback, p.t_ref], p.t_ref, p.dim) sp
         GROUP BY 1
    )
    SELECT p.dim, v.value, p.period_start, p.period_end,
           coalesce(@extschema@.duration_count(w.ds), 0),
           extract(epoch FROM @extschema@.mean(w.ds))::double precision / 86400,
           extract(epoch FROM @extschema@.median(w.ds))::double precision / 86400,
           extract(epoch FROM @extschema@.percentile(w.ds, 0.75))::double precision / 86400,
           extract(epoch FROM @extschema@.percentile(w.ds, 0.9))::double precision / 86400,
           coalesce(@extschema@.survival_count(k.sv), 0),
           coalesce(k.closed, 0)::bigint,
           extract(epoch FROM @extschema@.median_time_to_close(k.sv))::double precision / 86400
      FROM p
     CROSS JOIN (SELECT w.value FROM w
                 UNION
                 SELECT k.value FROM k
                 UNION
                 SELECT 'all' WHERE sales_cycle.dimension = 'company') v
      LEFT JOIN w ON w.value = v.value
      LEFT JOIN k ON k.value = v.value
     ORDER BY v.value
$$;
COMMENT ON FUNCTION @extschema@.sales_cycle(timestamptz, timestamptz, text, timestamptz, interval) IS
    'Days from creation to the win of the deals won in a period (count, mean, median, p75, p90), and the Kaplan-Meier median days to close (won or lost) of the deals created in the lookback before the period end, open deals censored.';

CREATE VIEW @extschema@.sales_cycle WITH (security_invoker = true) AS SELECT * FROM @extschema@.sales_cycle();
COMMENT ON VIEW @extschema@.sales_cycle IS
    'Sales cycle of the deals won in the current fiscal quarter, and the Kaplan-Meier median time to close over the trailing year (sales_cycle() with its defaults).';

-------------------------------------------------------------------------------
-- Deal size
-------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.deal_size(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                      dimension text DEFAULT 'company', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               won bigint, won_amount numeric, avg_amount numeric, accounts bigint, arpa numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end, sales_kpi_internal.outcome_dimension(deal_size.dimension) AS dim
          FROM sales_kpi_internal.resolve_period(deal_size.period_start, deal_size.period_end, deal_size.as_of) r
    ), g AS (
        -- distinct accounts do not add up across periods: the period's sums
        SELECT ws.dimension_value AS value, ws.outcomes AS w, ws.accounts, ws.account_amount
          FROM p
         CROSS JOIN sales_kpi_internal.won_deal_summary(p.period_start, p.period_end, deal_size.as_of, p.dim) ws
    )
    SELECT p.dim, v.value, p.period_start, p.period_end,
           coalesce(@extschema@.won_count(g.w), 0),
           coalesce(@extschema@.won_amount(g.w), 0),
           @extschema@.avg_won_amount(g.w),
           coalesce(g.accounts, 0),
           g.account_amount / nullif(g.accounts, 0)
      FROM p
     CROSS JOIN (SELECT g.value FROM g
                 UNION
                 SELECT 'all' WHERE deal_size.dimension = 'company') v
      LEFT JOIN g ON g.value = v.value
     ORDER BY v.value
$$;
COMMENT ON FUNCTION @extschema@.deal_size(timestamptz, timestamptz, text, timestamptz) IS
    'Deals won in a period: count, won amount, mean deal amount and ARPA (won amount per distinct account), in the base currency at the close-date rate.';

CREATE VIEW @extschema@.deal_size WITH (security_invoker = true) AS SELECT * FROM @extschema@.deal_size();
COMMENT ON VIEW @extschema@.deal_size IS
    'Average won deal size and ARPA of the current fiscal quarter (deal_size() with its defaults).';

-------------------------------------------------------------------------------
-- Quota attainment
-------------------------------------------------------------------------------
-- Quotas are set per rep, so the dimension is rep (default), team or
-- company; any other is refused with 22023.  A rep's bookings are the won
-- amounts credited to the owner at the win; deals without an owner then
-- are credited to nobody.  A rep without quota (or with a zero quota) in
-- the period has NULL attainment and is left out of the share at quota
-- and of the team's attainment (its bookings still show in bookings).
-- Internal: the dimension of a KPI that exists per rep only (quota
-- attainment, forecast accuracy): rep, team or company.
CREATE FUNCTION sales_kpi_internal.rep_dimension(dimension text, reason text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF dimension IS NULL THEN
        RAISE EXCEPTION 'argument "dimension" must not be null'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Use ''company'' for no breakdown.';
    END IF;
    IF dimension NOT IN ('rep', 'team', 'company') THEN
        RAISE EXCEPTION 'argument "dimension" must be rep, team or company, got "%"', dimension
            USING ERRCODE = 'invalid_parameter_value', HINT = reason;
    END IF;
    RETURN dimension;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.rep_dimension(text, text) IS
    'Internal: checks the dimension of a KPI that exists per rep only (quotas, forecast commits): rep, team or company; 22023 otherwise, with the reason as hint.';

CREATE FUNCTION @extschema@.quota_attainment(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                             dimension text DEFAULT 'rep', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               reps bigint, reps_with_quota bigint, bookings numeric, quota numeric,
               attainment double precision, reps_at_quota bigint, at_quota_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end,
               sales_kpi_internal.rep_dimension(quota_attainment.dimension,
                                          'Quotas are set per rep, so attainment breaks down by rep or team only.') AS dim
          FROM sales_kpi_internal.resolve_period(quota_attainment.period_start, quota_attainment.period_end,
                                          quota_attainment.as_of) r
    ), b AS (
        -- the won deals' partials per owner at the close (bookings)
        SELECT cp.dimension_key::bigint AS rep_id, @extschema@.won_amount(@extschema@.rollup(cp.outcomes)) AS bookings
          FROM p
         CROSS JOIN sales_kpi_internal.closed_partials(ARRAY[p.period_start, p.period_end], quota_attainment.as_of,
                                                       'rep', with_cycles => false, won_only => true) cp
         WHERE cp.dimension_key IS NOT NULL
         GROUP BY cp.dimension_key
    ), q AS (
        SELECT qp.rep_id, qp.quota
          FROM p CROSS JOIN @extschema@.quota_in_period(p.period_start, p.period_end) qp
    ), per_rep AS (
        SELECT r.rep_id,
               CASE quota_attainment.dimension WHEN 'rep' THEN r.name
                                               WHEN 'team' THEN coalesce(r.team, '(none)')
                                               ELSE 'all' END AS value,
               coalesce(b.bookings, 0) AS bookings,
               q.quota,
               q.quota > 0 AS has_quota
          FROM b
          FULL JOIN q ON q.rep_id = b.rep_id
          JOIN @extschema@.rep r ON r.rep_id = coalesce(b.rep_id, q.rep_id)
    ), g AS (
        SELECT pr.value,
               count(*) AS reps,
               count(*) FILTER (WHERE pr.has_quota) AS reps_with_quota,
               sum(pr.bookings) AS bookings,
               sum(pr.quota) AS quota,
               sum(pr.bookings) FILTER (WHERE pr.has_quota) AS quota_bookings,
               sum(pr.quota) FILTER (WHERE pr.has_quota) AS positive_quota,
               count(*) FILTER (WHERE pr.has_quota AND pr.bookings >= pr.quota) AS reps_at_quota
          FROM per_rep pr
         GROUP BY pr.value, CASE WHEN quota_attainment.dimension = 'rep' THEN pr.rep_id END
    ), g1 AS (
        SELECT g.value, g.reps, g.reps_with_quota, g.bookings, g.quota, g.quota_bookings,
               g.positive_quota, g.reps_at_quota
          FROM g
        UNION ALL
        -- the company row also when no rep has a quota or a booking
        SELECT 'all', 0::bigint, 0::bigint, 0::numeric, NULL::numeric, NULL::numeric, NULL::numeric, 0::bigint
         WHERE quota_attainment.dimension = 'company' AND NOT EXISTS (SELECT FROM g)
    )
    SELECT p.dim, g1.value, p.period_start, p.period_end,
           g1.reps, g1.reps_with_quota, g1.bookings, g1.quota,
           (g1.quota_bookings / g1.positive_quota)::double precision,
           g1.reps_at_quota,
           g1.reps_at_quota::double precision / nullif(g1.reps_with_quota, 0)
      FROM p CROSS JOIN g1
     ORDER BY 2
$$;
COMMENT ON FUNCTION @extschema@.quota_attainment(timestamptz, timestamptz, text, timestamptz) IS
    'Bookings (won amounts credited to the owner at the win) against quota per rep, team or the company: attainment = bookings / quota (NULL without quota) and the share of reps with a quota at or above 100%.';

CREATE VIEW @extschema@.quota_attainment WITH (security_invoker = true) AS SELECT * FROM @extschema@.quota_attainment();
COMMENT ON VIEW @extschema@.quota_attainment IS
    'Quota attainment per rep in the current fiscal quarter (quota_attainment() with its defaults).';

-------------------------------------------------------------------------------
-- win_rate_by_rep (kept for compatibility with release 0.1.0)
-------------------------------------------------------------------------------
-- The rep breakdown of win rate over all time, as of now, with the columns of
-- 0.1.0: every rep is listed; deals are credited to the owner at the close
-- (0.1.0 credited the current owner).
CREATE VIEW @extschema@.win_rate_by_rep WITH (security_invoker = true) AS
WITH per_owner AS (
    SELECT cd.owner_id, cd.won, cd.lost, cd.won_amount
      FROM sales_kpi_internal.closed_by_owner('-infinity', 'infinity', pg_catalog.now()) cd
)
SELECT r.rep_id,
       r.name AS rep,
       r.team,
       coalesce(d.won, 0) AS won,
       coalesce(d.lost, 0) AS lost,
       d.won::double precision OPERATOR(pg_catalog./) nullif(d.won OPERATOR(pg_catalog.+) d.lost, 0) AS win_rate,
       coalesce(d.won_amount, 0) AS won_amount
  FROM @extschema@.rep r
  LEFT JOIN per_owner d ON d.owner_id OPERATOR(pg_catalog.=) r.rep_id
 ORDER BY r.rep_id;
COMMENT ON VIEW @extschema@.win_rate_by_rep IS
    'Per rep, deals closed so far credited to the owner at the close: won, lost, win rate = won / (won + lost) (null with no closed deal), and won amount in the base currency at the close-date rate.';
