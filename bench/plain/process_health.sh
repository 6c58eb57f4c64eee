# Plain-SQL formulations sourced by bench/kpi_engine.sh: the process-health
# KPIs (gate_violations, conversion_alerts) and stalled_deals; as
# pipeline_value.sh.

# gate_violations($1, $2, 'company', as_of)
# The forward moves entered in [$1, $2) (widened to whole months) by as_of
# that left a required milestone of a passed stage without a completion at
# or before the move (completions after as_of unknown): one ordered pass over
# the stage history (lag over the (opportunity_id, entered_at,
# stage_event_id) index, index only) merge-joined with each deal's
# completions (grouped in the milestone_event primary key's order), then the
# gate -- for each (stage left, stage entered) forward pair, the required
# milestones of the stages passed -- hash-joined; only the missing
# milestones are grouped back per move.  The rep is the owner of the deal's
# newest snapshot at or before the move (an index-only probe per violation),
# else the event's rep_id, else the current owner.  OFFSET 0 keeps the merge
# join of the two ordered passes below the gate join: otherwise the join of
# the events with the gate, estimated at 10,000 rows instead of 2.2 million,
# goes first and the completions are read by an index probe per row (18 s).
# JIT, on by default, can add 0.5-2.5 s here (the KPIs set jit = off).
plain_gate_violations() {
    echo "WITH gate AS MATERIALIZED (
              SELECT f.stage_id AS from_id, t.stage_id AS to_id, ms.milestone_id, ps.position AS ps_pos,
                     ms.position AS ms_pos, ps.name || ': ' || ms.name AS label
                FROM sales_kpi.stage f
                JOIN sales_kpi.stage t
                  ON t.pipeline_id = f.pipeline_id AND (t.kind = 'won' OR (t.kind = 'open' AND t.position > f.position))
                JOIN sales_kpi.stage ps
                  ON ps.pipeline_id = f.pipeline_id AND ps.kind = 'open' AND ps.position >= f.position
                 AND (t.kind = 'won' OR ps.position < t.position)
                JOIN sales_kpi.milestone ms ON ms.stage_id = ps.stage_id AND ms.required
               WHERE f.kind = 'open'
          ), ev AS (
              SELECT e.stage_event_id, e.opportunity_id, e.stage_id, e.entered_at,
                     lag(e.stage_id) OVER (PARTITION BY e.opportunity_id ORDER BY e.entered_at, e.stage_event_id)
                         AS prev_stage_id
                FROM sales_kpi.stage_event e
               WHERE e.entered_at <= $as_of
          ), done AS (
              SELECT m.opportunity_id, array_agg(m.milestone_id) AS ids, array_agg(m.completed_at) AS ats
                FROM sales_kpi.milestone_event m
               WHERE m.completed_at <= $as_of
               GROUP BY m.opportunity_id
          ), evd AS (
              SELECT ev.*, d.ids, d.ats
                FROM ev
                LEFT JOIN done d ON d.opportunity_id = ev.opportunity_id
               WHERE ev.entered_at >= date_trunc('month', $1)
                 AND ev.entered_at < date_trunc('month', $2 - interval '1 microsecond') + interval '1 month'
              OFFSET 0
          ), miss AS (
              SELECT x.stage_event_id, x.opportunity_id, x.prev_stage_id, x.stage_id, x.entered_at,
                     g.label, g.ps_pos, g.ms_pos, c.completed_at
                FROM evd x
                JOIN gate g ON g.from_id = x.prev_stage_id AND g.to_id = x.stage_id
               CROSS JOIN LATERAL (SELECT x.ats[array_position(x.ids, g.milestone_id)] AS completed_at) c
               WHERE c.completed_at IS NULL OR c.completed_at > x.entered_at
          ), v AS (
              SELECT stage_event_id, opportunity_id, prev_stage_id, stage_id, entered_at,
                     string_agg(label, ', ' ORDER BY ps_pos, ms_pos) AS missing_milestones,
                     count(*) AS missing_count, count(completed_at) AS completed_late_count
                FROM miss
               GROUP BY 1, 2, 3, 4, 5
          )
          SELECT v.opportunity_id, v.stage_event_id, f.pipeline_id, f.name AS from_stage, t.name AS to_stage,
                 v.entered_at AS moved_at,
                 coalesce((SELECT h.owner_id FROM sales_kpi.opportunity_history h
                            WHERE h.opportunity_id = v.opportunity_id AND h.changed_at <= v.entered_at
                            ORDER BY h.changed_at DESC LIMIT 1),
                          (SELECT e.rep_id FROM sales_kpi.stage_event e WHERE e.stage_event_id = v.stage_event_id),
                          (SELECT o.owner_id FROM sales_kpi.opportunity o WHERE o.opportunity_id = v.opportunity_id))
                     AS rep_id,
                 v.missing_milestones, v.missing_count, v.completed_late_count
            FROM v
            JOIN sales_kpi.stage f ON f.stage_id = v.prev_stage_id
            JOIN sales_kpi.stage t ON t.stage_id = v.stage_id"
}
kpi_gate_violations() {
    echo "SELECT * FROM sales_kpi.gate_violations($1, $2, 'company', $as_of)"
}
# every output column but the breakdown, the range and gate_mode
kpi_gate_violations_check() {
    echo "SELECT opportunity_id, stage_event_id, pipeline_id, from_stage, to_stage, moved_at, rep_id,
                 missing_milestones, missing_count, completed_late_count
            FROM sales_kpi.gate_violations($1, $2, 'company', $as_of)"
}
plain_gate_violations_check() {
    echo "SELECT opportunity_id, stage_event_id, pipeline_id, from_stage, to_stage, moved_at, rep_id,
                 missing_milestones, missing_count, completed_late_count
            FROM ($(plain_gate_violations "$1" "$2")) x"
}

# conversion_alerts(as_of)  (company, 12 weeks, horizon 30 days)
# Per open stage: the entries into it during the latest week whose end plus
# 30 days is not after as_of (weeks from Monday, UTC), and during the 12
# weeks before it pooled, and those whose deal entered a later open stage or
# won within 30 days of the entry (inclusive): a window max over each deal's
# events of the 13 weeks plus the horizon, an event's code being its
# stage's open rank, won above every open stage, lost 0; then the p-chart
# limits p +- 3 sqrt(p (1 - p) / n) clipped to [0, 1] and the alert.  The
# time range is written as two OR-ed halves so that the planner reads it
# through a bitmap of the entered_at index (heap pages in order, 0.4 s); for
# one range it takes a plain index scan, 4 times slower, as the events of a
# week lie on the pages of many deals (the KPI sets enable_indexscan = off).
plain_conversion_alerts() {
    # the end of the latest complete week, an InitPlan worked out once
    local le="(SELECT date_trunc('week', $as_of - interval '30 days'))"
    echo "WITH r AS (
              SELECT s.stage_id, s.pipeline_id, s.name, s.position,
                     CASE WHEN s.kind = 'open'
                          THEN row_number() OVER (PARTITION BY s.pipeline_id, s.kind = 'open' ORDER BY s.position) END
                         AS rank,
                     CASE s.kind WHEN 'open' THEN row_number() OVER (PARTITION BY s.pipeline_id, s.kind = 'open'
                                                                     ORDER BY s.position)
                                 WHEN 'won' THEN count(*) FILTER (WHERE s.kind = 'open') OVER (PARTITION BY s.pipeline_id) + 1
                                 ELSE 0 END AS code
                FROM sales_kpi.stage s
          ), entry AS (
              SELECT e.stage_id, r.rank, e.entered_at,
                     max(r.code) OVER (PARTITION BY e.opportunity_id ORDER BY e.entered_at
                                       RANGE BETWEEN CURRENT ROW AND interval '30 days' FOLLOWING) > r.rank AS conv
                FROM sales_kpi.stage_event e
                JOIN r ON r.stage_id = e.stage_id
               WHERE (e.entered_at >= $le - 13 * interval '7 days' AND e.entered_at < $le - 6 * interval '7 days')
                  OR (e.entered_at >= $le - 6 * interval '7 days' AND e.entered_at < $le + interval '30 days')
          ), agg AS (
              SELECT stage_id, count(*) FILTER (WHERE latest) AS n, count(*) FILTER (WHERE latest AND conv) AS x,
                     count(*) FILTER (WHERE NOT latest) AS bn, count(*) FILTER (WHERE NOT latest AND conv) AS bx
                FROM (SELECT stage_id, conv, entered_at >= $le - interval '7 days' AS latest
                        FROM entry WHERE rank IS NOT NULL AND entered_at < $le) en
               GROUP BY 1
          ), lim AS (
              SELECT agg.*, x::float8 / nullif(n, 0) AS p, bx::float8 / nullif(bn, 0) AS pbar FROM agg
          ), bands AS (
              SELECT lim.*, greatest(0, pbar - 3 * sqrt(pbar * (1 - pbar) / nullif(n, 0))) AS lcl,
                     least(1, pbar + 3 * sqrt(pbar * (1 - pbar) / nullif(n, 0))) AS ucl
                FROM lim
          )
          SELECT $le - interval '7 days' AS period_start, $le AS period_end, p.pipeline_id, p.name AS pipeline,
                 s.stage_id, s.name AS stage, s.position, coalesce(nx.name, 'won') AS next_stage,
                 x.n AS entered, x.x AS converted, x.p AS conversion_rate, x.bn AS baseline_entered,
                 x.pbar AS baseline_rate, x.lcl AS control_lower, x.ucl AS control_upper,
                 CASE WHEN x.p > x.ucl THEN 'above' WHEN x.p < x.lcl THEN 'below' END AS alert
            FROM bands x
            JOIN r s ON s.stage_id = x.stage_id
            JOIN sales_kpi.pipeline p ON p.pipeline_id = s.pipeline_id
            LEFT JOIN r nx ON nx.pipeline_id = s.pipeline_id AND nx.rank = s.rank + 1"
}
kpi_conversion_alerts() {
    echo "SELECT * FROM sales_kpi.conversion_alerts($as_of)"
}
# every output column but the breakdown; the rates rounded to 12 places
kpi_conversion_alerts_check() {
    echo "SELECT period_start, period_end, pipeline_id, stage_id, position, next_stage, entered, converted,
                 round(conversion_rate::numeric, 12), baseline_entered, round(baseline_rate::numeric, 12),
                 round(control_lower::numeric, 12), round(control_upper::numeric, 12), alert
            FROM sales_kpi.conversion_alerts($as_of)"
}
plain_conversion_alerts_check() {
    echo "SELECT period_start, period_end, pipeline_id, stage_id, position, next_stage, entered, converted,
                 round(conversion_rate::numeric, 12), baseline_entered, round(baseline_rate::numeric, 12),
                 round(control_lower::numeric, 12), round(control_upper::numeric, 12), alert
            FROM ($(plain_conversion_alerts)) x"
}

# stalled_deals(as_of)  (company, lookback 365 days)
# The deals open at as_of (current rows: created by as_of, not closed by
# then, in an open stage) that are over their stage's p75 norm, miss
# required milestones of their stage (no completion by as_of: an anti-join
# probe of the milestone_event key per required milestone) or are past their
# expected close; one scan of the deal table gives both the open deals and
# the deals won in [as_of - 365 days, as_of], whose events (index-only
# probes) give the completed stays in each open stage (each event to the
# deal's next one) and their percentile_disc(0.75).  $1, when given, is the
# query of the norms (stage_id, p75_days) to use instead.
stalled_norms() {
    echo "SELECT st.stage_id, extract(epoch FROM percentile_disc(0.75) WITHIN GROUP (ORDER BY st.d)) / 86400 AS p75_days
            FROM stay st
            JOIN sales_kpi.stage s ON s.stage_id = st.stage_id AND s.kind = 'open'
           WHERE st.d IS NOT NULL
           GROUP BY 1"
}
plain_stalled_deals() {
    local norms=${1:-$(stalled_norms)} day="($as_of AT TIME ZONE 'UTC')::date"
    echo "WITH o AS MATERIALIZED (
              SELECT o.opportunity_id, o.pipeline_id, o.stage_id, o.owner_id, o.expected_close, o.stage_entered_at,
                     o.amount, o.currency, s.kind
                FROM sales_kpi.opportunity o
                JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
               WHERE (s.kind = 'open' AND o.created_at <= $as_of AND (o.closed_at IS NULL OR o.closed_at > $as_of))
                  OR (s.kind = 'won' AND o.closed_at >= $as_of - interval '365 days' AND o.closed_at <= $as_of)
          ), stay AS (
              SELECT e.stage_id,
                     lead(e.entered_at) OVER (PARTITION BY e.opportunity_id ORDER BY e.entered_at, e.stage_event_id)
                         - e.entered_at AS d
                FROM o
                JOIN sales_kpi.stage_event e ON e.opportunity_id = o.opportunity_id AND e.entered_at <= $as_of
               WHERE o.kind = 'won'
          ), norm AS (
              $norms
          ), missing AS (
              SELECT o.opportunity_id, array_agg(m.name ORDER BY m.position, m.milestone_id) AS names
                FROM o
                JOIN sales_kpi.milestone m ON m.stage_id = o.stage_id AND m.required
               WHERE o.kind = 'open'
                 AND NOT EXISTS (SELECT 1 FROM sales_kpi.milestone_event me
                                  WHERE me.opportunity_id = o.opportunity_id AND me.milestone_id = m.milestone_id
                                    AND me.completed_at <= $as_of)
               GROUP BY 1
          )
          SELECT x.* FROM (
              SELECT o.opportunity_id, o.pipeline_id, p.name AS pipeline, o.stage_id, s.name AS stage, o.owner_id,
                     sales_kpi.to_base(o.amount, o.currency, $day) AS amount_base,
                     array_remove(ARRAY[CASE WHEN a.stage_days > n.p75_days THEN 'over_norm' END,
                                        CASE WHEN mi.names IS NOT NULL THEN 'missing_milestones' END,
                                        CASE WHEN o.expected_close < $day THEN 'past_expected_close' END], NULL)
                         AS reasons,
                     o.stage_entered_at, a.stage_days, n.p75_days AS norm_p75_days, mi.names AS missing_milestones,
                     o.expected_close,
                     CASE WHEN o.expected_close < $day THEN ($day - o.expected_close)::float8 END AS overdue_days
                FROM o
               CROSS JOIN LATERAL (SELECT extract(epoch FROM $as_of - o.stage_entered_at)::float8 / 86400 AS stage_days) a
                JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
                JOIN sales_kpi.pipeline p ON p.pipeline_id = o.pipeline_id
                LEFT JOIN norm n ON n.stage_id = o.stage_id
                LEFT JOIN missing mi ON mi.opportunity_id = o.opportunity_id
               WHERE o.kind = 'open') x
           WHERE cardinality(x.reasons) > 0"
}
kpi_stalled_deals() {
    echo "SELECT * FROM sales_kpi.stalled_deals($as_of)"
}
# The identity check takes the p75 norms from the KPI's own stage_norms
# (its percentiles come from a sketch within 1%, see below), so that every
# other part -- the open deals, their stays, milestones, expected close,
# amount, the reasons and which deals are listed -- is compared exactly:
# every output column but the breakdown, stage_days rounded to 9 places.
kpi_stalled_deals_check() {
    echo "SELECT opportunity_id, pipeline_id, pipeline, stage_id, stage, owner_id, amount_base, reasons, stage_entered_at,
                 round(stage_days::numeric, 9), norm_p75_days, missing_milestones, expected_close, overdue_days
            FROM sales_kpi.stalled_deals($as_of)"
}
plain_stalled_deals_check() {
    echo "SELECT opportunity_id, pipeline_id, pipeline, stage_id, stage, owner_id, amount_base, reasons, stage_entered_at,
                 round(stage_days::numeric, 9), norm_p75_days, missing_milestones, expected_close, overdue_days
            FROM ($(plain_stalled_deals "SELECT n.stage_id, n.p75_days FROM sales_kpi.stage_norms($as_of) n")) x"
}
# With the plain query's own norms (percentile_disc), the reasons that do
# not depend on a norm must still agree exactly: the deals flagged for
# missing milestones or a past expected close, with those reasons, the
# milestones and the days overdue.
kpi_stalled_deals_nonorm_check() {
    echo "SELECT opportunity_id, array_remove(reasons, 'over_norm'), missing_milestones, overdue_days
            FROM sales_kpi.stalled_deals($as_of) WHERE reasons <> '{over_norm}'"
}
plain_stalled_deals_nonorm_check() {
    echo "SELECT opportunity_id, array_remove(reasons, 'over_norm'), missing_milestones, overdue_days
            FROM ($(plain_stalled_deals)) x WHERE reasons <> '{over_norm}'"
}
