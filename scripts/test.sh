#!/usr/bin/env bash
# Runs every test: builds and installs sales_kpi, starts a throwaway
# cluster, then runs pg_regress (sql/ + expected/), the pgTAP suites (test/*.sql
# with pg_prove) and the shell TAP checks (test/*.sh), and prints one
# "N passed, N failed" line.  Exits non-zero on any failure.
source "$(dirname "$0")/lib.sh"

ensure_packages
build_and_install
start_cluster
log_dir=$(mktemp -d /tmp/sales_kpi_test.XXXXXX)
trap 'stop_cluster; rm -rf "$log_dir"' EXIT
cd "$SALES_KPI_ROOT"

passed=0 failed=0
# tally the TAP / pg_regress result lines of a log file into ok, bad and the totals
tally() {
    ok=$(grep -cE '^ *ok [0-9]+|\.\.\. ok ' "$1" || true)
    bad=$(grep -cE '^ *not ok [0-9]+|\.\.\. FAILED' "$1" || true)
    passed=$((passed + ok)) failed=$((failed + bad))
}

# unit tests of the pure C files (test/unit/NAME_test.c tests src/NAME.c)
say "C unit tests"
unit_dir=$(mktemp -d)
for t in test/unit/*_test.c; do
    name=$(basename "$t" _test.c)
    set +e
    gcc -std=c99 -O2 -Wall -Wextra -Werror -Isrc "$t" "src/$name.c" -lm -o "$unit_dir/$name" \
        && "$unit_dir/$name" >$log_dir/unit.log 2>&1
    rc=$?
    set -e
    grep -vE '^ok [0-9]+' $log_dir/unit.log || true
    tally $log_dir/unit.log
    echo "$name: $ok passed, $bad failed"
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then failed=$((failed + 1)); fi
done
rm -rf "$unit_dir"

say "pg_regress"
set +e
make -s PG_CONFIG=$PG_BIN/pg_config installcheck >$log_dir/regress.log 2>&1
rc=$?
set -e
cat $log_dir/regress.log
tally $log_dir/regress.log
if [ $rc -ne 0 ]; then
    [ "$bad" -gt 0 ] || failed=$((failed + 1))
    [ -f regression.diffs ] && head -200 regression.diffs
fi

say "pgTAP"
createdb sales_kpi_tap
psql -X -q -v ON_ERROR_STOP=1 -d sales_kpi_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION sales_kpi'
set +e
pg_prove -v -d sales_kpi_tap test/*.sql >$log_dir/tap.log 2>&1
rc=$?
set -e
# the suites' COPY BINARY scratch files (written by the server, named by backend pid)
rm -f /tmp/sales_kpi_copy_*.bin /tmp/sales_kpi_dur_*.bin /tmp/sales_kpi_surv_*.bin \
      /tmp/sales_kpi_lift_*.bin /tmp/sales_kpi_funnel_*.bin /tmp/sales_kpi_bin_*
grep -vE '^ *ok [0-9]+' $log_dir/tap.log
tally $log_dir/tap.log
echo "pgTAP: $ok assertions passed, $bad failed"
if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then failed=$((failed + 1)); fi

for t in test/*.sh; do
    [ -e "$t" ] || continue
    say "$t"
    set +e
    bash "$t" >$log_dir/sh.log 2>&1
    rc=$?
    set -e
    cat $log_dir/sh.log
    tally $log_dir/sh.log
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then failed=$((failed + 1)); fi
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
