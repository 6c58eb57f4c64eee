#!/usr/bin/env bash
# Load benchmark (not part of the test suite): builds and installs sales_kpi,
# starts a throwaway cluster and times load_demo (bench/kpi.sh times the KPI
# views).  Prints a Markdown table that the README's performance section
# quotes.
#
#   bench/run.sh [--deals "10000 100000"] [--repeat 3]
source "$(dirname "$0")/../scripts/lib.sh"

deal_counts="10000 100000" repeat=3
while [ $# -gt 0 ]; do
    case "$1" in
        --deals) deal_counts=$2; shift 2 ;;
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

ms() { server_ms bench "$1"; }

echo "| what | rows | best of $repeat (ms) | all runs (ms) |"
echo "|---|---:|---:|---:|"
for n in $deal_counts; do
    runs=()
    for _ in $(seq "$repeat"); do
        runs+=("$(ms "PERFORM * FROM sales_kpi.load_demo($n, 1, '2026-11-01', replace => true)")")
    done
    best=$(printf '%s\n' "${runs[@]}" | sort -n | head -1)
    rows=$(psql -X -qAt -d bench -c "
        SELECT sum((xpath('/row/c/text()', query_to_xml(
                   format('SELECT count(*) AS c FROM sales_kpi.%I', relname), false, true, '')))[1]::text::bigint)
          FROM pg_class WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'r'")
    echo "| \`load_demo($n)\` | $rows | $best | ${runs[*]} |"
done
