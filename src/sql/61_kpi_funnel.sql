-- Funnel KPIs (kpis.md section 1) and conversion alerts (section 6):
-- stage_conversion, funnel_rates, pipeline_creation, loss_stage and
-- conversion_alerts, each a function with a view of the same name.
--
-- Conventions shared by these functions:
-- * An open stage's "rank" is its place among the open stages of its
--   pipeline (1..n), so positions with gaps (1, 2, 5) still make a funnel
--   of consecutive steps; outputs show the stage's own position too.
-- * History is read as it stood at as_of: only stage events with
--   entered_at <= as_of count, in entered_at order (ties by stage_event_id),
--   whatever order they were inserted in.
-- * A deal "reached" rank k when its highest open rank entered is >= k (a
--   skipped stage counts as passed), or when it entered a won stage (a won
--   deal passed every open stage, even if it was reopened later).

-- Open stages ranked within their pipeline; terminal stages get a NULL rank.
-- ROWS: a function scan is otherwise estimated at 1,000 rows, which turned
-- a join with every stage event into a merge join in stage order.
CREATE FUNCTION sales_kpi_internal.funnel_stage_ranks()
RETURNS TABLE (stage_id bigint, pipeline_id bigint, name text, "position" integer, kind text,
               rank integer, open_stages integer)
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 30
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.stage_id, s.pipeline_id, s.name, s.position, s.kind,
           CASE WHEN s.kind = 'open'
                THEN (row_number() OVER (PARTITION BY s.pipeline_id, s.kind = 'open' ORDER BY s.position))::integer
           END,
           (count(*) FILTER (WHERE s.kind = 'open') OVER (PARTITION BY s.pipeline_id))::integer
      FROM @extschema@.stage s
$$;
COMMENT ON FUNCTION sales_kpi_internal.funnel_stage_ranks() IS
    'Internal: every stage with its rank among the open stages of its pipeline (1..n, NULL for won and lost) and the number of open stages.';

-- Argument checks of the funnel KPI functions: check_kpi_args() for as_of,
-- dimension and grain, then the funnel's own options (each function passes
-- only the ones it has).  An unknown dimension is refused even when no row
-- would reach dimension_value().
CREATE FUNCTION sales_kpi_internal.funnel_check_args(as_of timestamptz, dimension text, variant text DEFAULT 'all',
                                              grain text DEFAULT 'week', weeks integer DEFAULT 1,
                                              horizon interval DEFAULT '1 day')
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(as_of, dimension, grain);
    IF variant IS NULL OR variant NOT IN ('all', 'decided', 'strict') THEN
        RAISE EXCEPTION 'argument "variant" must be all, decided or strict, got "%"', variant
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF weeks IS NULL OR weeks < 1 THEN
        RAISE EXCEPTION 'argument "weeks" must be at least 1, got "%"', weeks
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon IS NULL OR horizon <= interval '0' THEN
        RAISE EXCEPTION 'argument "horizon" must be a positive interval, got "%"', horizon
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.funnel_check_args(timestamptz, text, text, text, integer, interval) IS
    'Internal: argument checks of the funnel KPI functions (as_of, dimension, variant, grain, weeks, horizon).';


-- ---------------------------------------------------------------------------
-- stage_conversion
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.stage_conversion(period_start timestamptz DEFAULT NULL,
                                             period_end timestamptz DEFAULT NULL,
                                             dimension text DEFAULT 'company',
                                             as_of timestamptz DEFAULT now(),
                                             variant text DEFAULT 'all')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, "position" integer, step integer,
               reached bigint, advanced bigint, open_deals bigint, won bigint,
               conversion_rate double precision, cumulative_rate double precision,
               win_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiling these plans takes longer (about 0.9 s) than running them, and
-- their sorts and hashes of a period's deals or events fit in 64 MB
SET jit = off
SET work_mem = '64MB'
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(stage_conversion.as_of, stage_conversion.dimension, stage_conversion.variant);

    WITH per AS MATERIALIZED (
        SELECT * FROM sales_kpi_internal.resolve_period(stage_conversion.period_start, stage_conversion.period_end,
                                                 stage_conversion.as_of)
    ), parts AS MATERIALIZED (
        SELECT fp.dimension_value AS value, fp.pipeline_id, fp.reached, fp.reached_open, fp.reached_won
          FROM per,
               sales_kpi_internal.funnel_partials(ARRAY[per.period_start, per.period_end], stage_conversion.as_of,
                                           stage_conversion.dimension, stage_conversion.variant = 'strict') fp
    ), agg AS (
        SELECT parts.value, parts.pipeline_id,
               @extschema@.rollup(parts.reached) AS f_all,
               @extschema@.rollup(parts.reached_open) AS f_open,
               @extschema@.rollup(parts.reached_won) AS f_won
          FROM parts
         GROUP BY parts.value, parts.pipeline_id
        UNION ALL
        -- by company or pipeline, pipelines without deals still show their stages, with zeros
        SELECT CASE WHEN stage_conversion.dimension = 'company' THEN 'all' ELSE pl.name END,
               pl.pipeline_id, NULL, NULL, NULL
          FROM @extschema@.pipeline pl
         WHERE stage_conversion.dimension IN ('company', 'pipeline')
           AND NOT EXISTS (SELECT 1 FROM parts WHERE parts.pipeline_id = pl.pipeline_id)
    ), counts AS (
        SELECT agg.value, pl.pipeline_id, pl.name AS pipeline_name, s.stage_id, s.name AS stage_name,
               s.position AS stage_position, s.rank, s.open_stages,
               coalesce(@extschema@.reached(agg.f_all, s.rank), 0) AS reached_k,
               CASE WHEN s.rank < s.open_stages THEN coalesce(@extschema@.reached(agg.f_all, s.rank + 1), 0) END
                   AS reached_next,
               coalesce(@extschema@.reached(agg.f_all, 1), 0) AS reached_first,
               coalesce(@extschema@.reached(agg.f_open, s.rank), 0) AS open_reached_k,
               coalesce(@extschema@.reached(agg.f_open, s.rank)
                        - CASE WHEN s.rank < 64 THEN @extschema@.reached(agg.f_open, s.rank + 1) ELSE 0 END, 0)
                   AS open_top_k,
               coalesce(@extschema@.reached(agg.f_open, 1), 0) AS open_first,
               coalesce(@extschema@.reached(agg.f_won, s.rank), 0) AS won_k
          FROM agg
          JOIN @extschema@.pipeline pl ON pl.pipeline_id = agg.pipeline_id
          JOIN sales_kpi_internal.funnel_stage_ranks() s ON s.pipeline_id = agg.pipeline_id AND s.rank IS NOT NULL
    )
    SELECT stage_conversion.dimension, c.value, per.period_start, per.period_end,
           c.pipeline_id, c.pipeline_name, c.stage_id, c.stage_name, c.stage_position, c.rank,
           c.reached_k, c.reached_next, c.open_top_k, c.won_k,
           -- next step; decided leaves out the deals still open with k as their highest stage
           c.reached_next::float8
               / nullif(c.reached_k - CASE WHEN stage_conversion.variant = 'decided' THEN c.open_top_k ELSE 0 END, 0),
           -- first stage to k; decided leaves out the open deals that have not reached k yet
           c.reached_k::float8
               / nullif(c.reached_first - CASE WHEN stage_conversion.variant = 'decided'
                                               THEN c.open_first - c.open_reached_k ELSE 0 END, 0),
           -- stage to win; decided counts only the closed deals that reached k
           c.won_k::float8
               / nullif(c.reached_k - CASE WHEN stage_conversion.variant = 'decided' THEN c.open_reached_k ELSE 0 END, 0)
      FROM counts c, per
     ORDER BY c.value, c.pipeline_name, c.rank;
$fn$;
COMMENT ON FUNCTION @extschema@.stage_conversion(timestamptz, timestamptz, text, timestamptz, text) IS
    'Stage conversion of the deals created in the period, per pipeline and open stage: how many reached each stage (skips count as passed, won deals passed all), next-step and cumulative conversion and stage-to-win rate; variants all, decided (open deals that could still move are left out of each denominator) and strict (in-order entries only).';

CREATE VIEW @extschema@.stage_conversion WITH (security_invoker = true) AS SELECT * FROM @extschema@.stage_conversion();
COMMENT ON VIEW @extschema@.stage_conversion IS
    'Stage conversion of the deals created this fiscal quarter, per pipeline and open stage, whole company, as of now.';


-- ---------------------------------------------------------------------------
-- funnel_rates
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.funnel_rates(period_start timestamptz DEFAULT NULL,
                                         period_end timestamptz DEFAULT NULL,
                                         dimension text DEFAULT 'company',
                                         as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               leads bigint, converted_leads bigint, lead_to_opp_rate double precision,
               qualified_leads bigint, lead_to_qop_rate double precision,
               opps bigint, qualified_opps bigint, opp_to_qop_rate double precision,
               qops_won bigint, qops_lost bigint, qop_win_rate double precision,
               qop_win_rate_lower double precision, qop_win_rate_upper double precision,
               deals_won bigint, qops_per_win double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(funnel_rates.as_of, funnel_rates.dimension);

    WITH per AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe,
               -- leads have a source, an SDR and an account, but no pipeline, competitor or deal kind
               funnel_rates.dimension IN ('company', 'rep', 'team', 'source', 'industry', 'segment', 'region')
                   AS lead_dims
          FROM sales_kpi_internal.resolve_period(funnel_rates.period_start, funnel_rates.period_end, funnel_rates.as_of) r
    ), grouped AS MATERIALIZED (
        SELECT qp.dimension_value AS value,
               sum(qp.leads) AS leads, sum(qp.converted_leads) AS converted, sum(qp.qualified_leads) AS qualified_leads,
               sum(qp.opps) AS opps, sum(qp.qualified_opps) AS qualified_opps,
               @extschema@.rollup(qp.qops) AS w, sum(qp.deals_won) AS won
          FROM per, sales_kpi_internal.qualification_partials(ARRAY[per.ps, per.pe], funnel_rates.as_of,
                                                              funnel_rates.dimension) qp
         GROUP BY qp.dimension_value
    ), agg AS (
        SELECT * FROM grouped
        UNION ALL
        SELECT 'all', 0, 0, 0, 0, 0, NULL, 0
         WHERE funnel_rates.dimension = 'company' AND NOT EXISTS (SELECT 1 FROM grouped)
    )
    SELECT funnel_rates.dimension, g.value, per.ps, per.pe,
           CASE WHEN per.lead_dims THEN g.leads::bigint END,
           CASE WHEN per.lead_dims THEN g.converted::bigint END,
           CASE WHEN per.lead_dims THEN g.converted::float8 / nullif(g.leads, 0) END,
           CASE WHEN per.lead_dims THEN g.qualified_leads::bigint END,
           CASE WHEN per.lead_dims THEN g.qualified_leads::float8 / nullif(g.leads, 0) END,
           g.opps::bigint, g.qualified_opps::bigint, g.qualified_opps::float8 / nullif(g.opps, 0),
           coalesce(@extschema@.won_count(g.w), 0), coalesce(@extschema@.lost_count(g.w), 0),
           @extschema@.win_rate(g.w), @extschema@.wilson_lower(g.w), @extschema@.wilson_upper(g.w),
           g.won::bigint,
           (coalesce(@extschema@.won_count(g.w), 0) + coalesce(@extschema@.lost_count(g.w), 0))::float8
               / nullif(g.won, 0)
      FROM agg g, per
     ORDER BY g.value;
$fn$;
COMMENT ON FUNCTION @extschema@.funnel_rates(timestamptz, timestamptz, text, timestamptz) IS
    'Lead to opportunity, opportunity to qualified opportunity (Qop) and lead to Qop rates of the leads and deals created in the period, the win rate of the Qops closed in it with a Wilson interval, and Qops closed per deal won.';

CREATE VIEW @extschema@.funnel_rates WITH (security_invoker = true) AS SELECT * FROM @extschema@.funnel_rates();
COMMENT ON VIEW @extschema@.funnel_rates IS
    'Lead to Opp, Opp to Qop, Lead to Qop, Qop win rate and Qops per win for this fiscal quarter, whole company, as of now.';


-- ---------------------------------------------------------------------------
-- pipeline_creation
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.pipeline_creation(from_at timestamptz DEFAULT NULL,
                                              to_at timestamptz DEFAULT NULL,
                                              grain text DEFAULT 'week',
                                              dimension text DEFAULT 'company',
                                              as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opps bigint, amount numeric, two_stage_opps bigint, reached_second bigint,
               stage_one_to_two_rate double precision,
               stage_one_to_two_lower double precision, stage_one_to_two_upper double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(pipeline_creation.as_of, pipeline_creation.dimension,
                                         grain => pipeline_creation.grain);

    WITH per AS MATERIALIZED (
        SELECT r.period_start AS p_start, r.period_end AS p_end
          FROM sales_kpi_internal.resolve_series(from_at, to_at, grain, as_of) r
    ), b AS (
        -- the series' periods are consecutive: their starts and the last end
        SELECT array_agg(per.p_start ORDER BY per.p_start) || max(per.p_end) AS bounds FROM per
    ), agg AS (
        SELECT cp.dimension_value AS value, cp.period_start AS p_start, sum(cp.opps) AS n,
               sum(cp.amount) AS amt, @extschema@.rollup(cp.reached_second) AS w
          FROM b, sales_kpi_internal.creation_partials(b.bounds, pipeline_creation.as_of, pipeline_creation.dimension) cp
         GROUP BY 1, 2
    ), vals AS (
        SELECT DISTINCT agg.value FROM agg
        UNION
        SELECT 'all' WHERE pipeline_creation.dimension = 'company'
    )
    SELECT pipeline_creation.dimension, v.value, per.p_start, per.p_end,
           coalesce(a.n, 0)::bigint, coalesce(a.amt, 0),
           coalesce(@extschema@.won_count(a.w) + @extschema@.lost_count(a.w), 0),
           coalesce(@extschema@.won_count(a.w), 0),
           @extschema@.win_rate(a.w), @extschema@.wilson_lower(a.w), @extschema@.wilson_upper(a.w)
      FROM vals v
     CROSS JOIN per
      LEFT JOIN agg a ON a.value = v.value AND a.p_start = per.p_start
     ORDER BY v.value, per.p_start;
$fn$;
COMMENT ON FUNCTION @extschema@.pipeline_creation(timestamptz, timestamptz, text, text, timestamptz) IS
    'New opportunities per period (count and amount as created, at the creation-date rate) and, for that creation cohort, the share that reached the second open stage by as_of (stage 1 to 2 conversion) with a Wilson interval.';

CREATE VIEW @extschema@.pipeline_creation WITH (security_invoker = true) AS SELECT * FROM @extschema@.pipeline_creation();
COMMENT ON VIEW @extschema@.pipeline_creation IS
    'New opportunities per week over the last year and stage 1 to 2 conversion of each weekly creation cohort, whole company, as of now.';


-- ---------------------------------------------------------------------------
-- loss_stage
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.loss_stage(period_start timestamptz DEFAULT NULL,
                                       period_end timestamptz DEFAULT NULL,
                                       dimension text DEFAULT 'company',
                                       as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, "position" integer, breakdown text,
               lost_reason text, competitor text,
               deals bigint, amount numeric, share_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiling these plans takes longer (about 0.9 s) than running them, and
-- their sorts and hashes of a period's deals or events fit in 64 MB
SET jit = off
SET work_mem = '64MB'
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(loss_stage.as_of, loss_stage.dimension);

    WITH per AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe
          FROM sales_kpi_internal.resolve_period(loss_stage.period_start, loss_stage.period_end, loss_stage.as_of) r
    ), lp AS (
        -- the losses per breakdown value, pipeline, stage, reason and rival
        SELECT lp.dimension_value AS value, lp.pipeline_id, lp.stage_id, lp.lost_reason AS reason,
               lp.competitor AS rival, lp.deals, lp.amount
          FROM per, sales_kpi_internal.loss_partials(ARRAY[per.ps, per.pe], loss_stage.as_of, loss_stage.dimension) lp
    ), g AS (
        -- per pipeline and stage (names joined to the groups below)
        SELECT x.value, x.pipeline_id, x.stage_id,
               CASE WHEN GROUPING(x.reason) = 0 THEN 'lost_reason'
                    WHEN GROUPING(x.rival) = 0 THEN 'competitor' ELSE 'stage' END AS breakdown,
               CASE WHEN GROUPING(x.reason) = 0 THEN x.reason END AS reason,
               CASE WHEN GROUPING(x.rival) = 0 THEN x.rival END AS rival,
               sum(x.deals)::bigint AS n, sum(x.amount) AS amt
          FROM lp x
         GROUP BY GROUPING SETS ((x.value, x.pipeline_id, x.stage_id),
                                 (x.value, x.pipeline_id, x.stage_id, x.reason),
                                 (x.value, x.pipeline_id, x.stage_id, x.rival))
    )
    SELECT loss_stage.dimension, g.value, per.ps, per.pe, g.pipeline_id, pl.name, g.stage_id,
           ls.name, ls.position,
           g.breakdown, g.reason, g.rival, g.n, g.amt,
           g.n::float8 / sum(g.n) FILTER (WHERE g.breakdown = 'stage')
                              OVER (PARTITION BY g.value, g.pipeline_id)
      FROM g
     CROSS JOIN per
      JOIN @extschema@.pipeline pl ON pl.pipeline_id = g.pipeline_id
      LEFT JOIN @extschema@.stage ls ON ls.stage_id = g.stage_id
     ORDER BY g.value, pl.name, ls.position NULLS FIRST, g.breakdown DESC, g.reason, g.rival;
$fn$;
COMMENT ON FUNCTION @extschema@.loss_stage(timestamptz, timestamptz, text, timestamptz) IS
    'Deals lost in the period, by the last open stage they were in before the loss: counts, amounts (close-date rate) and share of the pipeline''s losses, with breakdown rows by lost_reason and by competitor.';

CREATE VIEW @extschema@.loss_stage WITH (security_invoker = true) AS SELECT * FROM @extschema@.loss_stage();
COMMENT ON VIEW @extschema@.loss_stage IS
    'Deals lost this fiscal quarter by the stage they were lost from, with lost_reason and competitor breakdowns, whole company, as of now.';


-- ---------------------------------------------------------------------------
-- conversion_alerts
-- ---------------------------------------------------------------------------
-- Cohort: the entries into open stage k (rank k) in a week of the reporting
-- time zone (a deal that enters k twice in a week counts twice); converted:
-- the deal entered a later open stage or a won stage within horizon of that
-- entry.  Only weeks whose horizon has
-- passed by as_of are complete; the latest complete week is compared with
-- the pooled rate p of the weeks trailing it: p +- 3 sqrt(p (1 - p) / n).
CREATE FUNCTION @extschema@.conversion_alerts(as_of timestamptz DEFAULT now(),
                                              dimension text DEFAULT 'company',
                                              weeks integer DEFAULT 12,
                                              horizon interval DEFAULT '30 days')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, "position" integer, next_stage text,
               entered bigint, converted bigint, conversion_rate double precision,
               baseline_entered bigint, baseline_rate double precision,
               control_lower double precision, control_upper double precision, alert text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiling these plans takes longer (about 0.9 s) than running them, and
-- their sorts and hashes of a period's deals or events fit in 64 MB
SET jit = off
SET work_mem = '64MB'
-- weeks of stage events: a bitmap scan of the time range beats an index scan
SET enable_indexscan = off
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(conversion_alerts.as_of, conversion_alerts.dimension,
                                         weeks => conversion_alerts.weeks, horizon => conversion_alerts.horizon);

    WITH tz AS MATERIALIZED (
        SELECT @extschema@.reporting_timezone() AS tz,
               -- local end of the latest week whose horizon has passed by as_of
               date_trunc('week', (conversion_alerts.as_of - conversion_alerts.horizon)
                                  AT TIME ZONE @extschema@.reporting_timezone()) AS latest_end_local
    ), b AS MATERIALIZED (
        SELECT tz.tz,
               (tz.latest_end_local - interval '7 days') AT TIME ZONE tz.tz AS latest_start,
               tz.latest_end_local AT TIME ZONE tz.tz AS latest_end,
               (tz.latest_end_local - (conversion_alerts.weeks + 1) * interval '7 days') AT TIME ZONE tz.tz
                   AS trail_start,
               (tz.latest_end_local AT TIME ZONE tz.tz) + conversion_alerts.horizon AS window_end
          FROM tz
    ), st AS (
        SELECT * FROM sales_kpi_internal.funnel_stage_ranks()
    ), codes AS MATERIALIZED (
        -- each stage's rank and its order for "later": won above every open stage, lost below all
        SELECT st.stage_id, st.rank,
               CASE st.kind WHEN 'open' THEN st.rank WHEN 'won' THEN st.open_stages + 1 ELSE 0 END AS code
          FROM st
    ), ev AS (
        SELECT e.opportunity_id, e.entered_at, e.stage_id, c.rank, c.code
          FROM b
          JOIN @extschema@.stage_event e ON e.entered_at >= b.trail_start AND e.entered_at < b.window_end
          JOIN codes c ON c.stage_id = e.stage_id
    ), entries AS NOT MATERIALIZED (
        -- every entry into an open stage in the trailing or latest weeks, and
        -- whether the deal entered a later open stage or won within horizon.
        -- Not stored: the company breakdown counts the entries as they come
        -- (the deals' breakdown, which reads them once more, is not needed then)
        SELECT a.opportunity_id, a.stage_id, a.entered_at >= b.latest_start AS is_latest,
               a.best_within > a.rank AS conv
          FROM (SELECT ev.*,
                       max(ev.code) OVER (PARTITION BY ev.opportunity_id ORDER BY ev.entered_at
                                          RANGE BETWEEN CURRENT ROW AND conversion_alerts.horizon FOLLOWING)
                           AS best_within
                  FROM ev) a, b
         WHERE a.rank IS NOT NULL AND a.entered_at < b.latest_end
    ), bd AS (
        -- the rep credited is the owner at as_of
        SELECT bd.opportunity_id, bd.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN conversion_alerts.dimension = 'company' THEN '{}'
                        ELSE ARRAY(SELECT DISTINCT en.opportunity_id FROM entries en) END,
                   conversion_alerts.as_of, conversion_alerts.dimension) bd
    ), dv AS (
        SELECT 'all' AS value, en.stage_id, en.is_latest, en.conv
          FROM entries en
         WHERE conversion_alerts.dimension = 'company'
        UNION ALL
        SELECT bd.dimension_value, en.stage_id, en.is_latest, en.conv
          FROM entries en
          JOIN bd ON bd.opportunity_id = en.opportunity_id
         WHERE conversion_alerts.dimension <> 'company'
    ), agg AS (
        -- per stage first, named after: a few dozen groups
        SELECT dv.value, dv.stage_id,
               count(*) FILTER (WHERE dv.is_latest) AS n,
               count(*) FILTER (WHERE dv.is_latest AND dv.conv) AS x,
               count(*) FILTER (WHERE NOT dv.is_latest) AS bn,
               count(*) FILTER (WHERE NOT dv.is_latest AND dv.conv) AS bx
          FROM dv
         GROUP BY 1, 2
    ), lim AS (
        SELECT agg.*, agg.x::float8 / nullif(agg.n, 0) AS p,
               agg.bx::float8 / nullif(agg.bn, 0) AS pbar
          FROM agg
    ), bands AS (
        SELECT lim.*,
               greatest(0, lim.pbar - 3 * sqrt(lim.pbar * (1 - lim.pbar) / nullif(lim.n, 0))) AS lcl,
               least(1, lim.pbar + 3 * sqrt(lim.pbar * (1 - lim.pbar) / nullif(lim.n, 0))) AS ucl
          FROM lim
    )
    SELECT conversion_alerts.dimension, x.value, b.latest_start, b.latest_end,
           pl.pipeline_id, pl.name, s.stage_id, s.name, s.position, coalesce(nx.name, 'won'),
           x.n, x.x, x.p, x.bn, x.pbar, x.lcl, x.ucl,
           CASE WHEN x.p > x.ucl THEN 'above' WHEN x.p < x.lcl THEN 'below' END
      FROM bands x
     CROSS JOIN b
      JOIN st s ON s.stage_id = x.stage_id
      JOIN @extschema@.pipeline pl ON pl.pipeline_id = s.pipeline_id
      LEFT JOIN st nx ON nx.pipeline_id = s.pipeline_id AND nx.rank = s.rank + 1
     ORDER BY x.value, pl.name, s.rank;
$fn$;
COMMENT ON FUNCTION @extschema@.conversion_alerts(timestamptz, text, integer, interval) IS
    'Per pipeline and stage step: conversion of the deals that entered the stage in the latest week whose horizon has passed, against p-chart control limits from the trailing weeks; alert above or below when outside them.';

CREATE VIEW @extschema@.conversion_alerts WITH (security_invoker = true) AS SELECT * FROM @extschema@.conversion_alerts();
COMMENT ON VIEW @extschema@.conversion_alerts IS
    'Stage conversion of the latest complete weekly cohort against control limits from the 12 weeks before it, whole company, as of now.';
