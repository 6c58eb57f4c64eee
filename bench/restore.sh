#!/usr/bin/env bash
# Backup and restore benchmark (not part of the test suite;
# test/dump_restore.sh is its small version).  For each size it loads the
# demo data, dumps it with pg_dump -Fc and restores the dump two ways:
#
#   restore  pg_restore into a fresh database, no flags: what a DBA runs;
#   floor    a data-only pg_restore --disable-triggers into a database where
#            CREATE EXTENSION already ran: the same rows, no trigger work.
#
# (pg_restore -j cannot load the extension's tables: their foreign keys
# exist before the data, and pg_dump orders their data for them but does
# not tell parallel jobs that order.  See the README's Backup and restore.)
#
# It checks that every table of the restored database equals the source
# (row count and an md5 of all rows) and that check_consistency() finds
# nothing, and prints a Markdown table: seconds for the load, the dump, the
# restore and the floor, and the restore's ratio to the floor.  Exits
# non-zero when a restore differs from its source.
#
#   bench/restore.sh [--deals "10000 100000 1000000"] [--seed 1]
#                    [--until 2026-10-31] [--keep]
source "$(dirname "$0")/../scripts/lib.sh"

sizes="10000 100000" seed=1 until=2026-10-31 keep=no
while [ $# -gt 0 ]; do
    case "$1" in
        --deals) sizes=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --until) until=$2; shift 2 ;;
        --keep) keep=yes; shift ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

ensure_packages
build_and_install
start_cluster
work=$(mktemp -d /tmp/sales_kpi_restore.XXXXXX)
chmod 755 "$work"
if [ "$keep" = yes ]; then
    trap 'say "the cluster keeps running: psql -h $CLUSTER_DIR -U postgres"' EXIT
else
    trap 'stop_cluster; rm -rf "$work"' EXIT
fi

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
# seconds (to the millisecond) a command takes
seconds_of() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >"$work/cmd.out" 2>&1 || { cat "$work/cmd.out" >&2; return 1; }
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'
}
fingerprint() {
    local t
    for t in $(q "$1" "SELECT relname FROM pg_class
                        WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'r' ORDER BY relname"); do
        echo "$t $(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
                             FROM sales_kpi.$t t")"
    done
}

status=0
rows=()
for n in $sizes; do
    src=src_$n
    createdb $src
    q $src "CREATE EXTENSION sales_kpi"
    say "$n deals: loading"
    load_s=$(seconds_of psql -X -q -v ON_ERROR_STOP=1 -d $src -c "SELECT count(*) FROM sales_kpi.load_demo($n, $seed, '$until')")
    deals=$(q $src "SELECT count(*) FROM sales_kpi.opportunity")
    history=$(q $src "SELECT (SELECT count(*) FROM sales_kpi.stage_event) + (SELECT count(*) FROM sales_kpi.opportunity_history)")
    say "$n deals: dumping"
    dump_s=$(seconds_of pg_dump -Fc -d $src -f "$work/$n.dump")
    size_mb=$(( $(stat -c %s "$work/$n.dump") / 1048576 ))

    say "$n deals: restoring"
    createdb restore_$n
    restore_s=$(seconds_of pg_restore --exit-on-error -d restore_$n "$work/$n.dump")

    say "$n deals: the floor (data only, triggers disabled)"
    createdb floor_$n
    q floor_$n "CREATE EXTENSION sales_kpi"
    floor_s=$(seconds_of pg_restore --exit-on-error --data-only --disable-triggers -d floor_$n "$work/$n.dump")

    say "$n deals: comparing"
    want=$(fingerprint $src)
    verdict=equal
    for db in restore_$n; do
        if [ "$(fingerprint $db)" != "$want" ]; then
            verdict="$db DIFFERS"; status=1
        elif [ "$(q $db "SELECT count(*) FROM sales_kpi.check_consistency()")" != 0 ]; then
            verdict="$db: check_consistency findings"; status=1
        fi
    done
    ratio=$(awk -v a="$restore_s" -v b="$floor_s" 'BEGIN { printf "%.2f", a / b }')
    rows+=("| $deals | $history | $size_mb MB | $load_s | $dump_s | $restore_s | $floor_s | $ratio | $verdict |")
    for db in $src restore_$n floor_$n; do dropdb $db; done
    rm -f "$work/$n.dump"
done

echo
echo "| deals | history rows | dump | load_demo s | pg_dump -Fc s | pg_restore s | floor s | restore / floor | tables |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
exit $status
