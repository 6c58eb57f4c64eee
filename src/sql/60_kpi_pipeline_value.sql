-- Pipeline value and forecast KPIs (kpis.md sections 1 and 3): stage
-- pipeline value, deal probabilities under three weightings, weighted
-- pipeline value, pipeline coverage, quota pace and the forecast.
--
-- Every one of them starts from the deals open at as_of, from the engine's
-- open-deal pass (open_deal_rows(), the deals pipeline_as_of(as_of) holds
-- open): stage, amount, expected close, forecast category and owner as
-- the histories stood then, the amount converted to the base currency at
-- the rate of the as_of date (in the reporting time zone); a period's
-- KPIs take only the deals expected to close in the period.  Breakdowns
-- credit open deals to their owner at as_of and bookings to the owner at
-- the close (the closed-deal partials).
--
-- Probability of an open deal, three weightings:
--   stage       stage.probability of the deal's current stage;
--   milestone   p_k + (p_next - p_k) * done / required, where done counts
--               the required milestones of the current stage completed by
--               as_of and p_next is the probability of the next open stage
--               by position (gaps in positions are skipped), or of the
--               pipeline's won stage (1) for the last open stage; a stage
--               with no required milestone keeps p_k;
--   historical  among the deals closed in [as_of - lookback, as_of) that
--               stayed in the deal's current stage at least as many whole
--               days as the deal has now (their longest stay there), the
--               share that were won; with fewer than min_sample such deals
--               the stage probability is used instead.  Above 50,000 deal
--               ids, the sample is every k-th deal id, k = ceil(max id / 50000).

-- Argument checks shared by the functions below.
CREATE FUNCTION sales_kpi_internal.pipeline_value_check_args(as_of timestamptz, dimension text,
                                                      weighting text DEFAULT 'stage',
                                                      lookback interval DEFAULT '0 days',
                                                      min_sample integer DEFAULT 1)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    -- as_of, dimension and lookback as every KPI checks them
    PERFORM sales_kpi_internal.check_kpi_args(as_of, dimension, lookback => lookback);
    IF weighting IS NULL OR weighting NOT IN ('stage', 'milestone', 'historical') THEN
        RAISE EXCEPTION 'argument "weighting" must be stage, milestone or historical, got "%"', weighting
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_sample IS NULL OR min_sample < 1 THEN
        RAISE EXCEPTION 'argument "min_sample" must be at least 1, got "%"', min_sample
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_value_check_args(timestamptz, text, text, interval, integer) IS
    'Internal: validates the arguments of the pipeline value and forecast functions.';

-- The deals open at as_of with their probability under each weighting.
-- The milestone and historical parts are computed only when asked for
-- (their CTEs are gated by with_milestone / with_historical); otherwise
-- their columns are null.  With close_from or close_to, only the deals
-- expected to close in [close_from, close_to) (open_deal_rows()): a
-- period's forecast weighs those alone.
CREATE FUNCTION sales_kpi_internal.pipeline_value_open_deals(as_of timestamptz, lookback interval, min_sample integer,
                                                      with_milestone boolean, with_historical boolean,
                                                      sample_ids bigint DEFAULT 50000,
                                                      dimension text DEFAULT 'company',
                                                      close_from timestamptz DEFAULT NULL,
                                                      close_to timestamptz DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, stage_id bigint, owner_id bigint,
               amount numeric, expected_close date, forecast_category text,
               time_in_stage_days double precision, stage_probability numeric,
               milestones_done integer, milestones_required integer, milestone_probability numeric,
               historical_deals bigint, historical_won bigint, historical_probability numeric,
               dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    -- the won and the open stages, as constants for the per-deal probes
    won_stages bigint[] := ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'won');
    open_stages bigint[] := ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'open');
BEGIN
    -- the stage weighting alone is the open-deal pass itself
    IF NOT with_milestone AND NOT with_historical THEN
        RETURN QUERY
        SELECT od.opportunity_id, od.pipeline_id, od.stage_id, od.owner_id, od.amount, od.expected_close,
               od.forecast_category, date_part('epoch', as_of - od.entered_stage_at) / 86400,
               od.stage_probability, NULL::integer, NULL::integer, NULL::numeric, NULL::bigint, NULL::bigint,
               NULL::numeric, od.dimension_key, od.dimension_value
          FROM sales_kpi_internal.open_deal_rows(as_of, dimension, close_from, close_to) od;
        RETURN;
    END IF;
    -- plpgsql with custom plans: the query is planned with the actual
    -- as_of and flags, so the parts not asked for are planned away
    RETURN QUERY
    WITH open_deal AS MATERIALIZED (
        -- amount: in the base currency at the rate of the as_of date (in
        -- the reporting time zone)
        SELECT od.opportunity_id, od.pipeline_id, od.stage_id, od.owner_id, od.amount,
               od.expected_close, od.forecast_category,
               date_part('epoch', as_of - od.entered_stage_at) / 86400 AS in_stage,
               od.stage_position AS position, od.stage_probability AS probability,
               od.dimension_key, od.dimension_value AS value
          FROM sales_kpi_internal.open_deal_rows(as_of, dimension, close_from, close_to) od
    ),
    -- milestone weighting: the next probability of each open stage
    next_stage AS (
        SELECT s.stage_id,
               coalesce((SELECT n.probability FROM @extschema@.stage n
                          WHERE n.pipeline_id = s.pipeline_id AND n.kind = 'open' AND n.position > s.position
                          ORDER BY n.position LIMIT 1),
                        (SELECT max(w.probability) FROM @extschema@.stage w
                          WHERE w.pipeline_id = s.pipeline_id AND w.kind = 'won'),
                        1) AS next_probability,
               (SELECT count(*) FROM @extschema@.milestone m
                 WHERE m.stage_id = s.stage_id AND m.required)::integer AS required
          FROM @extschema@.stage s
         WHERE with_milestone AND s.kind = 'open'
    ),
    -- the required milestones done by as_of: one index probe per open deal
    -- for all the required milestones of its stage
    required_milestone AS (
        SELECT m.stage_id, array_agg(m.milestone_id) AS ids
          FROM @extschema@.milestone m
         WHERE with_milestone AND m.required
         GROUP BY m.stage_id
    ),
    milestone_done AS (
        SELECT d.opportunity_id, c.done
          FROM open_deal d
          JOIN required_milestone r ON r.stage_id = d.stage_id
          CROSS JOIN LATERAL (
                SELECT count(*)::integer AS done
                  FROM @extschema@.milestone_event me
                 WHERE me.opportunity_id = d.opportunity_id AND me.milestone_id = ANY (r.ids)
                   AND me.completed_at <= as_of) c
    ),
    -- historical weighting: deals closed in [as_of - lookback, as_of) as the
    -- history stood at as_of.  A deal whose newest event is a close in the
    -- window has no event after as_of; a deal with events after as_of is
    -- rebuilt from its newest event not after as_of.  To bound the cost on
    -- big tables, only every k-th deal id is looked at, k = ceil(highest
    -- deal id / sample_ids): at most about sample_ids deals are probed.
    step AS MATERIALIZED (
        SELECT greatest(1, ceil(coalesce(max(o.opportunity_id), 0) / sample_ids::numeric))::bigint AS k
          FROM @extschema@.opportunity o
         WHERE with_historical
    ),
    sample_deal AS (
        SELECT o.opportunity_id, s.kind = 'won' AS won
          FROM @extschema@.opportunity o
          JOIN @extschema@.stage s ON s.stage_id = o.stage_id
         WHERE with_historical AND (SELECT step.k FROM step) = 1
           AND o.closed_at >= as_of - lookback AND o.closed_at < as_of
        UNION ALL
        SELECT o.opportunity_id, o.won
          FROM generate_series((SELECT step.k FROM step),
                               (SELECT max(x.opportunity_id) FROM @extschema@.opportunity x),
                               (SELECT step.k FROM step)) g(id)
          -- a probe per sampled id (OFFSET 0), not a hash of every deal
          -- closed in the window
          CROSS JOIN LATERAL (
                SELECT o.opportunity_id, o.stage_id = ANY (won_stages) AS won
                  FROM @extschema@.opportunity o
                 WHERE o.opportunity_id = g.id
                   AND o.closed_at >= as_of - lookback AND o.closed_at < as_of
                OFFSET 0) o
         WHERE with_historical AND (SELECT step.k FROM step) > 1
        UNION ALL
        SELECT m.opportunity_id, s.kind = 'won'
          FROM (SELECT DISTINCT ev.opportunity_id FROM @extschema@.stage_event ev
                 WHERE with_historical AND ev.entered_at > as_of) m
          CROSS JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = m.opportunity_id AND ev.entered_at <= as_of
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id AND s.kind IN ('won', 'lost')
         WHERE e.entered_at >= as_of - lookback AND e.entered_at < as_of
           AND m.opportunity_id % (SELECT step.k FROM step) = 0
    ),
    -- each sample deal's longest stay per open stage, in whole days; a stay
    -- runs from entering a stage to the next event.  Each deal's events are
    -- read in order through its index and windowed there: nothing sorts the
    -- events of all the deals.
    longest AS (
        SELECT st.stage_id, st.won, floor(date_part('epoch', max(st.stay)) / 86400)::integer AS days
          FROM (SELECT sd.opportunity_id, sd.won, e.stage_id, e.stay
                  FROM sample_deal sd
                  CROSS JOIN LATERAL (
                        SELECT ev.stage_id,
                               lead(ev.entered_at) OVER (ORDER BY ev.entered_at, ev.stage_event_id)
                                   - ev.entered_at AS stay
                          FROM @extschema@.stage_event ev
                         WHERE ev.opportunity_id = sd.opportunity_id AND ev.entered_at <= as_of) e) st
         WHERE st.stay IS NOT NULL AND st.stage_id = ANY (open_stages)
         GROUP BY st.opportunity_id, st.stage_id, st.won
    ),
    -- per stage and whole day d: sample deals that stayed >= d days, and
    -- how many of them won (running sums from the longest stays down)
    band AS (
        SELECT x.stage_id, x.days,
               sum(x.n) OVER w AS n_ge, sum(x.won) OVER w AS won_ge
          FROM (SELECT l.stage_id, l.days, count(*) AS n, count(*) FILTER (WHERE l.won) AS won
                  FROM longest l GROUP BY l.stage_id, l.days
                UNION ALL
                SELECT DISTINCT d.stage_id, floor(d.in_stage)::integer, 0, 0
                  FROM open_deal d WHERE with_historical) x
        WINDOW w AS (PARTITION BY x.stage_id ORDER BY x.days DESC)
    ),
    historical AS (
        SELECT b.stage_id, b.days, max(b.n_ge)::bigint AS n_ge, max(b.won_ge)::bigint AS won_ge
          FROM band b GROUP BY b.stage_id, b.days
    )
    SELECT d.opportunity_id, d.pipeline_id, d.stage_id, d.owner_id, d.amount, d.expected_close,
           d.forecast_category, d.in_stage, d.probability,
           CASE WHEN with_milestone THEN coalesce(md.done, 0) END,
           ns.required,
           -- the computed probabilities are rounded to 6 decimals: a division
           -- gives 20, which with a base amount of 10 decimals (a rate of 8)
           -- leaves the exact weighted sums no room for their integer digits
           CASE WHEN NOT with_milestone THEN NULL
                WHEN ns.required > 0
                THEN trim_scale(round(d.probability
                                      + (ns.next_probability - d.probability) * coalesce(md.done, 0) / ns.required,
                                      6))
                ELSE d.probability END,
           CASE WHEN with_historical THEN coalesce(h.n_ge, 0) END,
           CASE WHEN with_historical THEN coalesce(h.won_ge, 0) END,
           CASE WHEN NOT with_historical THEN NULL
                WHEN h.n_ge >= min_sample THEN trim_scale(round(h.won_ge::numeric / h.n_ge, 6))
                ELSE d.probability END,
           d.dimension_key, d.value
      FROM open_deal d
      LEFT JOIN next_stage ns ON ns.stage_id = d.stage_id
      LEFT JOIN milestone_done md ON md.opportunity_id = d.opportunity_id
      LEFT JOIN historical h ON h.stage_id = d.stage_id AND h.days = floor(d.in_stage)::integer;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_value_open_deals(timestamptz, interval, integer, boolean, boolean, bigint, text, timestamptz, timestamptz) IS
    'Internal: the deals open at as_of (with close_from or close_to, those expected to close in [close_from, close_to)) with their stage, milestone and historical win probabilities (the latter two only when asked for) and their breakdown key and value for a dimension (the rep: the owner at as_of).';

-- Breakdown value of open deals (owner at as_of) and of closed deals (owner
-- at the close) is computed with the same expression; for 'company' the
-- join to the deal attributes is skipped (the dim CTEs are gated).

CREATE FUNCTION @extschema@.stage_pipeline_value(as_of timestamptz DEFAULT now(), dimension text DEFAULT 'company')
RETURNS TABLE (dimension text, dimension_value text, pipeline_id bigint, pipeline text, stage_id bigint,
               stage text, "position" integer, probability numeric, deals bigint, amount numeric,
               weighted_amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(stage_pipeline_value.as_of, stage_pipeline_value.dimension);
    WITH per_stage AS (
        SELECT op.dimension_value AS dv, op.stage_id, sum(op.deals)::bigint AS deals, sum(op.amount) AS amount,
               sum(op.weighted_amount) AS weighted
          FROM sales_kpi_internal.open_partials(stage_pipeline_value.as_of, stage_pipeline_value.dimension) op
         GROUP BY 1, 2
    ), value_of_pipeline AS (
        -- each pipeline lists its stages for every breakdown value found among
        -- its open deals; a pipeline without open deals lists them once
        SELECT p.pipeline_id, p.name,
               coalesce(v.dv, CASE stage_pipeline_value.dimension
                                   WHEN 'company' THEN 'all' WHEN 'pipeline' THEN p.name END) AS dv
          FROM @extschema@.pipeline p
          LEFT JOIN (SELECT DISTINCT s.pipeline_id, ps.dv
                       FROM per_stage ps JOIN @extschema@.stage s ON s.stage_id = ps.stage_id) v
            ON v.pipeline_id = p.pipeline_id
    )
    SELECT stage_pipeline_value.dimension, vp.dv, vp.pipeline_id, vp.name, s.stage_id, s.name, s.position,
           s.probability, coalesce(ps.deals, 0), coalesce(ps.amount, 0), coalesce(ps.weighted, 0)
      FROM value_of_pipeline vp
      JOIN @extschema@.stage s ON s.pipeline_id = vp.pipeline_id AND s.kind = 'open'
      LEFT JOIN per_stage ps ON ps.stage_id = s.stage_id AND ps.dv = vp.dv
     ORDER BY vp.dv, vp.name, s.position;
$$;
COMMENT ON FUNCTION @extschema@.stage_pipeline_value(timestamptz, text) IS
    'Deals open at as_of per pipeline and open stage (and breakdown value): count, amount and amount x stage probability, in the base currency at the as_of date rate. Stages without deals show zeros.';

CREATE VIEW @extschema@.stage_pipeline_value WITH (security_invoker = true) AS
SELECT * FROM @extschema@.stage_pipeline_value();
COMMENT ON VIEW @extschema@.stage_pipeline_value IS
    'Open deals now, per pipeline and open stage: count, amount and amount x stage probability, in the base currency at today''s rate. Stages without deals show zeros.';

CREATE FUNCTION @extschema@.deal_probability(as_of timestamptz DEFAULT now(), lookback interval DEFAULT '365 days',
                                             min_sample integer DEFAULT 20)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, stage_id bigint, owner_id bigint,
               amount numeric, expected_close date, forecast_category text,
               time_in_stage_days double precision, stage_probability numeric,
               milestones_done integer, milestones_required integer, milestone_probability numeric,
               historical_deals bigint, historical_won bigint, historical_probability numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(deal_probability.as_of, 'company', 'stage',
                                                 deal_probability.lookback, deal_probability.min_sample);
    SELECT od.opportunity_id, od.pipeline_id, od.stage_id, od.owner_id, od.amount, od.expected_close,
           od.forecast_category, od.time_in_stage_days, od.stage_probability, od.milestones_done,
           od.milestones_required, od.milestone_probability, od.historical_deals, od.historical_won,
           od.historical_probability
      FROM sales_kpi_internal.pipeline_value_open_deals(deal_probability.as_of, deal_probability.lookback,
                                                 deal_probability.min_sample, true, true) od
     ORDER BY 1;
$$;
COMMENT ON FUNCTION @extschema@.deal_probability(timestamptz, interval, integer) IS
    'Each deal open at as_of with its win probability under the stage, milestone and historical weightings (historical: share won among deals closed in the lookback window that stayed in the stage at least as long; the stage probability below min_sample such deals).';

CREATE VIEW @extschema@.deal_probability WITH (security_invoker = true) AS
SELECT * FROM @extschema@.deal_probability();
COMMENT ON VIEW @extschema@.deal_probability IS
    'Each open deal now with its win probability under the stage, milestone and historical weightings (lookback 365 days).';

CREATE FUNCTION @extschema@.weighted_pipeline_value(as_of timestamptz DEFAULT now(), dimension text DEFAULT 'company',
                                                    weighting text DEFAULT 'stage',
                                                    lookback interval DEFAULT '365 days',
                                                    min_sample integer DEFAULT 20)
RETURNS TABLE (dimension text, dimension_value text, deals bigint, amount numeric, weighted_amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(weighted_pipeline_value.as_of, weighted_pipeline_value.dimension,
                                                 weighted_pipeline_value.weighting, weighted_pipeline_value.lookback,
                                                 weighted_pipeline_value.min_sample);
    WITH agg AS (
        -- the stage weighting rolls up the open-pipeline partials; the
        -- others weigh each deal
        SELECT op.dimension_value AS dv, sum(op.deals)::bigint AS deals, coalesce(sum(op.amount), 0) AS amount,
               coalesce(sum(op.weighted_amount), 0) AS weighted
          FROM sales_kpi_internal.open_partials(weighted_pipeline_value.as_of, weighted_pipeline_value.dimension) op
         WHERE weighted_pipeline_value.weighting = 'stage'
         GROUP BY 1
        UNION ALL
        SELECT od.dimension_value, count(*), coalesce(sum(od.amount), 0),
               coalesce(@extschema@.weighted_pipeline(od.amount,
                                                      CASE weighted_pipeline_value.weighting
                                                           WHEN 'milestone' THEN od.milestone_probability
                                                           ELSE od.historical_probability END), 0)
          FROM sales_kpi_internal.pipeline_value_open_deals(weighted_pipeline_value.as_of, weighted_pipeline_value.lookback,
                                                     weighted_pipeline_value.min_sample,
                                                     weighted_pipeline_value.weighting = 'milestone',
                                                     weighted_pipeline_value.weighting = 'historical',
                                                     dimension => weighted_pipeline_value.dimension) od
         WHERE weighted_pipeline_value.weighting <> 'stage'
         GROUP BY 1
    )
    SELECT weighted_pipeline_value.dimension, k.dv, coalesce(a.deals, 0), coalesce(a.amount, 0),
           coalesce(a.weighted, 0)
      FROM (SELECT agg.dv FROM agg UNION SELECT 'all' WHERE weighted_pipeline_value.dimension = 'company') k
      LEFT JOIN agg a ON a.dv = k.dv
     ORDER BY k.dv;
$$;
COMMENT ON FUNCTION @extschema@.weighted_pipeline_value(timestamptz, text, text, interval, integer) IS
    'Deals open at as_of per breakdown value: count, amount and the weighted pipeline sum(amount x p), p from the stage, milestone or historical weighting; base currency at the as_of date rate.';

CREATE VIEW @extschema@.weighted_pipeline_value WITH (security_invoker = true) AS
SELECT * FROM @extschema@.weighted_pipeline_value();
COMMENT ON VIEW @extschema@.weighted_pipeline_value IS
    'Open deals now, whole company: count, amount and amount x stage probability.';

-- The parts the period KPIs (coverage, pace, forecast) are made of, per
-- breakdown value: the open pipeline at as_of expected to close in the
-- period (expected_close, a local date, inside [period_start, period_end),
-- and nothing once as_of has reached period_end), weighted three ways and
-- split by forecast category; the bookings (won amount of the deals closed
-- in the period up to as_of, credited to the owner at the close, at the
-- close-date rate); and the quota (quota_in_period summed over the reps of
-- the value, for the company, rep and team breakdowns only).  The rows are
-- the values that have pipeline, bookings or quota, and always 'all' for
-- the company.
CREATE FUNCTION sales_kpi_internal.pipeline_value_period_parts(period_start timestamptz, period_end timestamptz,
                                                        dimension text, as_of timestamptz,
                                                        lookback interval, min_sample integer,
                                                        with_milestone boolean, with_historical boolean)
RETURNS TABLE (dimension_value text, period_start timestamptz, period_end timestamptz,
               open_deals bigint, open_amount numeric, stage_weighted numeric, milestone_weighted numeric,
               historical_weighted numeric, closed_amount numeric, commit_amount numeric,
               best_case_amount numeric, pipeline_amount numeric, omitted_amount numeric,
               bookings numeric, quota numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH rp AS MATERIALIZED (
        SELECT r.period_start AS lo, r.period_end AS hi
          FROM sales_kpi_internal.resolve_period(pipeline_value_period_parts.period_start,
                                          pipeline_value_period_parts.period_end,
                                          pipeline_value_period_parts.as_of) r
    ), d AS (
        SELECT od.dimension_value, od.amount, od.forecast_category, od.stage_probability,
               od.milestone_probability, od.historical_probability
          FROM rp, sales_kpi_internal.pipeline_value_open_deals(pipeline_value_period_parts.as_of,
                                                         pipeline_value_period_parts.lookback,
                                                         pipeline_value_period_parts.min_sample,
                                                         with_milestone, with_historical,
                                                         dimension => pipeline_value_period_parts.dimension,
                                                         close_from => rp.lo, close_to => rp.hi) od
         WHERE pipeline_value_period_parts.as_of < rp.hi
    ), open_agg AS (
        SELECT d.dimension_value AS dv, count(*) AS deals, coalesce(sum(d.amount), 0) AS amount,
               coalesce(@extschema@.weighted_pipeline(d.amount, d.stage_probability), 0) AS stage_w,
               coalesce(@extschema@.weighted_pipeline(d.amount, d.milestone_probability), 0) AS milestone_w,
               coalesce(@extschema@.weighted_pipeline(d.amount, d.historical_probability), 0) AS historical_w,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'closed'), 0) AS closed_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'commit'), 0) AS commit_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'best_case'), 0) AS best_case_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'pipeline'), 0) AS pipeline_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'omitted'), 0) AS omitted_c
          FROM d
         GROUP BY 1
    ), won_agg AS (
        -- the closed-deal partials of the period: bookings credited to the owner at the close
        SELECT cp.dimension_value AS dv, sum(@extschema@.won_amount(cp.outcomes)) AS bookings
          FROM rp, sales_kpi_internal.closed_partials(ARRAY[rp.lo, rp.hi], pipeline_value_period_parts.as_of,
                                               pipeline_value_period_parts.dimension, false, true) cp
         WHERE @extschema@.won_count(cp.outcomes) > 0
         GROUP BY 1
    ), quota_agg AS (
        SELECT @extschema@.dimension_value(pipeline_value_period_parts.dimension, NULL, r.name, r.team,
                                           NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS dv,
               sum(q.quota) AS quota
          FROM rp
          CROSS JOIN LATERAL @extschema@.quota_in_period(rp.lo, rp.hi) q
          JOIN @extschema@.rep r ON r.rep_id = q.rep_id
         WHERE pipeline_value_period_parts.dimension IN ('company', 'rep', 'team')
         GROUP BY 1
    ), k AS (
        SELECT open_agg.dv FROM open_agg
        UNION SELECT won_agg.dv FROM won_agg
        UNION SELECT quota_agg.dv FROM quota_agg
        UNION SELECT 'all' WHERE pipeline_value_period_parts.dimension = 'company'
    )
    SELECT k.dv, rp.lo, rp.hi,
           coalesce(o.deals, 0), coalesce(o.amount, 0),
           coalesce(o.stage_w, 0),
           CASE WHEN with_milestone THEN coalesce(o.milestone_w, 0) END,
           CASE WHEN with_historical THEN coalesce(o.historical_w, 0) END,
           coalesce(o.closed_c, 0), coalesce(o.commit_c, 0), coalesce(o.best_case_c, 0),
           coalesce(o.pipeline_c, 0), coalesce(o.omitted_c, 0),
           coalesce(w.bookings, 0), q.quota
      FROM k CROSS JOIN rp
      LEFT JOIN open_agg o ON o.dv = k.dv
      LEFT JOIN won_agg w ON w.dv = k.dv
      LEFT JOIN quota_agg q ON q.dv = k.dv
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_value_period_parts(timestamptz, timestamptz, text, timestamptz, interval, integer, boolean, boolean) IS
    'Internal: per breakdown value, the open pipeline at as_of expected to close in the period (weighted and by forecast category), the bookings so far and the quota.';

CREATE FUNCTION @extschema@.pipeline_coverage(period_start timestamptz DEFAULT NULL,
                                              period_end timestamptz DEFAULT NULL,
                                              dimension text DEFAULT 'company',
                                              as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_deals bigint, pipeline_amount numeric, quota numeric, bookings numeric,
               remaining_quota numeric, coverage double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(pipeline_coverage.as_of, pipeline_coverage.dimension);
    SELECT pipeline_coverage.dimension, x.dimension_value, x.period_start, x.period_end,
           x.open_deals, x.open_amount, x.quota, x.bookings, x.quota - x.bookings,
           CASE WHEN x.quota - x.bookings > 0
                THEN (x.open_amount / (x.quota - x.bookings))::double precision END
      FROM sales_kpi_internal.pipeline_value_period_parts(pipeline_coverage.period_start, pipeline_coverage.period_end,
                                                   pipeline_coverage.dimension, pipeline_coverage.as_of,
                                                   '0 days', 1, false, false) x
     ORDER BY x.dimension_value;
$$;
COMMENT ON FUNCTION @extschema@.pipeline_coverage(timestamptz, timestamptz, text, timestamptz) IS
    'Pipeline coverage of a period: open pipeline at as_of expected to close in the period / (quota - bookings so far); null without quota or when nothing remains to book.';

CREATE VIEW @extschema@.pipeline_coverage WITH (security_invoker = true) AS
SELECT * FROM @extschema@.pipeline_coverage();
COMMENT ON VIEW @extschema@.pipeline_coverage IS
    'Pipeline coverage of the current fiscal quarter, whole company: open pipeline expected to close in it / (quota - bookings so far).';

CREATE FUNCTION @extschema@.quota_pace(period_start timestamptz DEFAULT NULL,
                                       period_end timestamptz DEFAULT NULL,
                                       dimension text DEFAULT 'company',
                                       as_of timestamptz DEFAULT now(),
                                       weighting text DEFAULT 'stage',
                                       lookback interval DEFAULT '365 days',
                                       min_sample integer DEFAULT 20)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               bookings numeric, quota numeric, elapsed_share double precision, pace double precision,
               weighted_pipeline numeric, projected numeric, gap numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(quota_pace.as_of, quota_pace.dimension, quota_pace.weighting,
                                                 quota_pace.lookback, quota_pace.min_sample);
    SELECT quota_pace.dimension, x.dimension_value, x.period_start, x.period_end,
           x.bookings, x.quota, e.share,
           CASE WHEN x.quota * e.share::numeric > 0
                THEN x.bookings::double precision / (x.quota::double precision * e.share) END,
           w.weighted, x.bookings + w.weighted, x.quota - (x.bookings + w.weighted)
      FROM sales_kpi_internal.pipeline_value_period_parts(quota_pace.period_start, quota_pace.period_end,
                                                   quota_pace.dimension, quota_pace.as_of,
                                                   quota_pace.lookback, quota_pace.min_sample,
                                                   quota_pace.weighting = 'milestone',
                                                   quota_pace.weighting = 'historical') x
      CROSS JOIN LATERAL (
            SELECT least(greatest(extract(epoch FROM quota_pace.as_of - x.period_start)
                                  / extract(epoch FROM x.period_end - x.period_start), 0), 1)::double precision
                   AS share) e
      CROSS JOIN LATERAL (
            SELECT CASE quota_pace.weighting WHEN 'stage' THEN x.stage_weighted
                        WHEN 'milestone' THEN x.milestone_weighted ELSE x.historical_weighted END AS weighted) w
     ORDER BY x.dimension_value;
$$;
COMMENT ON FUNCTION @extschema@.quota_pace(timestamptz, timestamptz, text, timestamptz, text, interval, integer) IS
    'Pace and gap of a period: bookings so far, quota, elapsed share, pace = bookings / (quota x elapsed share), projected = bookings + weighted open pipeline expected to close in the period, gap = quota - projected.';

CREATE VIEW @extschema@.quota_pace WITH (security_invoker = true) AS
SELECT * FROM @extschema@.quota_pace();
COMMENT ON VIEW @extschema@.quota_pace IS
    'Pace and gap of the current fiscal quarter, whole company, stage weighting.';

CREATE FUNCTION @extschema@.forecast(period_start timestamptz DEFAULT NULL,
                                     period_end timestamptz DEFAULT NULL,
                                     dimension text DEFAULT 'company',
                                     as_of timestamptz DEFAULT now(),
                                     lookback interval DEFAULT '365 days',
                                     min_sample integer DEFAULT 20)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               bookings numeric, open_deals bigint, open_amount numeric,
               stage_forecast numeric, milestone_forecast numeric, historical_forecast numeric,
               forecast_lower numeric, forecast_upper numeric,
               closed numeric, commit numeric, best_case numeric, pipeline numeric, omitted numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(forecast.as_of, forecast.dimension, 'stage',
                                                 forecast.lookback, forecast.min_sample);
    SELECT forecast.dimension, x.dimension_value, x.period_start, x.period_end,
           x.bookings, x.open_deals, x.open_amount,
           x.bookings + x.stage_weighted, x.bookings + x.milestone_weighted, x.bookings + x.historical_weighted,
           x.bookings + least(x.stage_weighted, x.historical_weighted),
           x.bookings + greatest(x.stage_weighted, x.historical_weighted),
           c.closed, c.closed + x.commit_amount, c.closed + x.commit_amount + x.best_case_amount,
           c.closed + x.commit_amount + x.best_case_amount + x.pipeline_amount,
           x.omitted_amount
      FROM sales_kpi_internal.pipeline_value_period_parts(forecast.period_start, forecast.period_end,
                                                   forecast.dimension, forecast.as_of,
                                                   forecast.lookback, forecast.min_sample, true, true) x
      CROSS JOIN LATERAL (SELECT x.bookings + x.closed_amount AS closed) c
     ORDER BY x.dimension_value;
$$;
COMMENT ON FUNCTION @extschema@.forecast(timestamptz, timestamptz, text, timestamptz, interval, integer) IS
    'Expected bookings of a period: closed won so far + open deals expected to close in it x p under each weighting (range from the stage and historical weightings), and the forecast-category roll-ups closed, commit, best_case, pipeline (cumulative) and omitted.';

CREATE VIEW @extschema@.forecast WITH (security_invoker = true) AS
SELECT * FROM @extschema@.forecast();
COMMENT ON VIEW @extschema@.forecast IS
    'Forecast of the current fiscal quarter, whole company: closed won + weighted open pipeline under each weighting, and the forecast-category roll-ups.';
