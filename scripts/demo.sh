#!/usr/bin/env bash
# The main job: build and install sales_kpi, start a throwaway cluster, load
# the demo data and print a first KPI overview.
#
#   scripts/demo.sh [--deals N] [--seed S] [--until YYYY-MM-DD] [--keep]
#
# --keep leaves the cluster running and prints how to connect and stop it.
source "$(dirname "$0")/lib.sh"

deals=10000 seed=1 until=$(date -u +%F) keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --deals) deals=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --until) until=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

ensure_packages
build_and_install
start_cluster
if [ $keep -eq 0 ]; then trap stop_cluster EXIT; fi

DB=sales_kpi_demo
createdb "$DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c 'CREATE EXTENSION sales_kpi'
say "loading demo data: $deals opportunities, seed $seed, until $until"
psql -X -v ON_ERROR_STOP=1 -d "$DB" \
     -v deals="$deals" -v seed="$seed" -v until="$until" <<'SQL'
\timing on
SELECT * FROM sales_kpi.load_demo(:deals, :seed, :'until');
\timing off
\echo
\echo '== Stage pipeline value (open deals now, base currency) =='
SELECT pipeline, position, stage, deals,
       round(amount) AS amount, round(weighted_amount) AS weighted_amount
  FROM sales_kpi.stage_pipeline_value
 ORDER BY pipeline, position;
\echo '== Pipeline totals =='
SELECT pipeline, sum(deals) AS open_deals, round(sum(amount)) AS amount,
       round(sum(weighted_amount)) AS weighted_amount
  FROM sales_kpi.stage_pipeline_value
 GROUP BY pipeline ORDER BY pipeline;
\echo '== Win rate by team, last fiscal quarter, with 95% Wilson interval =='
SELECT dimension_value AS team, closed, won, round(win_rate::numeric, 3) AS win_rate,
       round(win_rate_lower::numeric, 3) AS lower, round(win_rate_upper::numeric, 3) AS upper,
       round(won_amount) AS won_amount
  FROM sales_kpi.win_rate(sales_kpi.period_start(now() - interval '3 months'),
                          sales_kpi.period_start(now()), 'team')
 ORDER BY dimension_value;
\echo '== Stage conversion, deals created in the last year =='
SELECT pipeline, step, stage, reached, round(conversion_rate::numeric, 3) AS next_step,
       round(win_rate::numeric, 3) AS stage_to_win
  FROM sales_kpi.stage_conversion(now() - interval '1 year', now())
 ORDER BY pipeline, step;
\echo '== Forecast for this fiscal quarter (stage / milestone / historical weighting) =='
SELECT round(bookings) AS bookings, round(stage_forecast) AS stage, round(milestone_forecast) AS milestone,
       round(historical_forecast) AS historical, round(forecast_lower) AS low, round(forecast_upper) AS high,
       round(commit) AS commit, round(best_case) AS best_case
  FROM sales_kpi.forecast;
\echo '== Quota attainment this fiscal quarter, by team =='
SELECT dimension_value AS team, reps_with_quota, round(bookings) AS bookings, round(quota) AS quota,
       round(attainment::numeric, 3) AS attainment, round(at_quota_rate::numeric, 3) AS at_quota
  FROM sales_kpi.quota_attainment(dimension => 'team')
 ORDER BY dimension_value;
\echo '== Pipeline flow since the start of the quarter =='
SELECT step, category, deals, round(amount) AS amount FROM sales_kpi.pipeline_flow ORDER BY step;
\echo '== Data quality findings =='
SELECT table_name, rule, count(*) AS findings
  FROM sales_kpi.data_quality_findings GROUP BY 1, 2 ORDER BY 1, 2;
\echo '== Win rate by rep (deals closed so far) =='
SELECT rep, team, won, lost, round(win_rate::numeric, 3) AS win_rate, round(won_amount) AS won_amount
  FROM sales_kpi.win_rate_by_rep
 WHERE won + lost > 0
 ORDER BY win_rate DESC, rep
 LIMIT 10;
SQL

if [ $keep -eq 1 ]; then
    cat <<MSG

The cluster keeps running. Connect with:
    psql -h $CLUSTER_DIR -U postgres $DB
Stop it and remove its files with:
    runuser -u postgres -- $PG_BIN/pg_ctl -D $CLUSTER_DIR/data stop && rm -rf $CLUSTER_DIR
MSG
fi
