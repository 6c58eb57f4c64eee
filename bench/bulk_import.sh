#!/usr/bin/env bash
# Bulk import benchmark (not part of the test suite).  For each size it
# makes the demo data, copies it into plain staging tables (what a CRM's
# ETL would have), empties the extension's deal tables and writes
# everything back the way an ETL job does: one plain INSERT ... SELECT per
# table, with every trigger on.
#
#   opportunity          the deals with their current fields (each gets its
#                        creation snapshot from the trigger)
#   opportunity_history  every snapshot (the creation snapshots replace the
#                        trigger's; the deals take their newest snapshot)
#   milestone_event      milestones reached (before the moves they gate)
#   stage_event          the whole stage history (the deals take their
#                        current stage from it)
#   activity             calls, emails, meetings...
#
# It checks that every table written equals the staging copy (row count and
# md5 of all rows) and that check_consistency() finds nothing, and prints a
# Markdown table: seconds per phase, microseconds per deal, and the cost per
# deal relative to the smallest size (linear writes keep it near 1).
# Then, on the largest size, it times move_stage called by pgbench from one
# client, one call per transaction, on random open deals, and prints the
# median and the 95th percentile.
#
#   bench/bulk_import.sh [--deals "10000 100000 1000000"] [--seed 1]
#                        [--until 2026-10-31] [--moves 2000] [--keep]
source "$(dirname "$0")/../scripts/lib.sh"

sizes="10000 100000" seed=1 until=2026-10-31 moves=2000 keep=no
while [ $# -gt 0 ]; do
    case "$1" in
        --deals) sizes=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --until) until=$2; shift 2 ;;
        --moves) moves=$2; shift 2 ;;
        --keep) keep=yes; shift ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

ensure_packages
build_and_install
start_cluster
work=$(mktemp -d /tmp/sales_kpi_import.XXXXXX)
chmod 777 "$work"
if [ "$keep" = yes ]; then
    trap 'say "the cluster keeps running: psql -h $CLUSTER_DIR -U postgres"' EXIT
else
    trap 'stop_cluster; rm -rf "$work"' EXIT
fi

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
seconds_of() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >"$work/cmd.out" 2>&1 || { cat "$work/cmd.out" >&2; return 1; }
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}
tables="opportunity opportunity_history milestone_event stage_event activity"
fingerprint() {
    local t
    for t in $tables; do
        echo "$t $(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
                             FROM $2.$t t")"
    done
}
phase() {
    seconds_of psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

status=0
rows=()
base_cost=""
last_db=""
for n in $sizes; do
    db=import_$n
    createdb $db
    q $db "CREATE EXTENSION sales_kpi"
    say "$n deals: making the demo data and its staging copy"
    q $db "SELECT count(*) FROM sales_kpi.load_demo($n, $seed, '$until')" >/dev/null 2>&1
    q $db "CREATE SCHEMA etl"
    for t in $tables; do q $db "CREATE TABLE etl.$t AS SELECT * FROM sales_kpi.$t"; done
    q $db "TRUNCATE sales_kpi.opportunity, sales_kpi.opportunity_history, sales_kpi.milestone_event,
                    sales_kpi.stage_event, sales_kpi.activity CASCADE"
    q $db "VACUUM ANALYZE"
    deals=$(q $db "SELECT count(*) FROM etl.opportunity")
    events=$(q $db "SELECT count(*) FROM etl.stage_event")
    snaps=$(q $db "SELECT count(*) FROM etl.opportunity_history")
    acts=$(q $db "SELECT count(*) FROM etl.activity")

    say "$n deals: importing"
    t_opp=$(phase $db "INSERT INTO sales_kpi.opportunity
        (opportunity_id, pipeline_id, account_id, owner_id, name, kind, amount, currency, source,
         competitor, created_at, expected_close, lost_reason, forecast_category, product)
        SELECT opportunity_id, pipeline_id, account_id, owner_id, name, kind, amount, currency, source,
               competitor, created_at, expected_close, lost_reason, forecast_category, product
          FROM etl.opportunity")
    t_hist=$(phase $db "INSERT INTO sales_kpi.opportunity_history SELECT * FROM etl.opportunity_history")
    t_ms=$(phase $db "INSERT INTO sales_kpi.milestone_event SELECT * FROM etl.milestone_event")
    t_ev=$(phase $db "INSERT INTO sales_kpi.stage_event SELECT * FROM etl.stage_event")
    t_act=$(phase $db "INSERT INTO sales_kpi.activity SELECT * FROM etl.activity")

    if [ "$(fingerprint $db sales_kpi)" = "$(fingerprint $db etl)" ]; then same=yes; else same=NO; status=1; fi
    bad=$(q $db "SELECT count(*) FROM sales_kpi.check_consistency()")
    [ "$bad" = 0 ] || status=1
    total=$(awk -v a="$t_opp" -v b="$t_hist" -v c="$t_ms" -v d="$t_ev" -v e="$t_act" 'BEGIN { printf "%.2f", a + b + c + d + e }')
    cost=$(awk -v t="$total" -v n="$deals" 'BEGIN { printf "%.1f", t * 1e6 / n }')
    [ -n "$base_cost" ] || base_cost=$cost
    rel=$(awk -v c="$cost" -v b="$base_cost" 'BEGIN { printf "%.2f", c / b }')
    rows+=("| $deals | $events | $snaps | $acts | $t_opp | $t_hist | $t_ms | $t_ev | $t_act | $total | $cost | $rel | $same | $bad |")
    [ -n "$last_db" ] && [ "$keep" != yes ] && dropdb $last_db
    last_db=$db
done

echo
echo "| deals | stage events | snapshots | activities | opportunity s | history s | milestones s | stage events s | activities s | total s | µs per deal | per deal vs smallest | tables equal | consistency findings |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
printf '%s\n' "${rows[@]}"

# move_stage from a client, one call per transaction, on the largest
# database
bash "$(dirname "$0")/move_stage.sh" --database "$last_db" --moves "$moves" || status=1
[ "$keep" = yes ] || dropdb $last_db
exit $status
