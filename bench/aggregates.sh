#!/usr/bin/env bash
# Benchmark of the C aggregates (not part of the test suite).
#
#   bench/aggregates.sh [--rows "1000000 10000000"] [--repeat 3]
#
# For each input size and each aggregate, the best of --repeat runs of:
#   - the aggregate;
#   - SELECT sum(x) over the same rows (the scan limit);
#   - the plain-SQL equivalent;
# serially (max_parallel_workers_per_gather = 0) and with 2 parallel
# workers; plus the size of each summary.  Prints a Markdown table.
source "$(dirname "$0")/../scripts/lib.sh"

row_counts="1000000 10000000" repeat=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) row_counts=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

ensure_packages
build_and_install
start_cluster
trap stop_cluster EXIT
createdb bench
psql -X -q -d bench -c 'CREATE EXTENSION sales_kpi'

# best client-side time of a one-row query, in ms, with the given settings
best_ms() {
    local settings=$1 query=$2 best="" t
    for _ in $(seq "$repeat"); do
        # a failed query is never reported as a measurement
        if ! out=$(psql -X -q -v ON_ERROR_STOP=1 -d bench -c "$settings" -c '\timing on' -c "$query" 2>&1); then
            say "query failed: $query"; echo "$out" >&2; exit 1
        fi
        t=$(printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
    done
    printf '%.0f' "$best"
}

serial='SET max_parallel_workers_per_gather = 0'
parallel='SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0'

# name | aggregate query | scan-limit query | plain-SQL equivalent
cases=(
"weighted_pipeline|SELECT sales_kpi.weighted_pipeline(amount, probability) FROM bench_rows|SELECT sum(amount) FROM bench_rows|SELECT sum(amount * probability) FROM bench_rows"
"winloss_agg + accessors|SELECT sales_kpi.win_rate(w), sales_kpi.wilson_lower(w), sales_kpi.avg_won_amount(w) FROM (SELECT sales_kpi.winloss_agg(won, amount) w FROM bench_rows) s|SELECT sum(amount) FROM bench_rows|SELECT count(*) FILTER (WHERE won), count(*) FILTER (WHERE NOT won), avg(amount) FILTER (WHERE won) FROM bench_rows"
"survival_agg + Aalen-Johansen at 90 days, 36 cohorts|SELECT cohort, sales_kpi.cumulative_win_rate(sales_kpi.survival_agg(age, outcome), '90 days') FROM bench_rows GROUP BY cohort|SELECT cohort, sum(cohort) FROM bench_rows GROUP BY cohort|WITH day AS (SELECT cohort, extract(day FROM age)::int AS t, count(*) FILTER (WHERE outcome = 'won') AS w, count(*) FILTER (WHERE outcome = 'lost') AS l, count(*) AS c FROM bench_rows GROUP BY 1, 2), risk AS (SELECT *, sum(c) OVER (PARTITION BY cohort ORDER BY t DESC) AS n FROM day), km AS (SELECT *, exp(coalesce(sum(ln(nullif(1 - (w + l)::float8 / n, 0))) OVER (PARTITION BY cohort ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS s_before FROM risk) SELECT cohort, sum(s_before * w / n) FILTER (WHERE t <= 90) FROM km GROUP BY cohort"
"survival_agg, against per-row windows|SELECT cohort, sales_kpi.cumulative_win_rate(sales_kpi.survival_agg(age, outcome), '90 days') FROM bench_rows GROUP BY cohort|SELECT cohort, sum(cohort) FROM bench_rows GROUP BY cohort|WITH r AS (SELECT cohort, extract(day FROM age)::int AS t, outcome, count(*) OVER (PARTITION BY cohort ORDER BY extract(day FROM age)::int DESC RANGE UNBOUNDED PRECEDING) AS n FROM bench_rows), day AS (SELECT cohort, t, max(n) AS n, count(*) FILTER (WHERE outcome = 'won') AS w, count(*) FILTER (WHERE outcome = 'lost') AS l FROM r GROUP BY cohort, t), km AS (SELECT *, exp(coalesce(sum(ln(nullif(1 - (w + l)::float8 / n, 0))) OVER (PARTITION BY cohort ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS s_before FROM day) SELECT cohort, sum(s_before * w / n) FILTER (WHERE t <= 90) FROM km GROUP BY cohort"
"funnel_agg + stages|SELECT st.* FROM (SELECT sales_kpi.funnel_agg(pos, won) f FROM bench_rows) x, sales_kpi.stages(x.f) st|SELECT sum(pos) FROM bench_rows|SELECT pos, sum(count(*)) OVER (ORDER BY pos DESC), sum(count(*) FILTER (WHERE won)) OVER (ORDER BY pos DESC) FROM bench_rows GROUP BY pos"
"lift_agg + odds ratio and interval|SELECT sales_kpi.lift(l), sales_kpi.odds_ratio(l), sales_kpi.odds_ratio_lower(l), sales_kpi.odds_ratio_upper(l) FROM (SELECT sales_kpi.lift_agg(won, probability > 0.5) l FROM bench_rows) x|SELECT sum(probability) FROM bench_rows|SELECT count(*) FILTER (WHERE won AND probability > 0.5), count(*) FILTER (WHERE NOT won AND probability > 0.5), count(*) FILTER (WHERE won AND probability <= 0.5), count(*) FILTER (WHERE NOT won AND probability <= 0.5) FROM bench_rows"
"duration_agg + p50/p75/p90|SELECT sales_kpi.median(s), sales_kpi.percentile(s, 0.75), sales_kpi.percentile(s, 0.9) FROM (SELECT sales_kpi.duration_agg(d) s FROM bench_rows) x|SELECT sum(d) FROM bench_rows|SELECT percentile_cont(ARRAY[0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY d) FROM bench_rows"
)

for n in $row_counts; do
    say "building $n rows"
    psql -X -q -v ON_ERROR_STOP=1 -d bench <<SQL
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows AS
SELECT g AS id,
       round((power(sales_kpi.demo_random(7, g * 4), 3) * 200000)::numeric, 2) AS amount,
       round(sales_kpi.demo_random(7, g * 4 + 1)::numeric, 2) AS probability,
       sales_kpi.demo_random(7, g * 4 + 2) < 0.3 AS won,
       -- log-uniform from 1 s to 30 days (stage durations); short enough
       -- that sum(d), the scan limit, stays within the interval range
       make_interval(secs => exp(sales_kpi.demo_random(7, g * 4 + 3) * ln(2592000.0))) AS d,
       -- cohorts: 36 creation months, ages up to a year, a fifth still open
       (g % 36) AS cohort,
       1 + floor(power(sales_kpi.demo_random(9, g), 2) * 6)::int AS pos,
       make_interval(days => floor(power(sales_kpi.demo_random(8, g * 2), 2) * 365)::int) AS age,
       CASE WHEN sales_kpi.demo_random(8, g * 2 + 1) < 0.2 THEN 'open'
            WHEN sales_kpi.demo_random(8, g * 2 + 1) < 0.45 THEN 'won' ELSE 'lost' END AS outcome
  FROM generate_series(1, $n) g;
VACUUM ANALYZE bench_rows;
SQL
    echo
    echo "### $n rows"
    echo
    echo "| aggregate | mode | aggregate (ms) | sum(x) scan limit (ms) | ratio to scan | plain SQL (ms) | plain SQL / aggregate |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for c in "${cases[@]}"; do
        IFS='|' read -r name agg scan plain <<<"$c"
        for mode in serial parallel; do
            settings=${!mode}
            a=$(best_ms "$settings" "$agg")
            s=$(best_ms "$settings" "$scan")
            p=$(best_ms "$settings" "$plain")
            echo "| $name | $mode | $a | $s | $(echo "scale=2; $a / $s" | bc) | $p | $(echo "scale=1; $p / $a" | bc) |"
        done
    done
done

echo
echo "### Summary sizes (bytes, pg_column_size, over the last input)"
echo
psql -X -qAt -d bench -F ' | ' -c "
SELECT '| weighted_sum', pg_column_size(sales_kpi.weighted_pipeline_trans('{\"v\":1,\"n\":0,\"sum\":\"0\"}', 1, 0.5)) || ' |'
UNION ALL SELECT '| winloss', pg_column_size(sales_kpi.winloss_agg(won, amount)) || ' |' FROM bench_rows
UNION ALL SELECT '| duration_summary (in memory)', pg_column_size(sales_kpi.duration_agg(d)) || ' |' FROM bench_rows
UNION ALL SELECT '| survival (in memory)', pg_column_size(sales_kpi.survival_agg(age, outcome)) || ' |' FROM bench_rows
UNION ALL SELECT '| funnel (in memory)', pg_column_size(sales_kpi.funnel_agg(pos, won)) || ' |' FROM bench_rows
UNION ALL SELECT '| lift', pg_column_size(sales_kpi.lift_agg(won, probability > 0.5)) || ' |' FROM bench_rows"
