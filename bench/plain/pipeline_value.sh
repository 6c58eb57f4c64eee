# Plain-SQL formulations sourced by bench/kpi_engine.sh: the pipeline-value
# and forecast KPIs (pipeline_coverage, quota_pace, forecast, deal_probability)
# over the quarter holding as_of.  Each plain_<name> echoes the query a
# DBA would write; kpi_<name>_check and plain_<name>_check echo the pair
# whose rows must be the same.  $as_of is set by the caller.

# The deals open at as_of, as a CTE body: id, pipeline, stage, owner,
# amount in the base currency at the as_of date's rate, expected close,
# forecast category (the deal's, else the stage's), days in the current
# stage at as_of.  The closed_at test is the open-deal test (a deal open
# now has no close) that the closed_at index answers.
plain_open_deals() {
    echo "SELECT o.opportunity_id, o.pipeline_id, o.stage_id, o.owner_id,
                     sales_kpi.to_base(o.amount, o.currency, ($as_of AT TIME ZONE 'UTC')::date) AS amount,
                     o.expected_close, coalesce(o.forecast_category, s.forecast_category) AS forecast_category,
                     date_part('epoch', $as_of - o.stage_entered_at) / 86400 AS in_stage
                FROM sales_kpi.opportunity o
                JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind = 'open'
               WHERE o.created_at <= $as_of AND (o.closed_at IS NULL OR o.closed_at > $as_of)"
}

# One pass over the deals for a period [$1, $2): the deals open at as_of
# expected to close in it (local dates; none once as_of has reached $2)
# and the deals won in it up to as_of; kind (open or won), stage
# probability, amount in the base currency (open: at the as_of date's
# rate; won: at the close date's), forecast category, owner (at the close:
# the current one, no snapshot being later than a close) and days in the
# current stage.
plain_period_deals() {
    echo "SELECT o.opportunity_id, o.stage_id, o.owner_id, s.kind, s.probability,
                     sales_kpi.to_base(o.amount, o.currency,
                                       CASE WHEN s.kind = 'won' THEN (o.closed_at AT TIME ZONE 'UTC')::date
                                            ELSE ($as_of AT TIME ZONE 'UTC')::date END) AS amount,
                     coalesce(o.forecast_category, s.forecast_category) AS forecast_category,
                     date_part('epoch', $as_of - o.stage_entered_at) / 86400 AS in_stage
                FROM sales_kpi.opportunity o
                JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind IN ('open', 'won')
               WHERE (s.kind = 'open' AND o.created_at <= $as_of AND (o.closed_at IS NULL OR o.closed_at > $as_of)
                      AND $as_of < $2
                      AND o.expected_close >= $1 AT TIME ZONE 'UTC' AND o.expected_close < $2 AT TIME ZONE 'UTC')
                  OR (s.kind = 'won' AND o.closed_at >= $1 AND o.closed_at < $2 AND o.closed_at <= $as_of)"
}

# Each rep's quota for [$1, $2): the quota rows overlapping it (local
# dates), each prorated by the share of its time inside the period.
plain_quota_rows() {
    echo "SELECT q.rep_id,
                     sum(q.amount * extract(epoch FROM least(q.period_end::timestamp, $2 AT TIME ZONE 'UTC')
                                                       - greatest(q.period_start::timestamp, $1 AT TIME ZONE 'UTC'))
                                  / extract(epoch FROM q.period_end::timestamp - q.period_start::timestamp)) AS quota
                FROM sales_kpi.quota q
               WHERE q.period_start < $2 AT TIME ZONE 'UTC' AND q.period_end > $1 AT TIME ZONE 'UTC'
               GROUP BY 1"
}

# The milestone and historical weightings, as CTEs over open deals
# d(opportunity_id, stage_id, in_stage):
#   ms       each open stage: probability, the next open stage's by position
#            (else the pipeline's won stage's, else 1), required milestones;
#   done     per open deal, the required milestones of its stage completed
#            by as_of (one index probe of milestone_event per deal);
#   sample   the deals closed in [as_of - 365 days, as_of) among every k-th
#            deal id, k = ceil(max id / 50000) (the KPI's sample), and won;
#   longest  each sample deal's longest stay per open stage, whole days (a
#            stay runs to the deal's next stage event);
#   hist     per open stage and whole day d (those of the sample and of the
#            open deals): sample deals whose longest stay there was >= d
#            days (n_ge) and those won (won_ge), running sums from the top.
plain_prob_ctes() {
    echo "ms AS (
              SELECT s.stage_id, s.probability,
                     coalesce(lead(s.probability) OVER (PARTITION BY s.pipeline_id ORDER BY s.position),
                              w.probability, 1) AS next_p,
                     coalesce(m.required, 0) AS required
                FROM sales_kpi.stage s
                LEFT JOIN (SELECT pipeline_id, max(probability) AS probability FROM sales_kpi.stage
                            WHERE kind = 'won' GROUP BY 1) w ON w.pipeline_id = s.pipeline_id
                LEFT JOIN (SELECT stage_id, count(*)::integer AS required FROM sales_kpi.milestone
                            WHERE required GROUP BY 1) m ON m.stage_id = s.stage_id
               WHERE s.kind = 'open'
          ), done AS (
              SELECT d.opportunity_id, count(*)::integer AS done
                FROM d
                JOIN (SELECT stage_id, array_agg(milestone_id) AS ids FROM sales_kpi.milestone
                       WHERE required GROUP BY 1) m ON m.stage_id = d.stage_id
                JOIN sales_kpi.milestone_event me ON me.opportunity_id = d.opportunity_id
                                                 AND me.milestone_id = ANY (m.ids) AND me.completed_at <= $as_of
               GROUP BY 1
          ), sample AS (
              SELECT o.opportunity_id, s.kind = 'won' AS won
                FROM (SELECT greatest(1, ceil(max(opportunity_id) / 50000.0))::bigint AS k, max(opportunity_id) AS top
                        FROM sales_kpi.opportunity) p
               CROSS JOIN generate_series(p.k, p.top, p.k) g(id)
                JOIN sales_kpi.opportunity o ON o.opportunity_id = g.id
                JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
               WHERE o.closed_at >= $as_of - interval '365 days' AND o.closed_at < $as_of
          ), longest AS (
              SELECT st.stage_id, st.won, floor(date_part('epoch', max(st.stay)) / 86400)::integer AS days
                FROM (SELECT e.opportunity_id, e.stage_id, sm.won,
                             lead(e.entered_at) OVER (PARTITION BY e.opportunity_id ORDER BY e.entered_at, e.stage_event_id)
                                 - e.entered_at AS stay
                        FROM sample sm
                        JOIN sales_kpi.stage_event e ON e.opportunity_id = sm.opportunity_id AND e.entered_at <= $as_of) st
                JOIN ms ON ms.stage_id = st.stage_id
               WHERE st.stay IS NOT NULL
               GROUP BY st.opportunity_id, st.stage_id, st.won
          ), hist AS (
              SELECT x.stage_id, x.days, sum(x.n) OVER w AS n_ge, sum(x.won) OVER w AS won_ge
                FROM (SELECT stage_id, days, sum(n) AS n, sum(won) AS won
                        FROM (SELECT stage_id, days, 1 AS n, won::integer AS won FROM longest
                              UNION ALL
                              SELECT stage_id, floor(in_stage)::integer, 0, 0 FROM d) u
                       GROUP BY 1, 2) x
              WINDOW w AS (PARTITION BY x.stage_id ORDER BY x.days DESC)
          )"
}

# the FROM of the open deals d with their probabilities: joins ms, done
# (dn) and hist (h), and the expressions of the three probabilities
plain_prob_from() {
    echo "FROM d
            JOIN ms ON ms.stage_id = d.stage_id
            LEFT JOIN done dn ON dn.opportunity_id = d.opportunity_id
            LEFT JOIN hist h ON h.stage_id = d.stage_id AND h.days = floor(d.in_stage)::integer"
}
plain_milestone_p() {
    echo "CASE WHEN ms.required > 0
                      THEN trim_scale(round(ms.probability + (ms.next_p - ms.probability) * coalesce(dn.done, 0)
                                                             / ms.required, 6))
                      ELSE ms.probability END"
}
plain_historical_p() {
    echo "CASE WHEN h.n_ge >= 20 THEN trim_scale(round(h.won_ge / h.n_ge, 6)) ELSE ms.probability END"
}

# pipeline_coverage by rep: per rep name, the open deals at as_of expected
# to close in the period (count, amount), the quota, the bookings so far
# and coverage = amount / (quota - bookings) when that is > 0; a row per
# name with pipeline, bookings or quota
plain_pipeline_coverage() {
    echo "WITH per_rep AS (
              SELECT pd.owner_id, count(*) FILTER (WHERE pd.kind = 'open') AS deals,
                     sum(pd.amount) FILTER (WHERE pd.kind = 'open') AS amount,
                     sum(pd.amount) FILTER (WHERE pd.kind = 'won') AS bookings, NULL::numeric AS quota
                FROM ($(plain_period_deals "$1" "$2")) pd
               GROUP BY 1
              UNION ALL
              SELECT q.rep_id, NULL, NULL, NULL, q.quota FROM ($(plain_quota_rows "$1" "$2")) q
          )
          SELECT coalesce(r.name, '(none)') AS value, coalesce(sum(x.deals), 0)::bigint AS pipeline_deals,
                 coalesce(sum(x.amount), 0) AS pipeline_amount, sum(x.quota) AS quota,
                 coalesce(sum(x.bookings), 0) AS bookings, sum(x.quota) - coalesce(sum(x.bookings), 0) AS remaining_quota,
                 (coalesce(sum(x.amount), 0) / nullif(greatest(sum(x.quota) - coalesce(sum(x.bookings), 0), 0), 0))::float8
                     AS coverage
            FROM per_rep x
            LEFT JOIN sales_kpi.rep r ON r.rep_id = x.owner_id
           GROUP BY 1"
}
kpi_pipeline_coverage_check() {
    echo "SELECT dimension_value, pipeline_deals, pipeline_amount, round(quota, 4), bookings, round(remaining_quota, 4),
                 round(coverage::numeric, 9)
            FROM sales_kpi.pipeline_coverage($1, $2, 'rep', $as_of)"
}
plain_pipeline_coverage_check() {
    echo "SELECT value, pipeline_deals, pipeline_amount, round(quota, 4), bookings, round(remaining_quota, 4),
                 round(coverage::numeric, 9)
            FROM ($(plain_pipeline_coverage "$1" "$2")) x"
}

# quota_pace by rep, stage weighting: per rep name, the bookings so far,
# the quota, the elapsed share of the period, pace = bookings / (quota x
# share), the open deals expected to close in the period x their stage's
# probability, projected = bookings + that, gap = quota - projected
plain_quota_pace() {
    echo "WITH per_rep AS (
              SELECT pd.owner_id, sum(pd.amount * pd.probability) FILTER (WHERE pd.kind = 'open') AS weighted,
                     sum(pd.amount) FILTER (WHERE pd.kind = 'won') AS bookings, NULL::numeric AS quota
                FROM ($(plain_period_deals "$1" "$2")) pd
               GROUP BY 1
              UNION ALL
              SELECT q.rep_id, NULL, NULL, q.quota FROM ($(plain_quota_rows "$1" "$2")) q
          ), v AS (
              SELECT coalesce(r.name, '(none)') AS value, coalesce(sum(x.bookings), 0) AS bookings, sum(x.quota) AS quota,
                     coalesce(sum(x.weighted), 0) AS weighted,
                     least(greatest(extract(epoch FROM $as_of - $1) / extract(epoch FROM $2 - $1), 0), 1)::float8 AS share
                FROM per_rep x
                LEFT JOIN sales_kpi.rep r ON r.rep_id = x.owner_id
               GROUP BY 1
          )
          SELECT value, bookings, quota, share AS elapsed_share,
                 CASE WHEN quota * share::numeric > 0 THEN bookings::float8 / (quota::float8 * share) END AS pace,
                 weighted AS weighted_pipeline, bookings + weighted AS projected, quota - (bookings + weighted) AS gap
            FROM v"
}
kpi_quota_pace_check() {
    echo "SELECT dimension_value, bookings, round(quota, 4), round(elapsed_share::numeric, 9), round(pace::numeric, 9),
                 weighted_pipeline, projected, round(gap, 4)
            FROM sales_kpi.quota_pace($1, $2, 'rep', $as_of)"
}
plain_quota_pace_check() {
    echo "SELECT value, bookings, round(quota, 4), round(elapsed_share::numeric, 9), round(pace::numeric, 9),
                 weighted_pipeline, projected, round(gap, 4)
            FROM ($(plain_quota_pace "$1" "$2")) x"
}

# forecast by rep: per rep name, bookings so far; the open deals expected
# to close in the period (count, amount); bookings + their amount x p for
# the stage, milestone and historical probabilities (lookback 365 days,
# min_sample 20); the lower and higher of the stage and historical ones;
# the forecast-category roll-ups (closed = bookings + closed, commit,
# best_case, pipeline cumulative, omitted apart).  Reps with only a quota
# in the period have a row too, as in the KPI.
plain_forecast() {
    echo "WITH pd AS MATERIALIZED ($(plain_period_deals "$1" "$2")),
          d AS (SELECT * FROM pd WHERE pd.kind = 'open'),
          $(plain_prob_ctes),
          per_rep AS (
              SELECT d.owner_id, count(*) AS deals, sum(d.amount) AS amount, sum(d.amount * ms.probability) AS stage_w,
                     sum(d.amount * $(plain_milestone_p)) AS milestone_w,
                     sum(d.amount * $(plain_historical_p)) AS historical_w,
                     sum(d.amount) FILTER (WHERE d.forecast_category = 'closed') AS closed_c,
                     sum(d.amount) FILTER (WHERE d.forecast_category = 'commit') AS commit_c,
                     sum(d.amount) FILTER (WHERE d.forecast_category = 'best_case') AS best_case_c,
                     sum(d.amount) FILTER (WHERE d.forecast_category = 'pipeline') AS pipeline_c,
                     sum(d.amount) FILTER (WHERE d.forecast_category = 'omitted') AS omitted_c,
                     NULL::numeric AS bookings
              $(plain_prob_from)
               GROUP BY 1
              UNION ALL
              SELECT pd.owner_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, sum(pd.amount)
                FROM pd WHERE pd.kind = 'won' GROUP BY 1
              UNION ALL
              SELECT q.rep_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
                FROM sales_kpi.quota q
               WHERE q.period_start < $2 AT TIME ZONE 'UTC' AND q.period_end > $1 AT TIME ZONE 'UTC'
          ), v AS (
              SELECT coalesce(r.name, '(none)') AS value, coalesce(sum(x.bookings), 0) AS bookings,
                     coalesce(sum(x.deals), 0)::bigint AS deals, coalesce(sum(x.amount), 0) AS amount,
                     coalesce(sum(x.stage_w), 0) AS stage_w, coalesce(sum(x.milestone_w), 0) AS milestone_w,
                     coalesce(sum(x.historical_w), 0) AS historical_w, coalesce(sum(x.closed_c), 0) AS closed_c,
                     coalesce(sum(x.commit_c), 0) AS commit_c, coalesce(sum(x.best_case_c), 0) AS best_case_c,
                     coalesce(sum(x.pipeline_c), 0) AS pipeline_c, coalesce(sum(x.omitted_c), 0) AS omitted_c
                FROM per_rep x
                LEFT JOIN sales_kpi.rep r ON r.rep_id = x.owner_id
               GROUP BY 1
          )
          SELECT value, bookings, deals AS open_deals, amount AS open_amount,
                 bookings + stage_w AS stage_forecast, bookings + milestone_w AS milestone_forecast,
                 bookings + historical_w AS historical_forecast,
                 bookings + least(stage_w, historical_w) AS forecast_lower,
                 bookings + greatest(stage_w, historical_w) AS forecast_upper,
                 bookings + closed_c AS closed, bookings + closed_c + commit_c AS commit,
                 bookings + closed_c + commit_c + best_case_c AS best_case,
                 bookings + closed_c + commit_c + best_case_c + pipeline_c AS pipeline, omitted_c AS omitted
            FROM v"
}
kpi_forecast_check() {
    echo "SELECT dimension_value, bookings, open_deals, open_amount, stage_forecast, milestone_forecast,
                 historical_forecast, forecast_lower, forecast_upper, closed, commit, best_case, pipeline, omitted
            FROM sales_kpi.forecast($1, $2, 'rep', $as_of)"
}
plain_forecast_check() {
    echo "SELECT value, bookings, open_deals, open_amount, stage_forecast, milestone_forecast,
                 historical_forecast, forecast_lower, forecast_upper, closed, commit, best_case, pipeline, omitted
            FROM ($(plain_forecast "$1" "$2")) x"
}

# deal_probability: every deal open at as_of with its stage probability,
# required milestones done / required and the milestone probability, and
# the historical sample counts (stayed at least as long, of which won) and
# probability (lookback 365 days, min_sample 20)
plain_deal_probability() {
    echo "WITH d AS ($(plain_open_deals)),
          $(plain_prob_ctes)
          SELECT d.opportunity_id, d.pipeline_id, d.stage_id, d.owner_id, d.amount, d.expected_close,
                 d.forecast_category, d.in_stage AS time_in_stage_days, ms.probability AS stage_probability,
                 coalesce(dn.done, 0) AS milestones_done, ms.required AS milestones_required,
                 $(plain_milestone_p) AS milestone_probability,
                 coalesce(h.n_ge, 0)::bigint AS historical_deals, coalesce(h.won_ge, 0)::bigint AS historical_won,
                 $(plain_historical_p) AS historical_probability
            $(plain_prob_from)"
}
kpi_deal_probability_check() {
    echo "SELECT opportunity_id, pipeline_id, stage_id, owner_id, amount, expected_close, forecast_category,
                 round(time_in_stage_days::numeric, 4), stage_probability, milestones_done, milestones_required,
                 milestone_probability, historical_deals, historical_won, historical_probability
            FROM sales_kpi.deal_probability($as_of)"
}
plain_deal_probability_check() {
    echo "SELECT opportunity_id, pipeline_id, stage_id, owner_id, amount, expected_close, forecast_category,
                 round(time_in_stage_days::numeric, 4), stage_probability, milestones_done, milestones_required,
                 milestone_probability, historical_deals, historical_won, historical_probability
            FROM ($(plain_deal_probability)) x"
}
