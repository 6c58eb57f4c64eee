# Plain-SQL formulations sourced by bench/kpi_engine.sh: forecast_accuracy and
# org_attainment; as pipeline_value.sh.

# forecast_accuracy('2024-01-01', '2026-10-01', 'quarter', 'rep', as_of)
#
# Per rep NAME (the KPI's dimension value: reps who share a name are one
# row, their commits and bookings summed) and fiscal quarter 2024Q1-2026Q3:
# the commit = the newest 'commit' forecast_submission of each rep for
# exactly the quarter's dates submitted by the quarter start (cutoff 0) and
# by as_of, summed over the name's reps (NULL when none submitted), with the
# latest submission time; bookings = won deals closed in the quarter (owner
# at the close = current owner, amount at the close-date rate); accuracy =
# 1 - |commit - bookings| / bookings and bias = (commit - bookings) /
# bookings for quarters ended by as_of with bookings > 0; their means per
# name over the quarters (in quarter order), the count of measured quarters,
# and the calibrated commit of quarters not ended.  Every name with a commit
# or a booking gets all 11 quarters.  The deals are read in one pass,
# summed per owner and quarter (width_bucket over the quarter starts, no
# per-row time-zone arithmetic), then named; the commits in one pass of
# forecast_submission hash-joined to the 11 quarters on their dates.  (The
# names are taken DISTINCT over a UNION ALL so that the planner guesses 200
# of them rather than one per row: the plan then stays under
# jit_above_cost, and JIT compilation, ~80 ms here, is not paid.)
plain_forecast_accuracy() {
    echo "WITH q AS (
              SELECT i, timestamptz '2024-01-01' + make_interval(months => 3 * i) AS ps
                FROM generate_series(0, 10) i
          ), booked AS (
              SELECT coalesce(r.name, '(none)') AS rep, q.ps, sum(b.bookings) AS bookings
                FROM (SELECT o.owner_id,
                             width_bucket(o.closed_at, '{2024-01-01,2024-04-01,2024-07-01,2024-10-01,2025-01-01,2025-04-01,2025-07-01,2025-10-01,2026-01-01,2026-04-01,2026-07-01}'::timestamptz[]) - 1 AS i,
                             sum(sales_kpi.to_base(o.amount, o.currency, (o.closed_at AT TIME ZONE 'UTC')::date)) AS bookings
                        FROM sales_kpi.opportunity o
                        JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind = 'won'
                       WHERE o.closed_at >= timestamptz '2024-01-01' AND o.closed_at < timestamptz '2026-10-01'
                         AND o.closed_at <= $as_of
                       GROUP BY 1, 2) b
                JOIN q ON q.i = b.i
                LEFT JOIN sales_kpi.rep r ON r.rep_id = b.owner_id
               GROUP BY 1, 2
          ), committed AS (
              SELECT r.name AS rep, c.ps, sum(c.amount) AS commit_amount, max(c.submitted_at) AS submitted_at
                FROM (SELECT DISTINCT ON (f.rep_id, q.ps) f.rep_id, q.ps, f.amount, f.submitted_at
                        FROM sales_kpi.forecast_submission f
                        JOIN q ON f.period_start = q.ps::date AND f.period_end = (q.ps + interval '3 months')::date
                              AND f.submitted_at <= q.ps
                       WHERE f.category = 'commit' AND f.submitted_at <= $as_of
                       ORDER BY f.rep_id, q.ps, f.submitted_at DESC) c
                JOIN sales_kpi.rep r ON r.rep_id = c.rep_id
               GROUP BY 1, 2
          ), scored AS (
              SELECT n.rep, q.ps, q.ps + interval '3 months' AS pe, q.ps + interval '3 months' <= $as_of AS complete,
                     c.commit_amount, c.submitted_at, coalesce(b.bookings, 0) AS bookings,
                     CASE WHEN q.ps + interval '3 months' <= $as_of AND b.bookings > 0
                          THEN 1 - abs(c.commit_amount - b.bookings)::float8 / b.bookings::float8 END AS accuracy,
                     CASE WHEN q.ps + interval '3 months' <= $as_of AND b.bookings > 0
                          THEN (c.commit_amount - b.bookings)::float8 / b.bookings::float8 END AS bias
                FROM (SELECT DISTINCT u.rep FROM (SELECT rep FROM booked UNION ALL SELECT rep FROM committed) u) n
               CROSS JOIN q
                LEFT JOIN booked b ON b.rep = n.rep AND b.ps = q.ps
                LEFT JOIN committed c ON c.rep = n.rep AND c.ps = q.ps
          ), summarized AS (
              SELECT s.*, avg(s.accuracy) OVER w AS mean_accuracy, avg(s.bias) OVER w AS mean_bias,
                     count(s.bias) OVER w AS periods_measured
                FROM scored s
              WINDOW w AS (PARTITION BY s.rep ORDER BY s.ps ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
          )
          SELECT m.*, CASE WHEN NOT m.complete AND 1 + m.mean_bias > 0
                           THEN round(m.commit_amount / (1 + m.mean_bias)::numeric, 2) END AS calibrated_commit
            FROM summarized m"
}
kpi_forecast_accuracy() {
    echo "SELECT * FROM sales_kpi.forecast_accuracy('2024-01-01', '2026-10-01', 'quarter', 'rep', $as_of)"
}
kpi_forecast_accuracy_check() {
    echo "SELECT dimension_value, period_start, period_complete, commit_amount, commit_submitted_at, round(bookings, 4),
                 round(accuracy::numeric, 9), round(bias::numeric, 9), round(mean_accuracy::numeric, 9),
                 round(mean_bias::numeric, 9), periods_measured, calibrated_commit
            FROM sales_kpi.forecast_accuracy('2024-01-01', '2026-10-01', 'quarter', 'rep', $as_of)"
}
plain_forecast_accuracy_check() {
    echo "SELECT rep, ps, complete, commit_amount, submitted_at, round(bookings, 4),
                 round(accuracy::numeric, 9), round(bias::numeric, 9), round(mean_accuracy::numeric, 9),
                 round(mean_bias::numeric, 9), periods_measured, calibrated_commit
            FROM ($(plain_forecast_accuracy)) x"
}

# org_attainment('2025-11-01', '2026-11-01', dimension, as_of): the MRR
# movements shared by both dimensions.
#
# One ordered pass over recurring_revenue (primary key order, no sort, no
# hash): for each account-month of Oct 2025 - Oct 2026, the previous
# month's MRR (lag, 0 when that month has no row) and whether the next
# month has no row (lead).  Kept: the months Nov 2025 - Oct 2026 begun by
# as_of whose MRR differs from the previous month's (a movement), and the
# rows followed by a gap (churn of their MRR in the month after, when that
# month is in the period, begun by as_of and not after the newest month in
# recurring_revenue).  About 97,000 of the 646,000 rows read, materialized
# for the parts below.
plain_org_mrr_rows() {
    echo "SELECT x.account_id, x.month, x.mrr, x.prev_mrr,
                 x.month >= date '2025-11-01' AND x.month <= ($as_of)::date AND x.mrr <> x.prev_mrr AS moved,
                 x.gap_after AND x.mrr > 0 AND x.month < date '2026-10-01' AND x.month < ($as_of)::date
                     AND x.month < (SELECT max(month) FROM sales_kpi.recurring_revenue) AS churn_after
            FROM (SELECT rr.account_id, rr.month, rr.mrr,
                         CASE WHEN lag(rr.month) OVER acct = (rr.month - interval '1 month')::date
                              THEN lag(rr.mrr) OVER acct ELSE 0 END AS prev_mrr,
                         lead(rr.month) OVER acct IS DISTINCT FROM (rr.month + interval '1 month')::date AS gap_after
                    FROM sales_kpi.recurring_revenue rr
                   WHERE rr.month >= date '2025-10-01' AND rr.month <= date '2026-10-01'
                  WINDOW acct AS (PARTITION BY rr.account_id ORDER BY rr.month)) x
           WHERE (x.month >= date '2025-11-01' AND x.month <= ($as_of)::date AND x.mrr <> x.prev_mrr)
              OR (x.gap_after AND x.mrr > 0 AND x.month < date '2026-10-01' AND x.month < ($as_of)::date)"
}

# org_attainment(..., 'team', as_of): per team, the new-business bookings
# (won deals of kind new closed in the period, amount at the close-date
# rate, to the team of the owner at the close), the MRR movements of the
# period's months classified against the previous month (expansion,
# reactivation = up from 0 for an account with an earlier positive month,
# contraction, churn = down to 0 or a month without a row; 'new' revenue
# counts nowhere), each credited to the team of the owner of the account's
# newest deal won before the end of the month ('(none)' without one), the
# summed prorated quota of the team's reps (by days) and net new revenue /
# quota.  Reactivation is one primary-key probe per movement up from 0
# (23,000 of them, against 1.1 million rows to hash); the crediting is one
# hash join of the movements to the won deals by account, the newest
# before the month's end kept (DISTINCT ON); everything is summed per owner
# before the team is looked up.  The bookings read the deals in one
# sequential pass (the OFFSET 0 keeps the planner from reading a third of
# the table through the closed_at index, a heap visit per row: 2x slower).
plain_org_attainment_team() {
    echo "WITH mv AS MATERIALIZED (
              $(plain_org_mrr_rows)
          ), amounts AS (
              SELECT m.account_id, m.month,
                     CASE WHEN m.mrr > m.prev_mrr THEN m.mrr - m.prev_mrr ELSE 0 END AS expansion, 0 AS reactivation,
                     CASE WHEN m.mrr > 0 AND m.mrr < m.prev_mrr THEN m.prev_mrr - m.mrr ELSE 0 END AS contraction,
                     CASE WHEN m.mrr = 0 THEN m.prev_mrr ELSE 0 END AS churn
                FROM mv m
               WHERE m.moved AND m.prev_mrr > 0
              UNION ALL
              SELECT m.account_id, m.month, 0,
                     CASE WHEN EXISTS (SELECT 1 FROM sales_kpi.recurring_revenue h
                                        WHERE h.account_id = m.account_id AND h.month < m.month AND h.mrr > 0)
                          THEN m.mrr ELSE 0 END,
                     0, 0
                FROM mv m
               WHERE m.moved AND m.prev_mrr = 0
              UNION ALL
              SELECT m.account_id, (m.month + interval '1 month')::date, 0, 0, 0, m.mrr
                FROM mv m
               WHERE m.churn_after
          ), by_owner AS (
              SELECT c.owner_id, sum(c.expansion) AS expansion, sum(c.reactivation) AS reactivation,
                     sum(c.contraction) AS contraction, sum(c.churn) AS churn
                FROM (SELECT DISTINCT ON (a.account_id, a.month) o.owner_id, a.expansion, a.reactivation,
                             a.contraction, a.churn
                        FROM amounts a
                        LEFT JOIN (sales_kpi.opportunity o
                                   JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind = 'won')
                               ON o.account_id = a.account_id
                              AND o.closed_at < (a.month + interval '1 month')::timestamptz
                              AND o.closed_at <= $as_of
                       ORDER BY a.account_id, a.month, o.closed_at DESC, o.opportunity_id DESC) c
               GROUP BY 1
          ), mrr AS (
              SELECT coalesce(r.team, '(none)') AS team, sum(b.expansion) AS expansion,
                     sum(b.reactivation) AS reactivation, sum(b.contraction) AS contraction, sum(b.churn) AS churn
                FROM by_owner b LEFT JOIN sales_kpi.rep r ON r.rep_id = b.owner_id
               GROUP BY 1
          ), booked AS (
              SELECT coalesce(r.team, '(none)') AS team, sum(b.bookings) AS bookings
                FROM (SELECT o.owner_id,
                             sum(sales_kpi.to_base(o.amount, o.currency, (o.closed_at AT TIME ZONE 'UTC')::date)) AS bookings
                        FROM (SELECT owner_id, stage_id, kind, amount, currency, closed_at
                                FROM sales_kpi.opportunity OFFSET 0) o
                        JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind = 'won'
                       WHERE o.kind = 'new' AND o.closed_at >= timestamptz '2025-11-01'
                         AND o.closed_at < timestamptz '2026-11-01' AND o.closed_at <= $as_of
                       GROUP BY 1) b
                LEFT JOIN sales_kpi.rep r ON r.rep_id = b.owner_id
               GROUP BY 1
          ), target AS (
              SELECT r.team, sum(q.amount * (least(q.period_end, date '2026-11-01') - greatest(q.period_start, date '2025-11-01'))
                                 / (q.period_end - q.period_start)) AS quota
                FROM sales_kpi.quota q JOIN sales_kpi.rep r ON r.rep_id = q.rep_id
               WHERE q.period_start < date '2026-11-01' AND q.period_end > date '2025-11-01'
               GROUP BY 1
          )
          SELECT k.team, coalesce(b.bookings, 0) AS bookings, coalesce(m.expansion, 0) AS expansion,
                 coalesce(m.reactivation, 0) AS reactivation, coalesce(m.contraction, 0) AS contraction,
                 coalesce(m.churn, 0) AS churn,
                 coalesce(b.bookings, 0) + coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0) AS net_new_revenue,
                 t.quota,
                 ((coalesce(b.bookings, 0) + coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0))
                  / nullif(t.quota, 0))::float8 AS attainment
            FROM (SELECT team FROM booked UNION SELECT team FROM mrr UNION SELECT team FROM target) k
            LEFT JOIN booked b ON b.team = k.team
            LEFT JOIN mrr m ON m.team = k.team
            LEFT JOIN target t ON t.team = k.team"
}
kpi_org_attainment_team() {
    echo "SELECT * FROM sales_kpi.org_attainment('2025-11-01', '2026-11-01', 'team', $as_of)"
}
kpi_org_attainment_team_check() {
    echo "SELECT dimension_value, round(new_business_bookings, 4), expansion_mrr, reactivation_mrr, contraction_mrr,
                 churn_mrr, round(net_new_revenue, 4), round(quota, 4), round(attainment::numeric, 9)
            FROM sales_kpi.org_attainment('2025-11-01', '2026-11-01', 'team', $as_of)"
}
plain_org_attainment_team_check() {
    echo "SELECT team, round(bookings, 4), expansion, reactivation, contraction, churn, round(net_new_revenue, 4),
                 round(quota, 4), round(attainment::numeric, 9)
            FROM ($(plain_org_attainment_team)) x"
}

# org_attainment(..., 'company', as_of): the same year for the whole
# company, one row: new-business bookings, the four MRR sums straight from
# the ordered pass (no crediting: no join to the deals), reactivation by a
# probe per movement up from 0, the quota of every quota row prorated by
# days (quota.rep_id always names a rep), attainment.
plain_org_attainment_company() {
    echo "WITH mv AS MATERIALIZED (
              $(plain_org_mrr_rows)
          ), mrr AS (
              SELECT coalesce(sum(m.mrr - m.prev_mrr) FILTER (WHERE m.moved AND m.prev_mrr > 0 AND m.mrr > m.prev_mrr), 0) AS expansion,
                     coalesce(sum(m.prev_mrr - m.mrr) FILTER (WHERE m.moved AND m.mrr > 0 AND m.mrr < m.prev_mrr), 0) AS contraction,
                     coalesce(sum(m.prev_mrr) FILTER (WHERE m.moved AND m.mrr = 0), 0)
                       + coalesce(sum(m.mrr) FILTER (WHERE m.churn_after), 0) AS churn
                FROM mv m
          ), react AS (
              SELECT coalesce(sum(m.mrr), 0) AS reactivation
                FROM mv m
               WHERE m.moved AND m.prev_mrr = 0
                 AND EXISTS (SELECT 1 FROM sales_kpi.recurring_revenue h
                              WHERE h.account_id = m.account_id AND h.month < m.month AND h.mrr > 0)
          ), booked AS (
              SELECT coalesce(sum(sales_kpi.to_base(o.amount, o.currency, (o.closed_at AT TIME ZONE 'UTC')::date)), 0) AS bookings
                FROM (SELECT stage_id, kind, amount, currency, closed_at FROM sales_kpi.opportunity OFFSET 0) o
                JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind = 'won'
               WHERE o.kind = 'new' AND o.closed_at >= timestamptz '2025-11-01'
                 AND o.closed_at < timestamptz '2026-11-01' AND o.closed_at <= $as_of
          ), target AS (
              SELECT sum(q.amount * (least(q.period_end, date '2026-11-01') - greatest(q.period_start, date '2025-11-01'))
                         / (q.period_end - q.period_start)) AS quota
                FROM sales_kpi.quota q
               WHERE q.period_start < date '2026-11-01' AND q.period_end > date '2025-11-01'
          )
          SELECT 'all' AS dimension_value, b.bookings, m.expansion, r.reactivation, m.contraction, m.churn,
                 b.bookings + m.expansion + r.reactivation - m.contraction - m.churn AS net_new_revenue, t.quota,
                 ((b.bookings + m.expansion + r.reactivation - m.contraction - m.churn) / nullif(t.quota, 0))::float8 AS attainment
            FROM booked b, mrr m, react r, target t"
}
kpi_org_attainment_company() {
    echo "SELECT * FROM sales_kpi.org_attainment('2025-11-01', '2026-11-01', 'company', $as_of)"
}
kpi_org_attainment_company_check() {
    echo "SELECT dimension_value, round(new_business_bookings, 4), expansion_mrr, reactivation_mrr, contraction_mrr,
                 churn_mrr, round(net_new_revenue, 4), round(quota, 4), round(attainment::numeric, 9)
            FROM sales_kpi.org_attainment('2025-11-01', '2026-11-01', 'company', $as_of)"
}
plain_org_attainment_company_check() {
    echo "SELECT dimension_value, round(bookings, 4), expansion, reactivation, contraction, churn,
                 round(net_new_revenue, 4), round(quota, 4), round(attainment::numeric, 9)
            FROM ($(plain_org_attainment_company)) x"
}
