#!/usr/bin/env bash
# Short version of the load benchmark (bench/load.sh): 8 clients for 15
# seconds on a few thousand demo deals, half of the picks on 20 hot deals,
# running every script of the default mix of bench/load/ at once (moves
# forward, back, to won, to lost, reopenings, edits, stage events written
# directly for one deal and for five in one statement, corrections of the
# newest event, activities with
# transcripts, new deals, KPI views and per-team reads).  Asserts that no
# client hit an error, that no transaction failed or deadlocked, and that
# check_consistency() finds nothing afterwards.  Timings are not asserted.
# Prints TAP.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with sales_kpi installed
# and pgbench on the PATH (scripts/test.sh provides them).
# SALES_KPI_LOAD_SECONDS and SALES_KPI_LOAD_DEALS change the size.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${SALES_KPI_LOAD_SECONDS:-15}
deals=${SALES_KPI_LOAD_DEALS:-3000}
clients=8
mix="forward@20 back@5 won@5 lost@5 reopen@5 edit@15 event@8 bulk_move@4 bulk_edit@4 correct@2 activity@20 new_deal@3 read_views@4 read_forecast@1 read_team@2"

n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; echo "#   got:      $2"; echo "#   expected: $3"; fi; }
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

db=load_test
work=$(mktemp -d)
trap 'rm -rf "$work"; dropdb --if-exists "$db" 2>/dev/null' EXIT
dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
q "CREATE EXTENSION sales_kpi"
q "SELECT count(*) FROM sales_kpi.load_demo($deals, 2)" >/dev/null
q "VACUUM ANALYZE" >/dev/null
check "the demo history ends before now (every move of the load is later)" \
      "$(q "SELECT max(entered_at) < now() FROM sales_kpi.stage_event")" "t"

vars=$(psql -X -qAt -v ON_ERROR_STOP=1 -v hot=20 -d "$db" -f "$root/bench/load/setup.sql" 2>"$work/setup.err")
check "set-up: 20 hot deals" "$(echo "$vars" | sed -n 's/^hot_n=//p')" "20"
defines=(-D hot_share=50)
for v in $vars; do defines+=(-D "$v"); done
scripts=()
for s in $mix; do scripts+=(-f "$root/bench/load/${s%@*}.sql@${s#*@}"); done

count() { q "SELECT count(*) FROM sales_kpi.$1"; }
events_before=$(count stage_event) snapshots_before=$(count opportunity_history)
turns_before=$(count utterance) deals_before=$(count opportunity)
deadlocks_before=$(q "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")

(cd "$work" && pgbench -n -c $clients -j 2 -T "$seconds" --max-tries=10 --failures-detailed \
     "${defines[@]}" "${scripts[@]}" "$db") >"$work/pgbench.out" 2>&1
rc=$?
# the totals, then transactions per script
sed -n '/^number of clients/,/^tps/p' "$work/pgbench.out" | sed 's/^/# /'
awk '/^SQL script [0-9]+:/ { name = $4; sub(/^.*\//, "", name) }
     /^ - [0-9]+ transactions/ { printf "#   %s: %s transactions\n", name, $2 }' "$work/pgbench.out"
grep -E 'aborted|ERROR' "$work/pgbench.out" | head -20 | sed 's/^/# /'

check "pgbench ran to the end, no client aborted by an error" \
      "$rc $(grep -c 'aborted' "$work/pgbench.out")" "0 0"
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
if [ "${processed:-0}" -gt 0 ]; then ok "transactions ran ($processed)"; else fail "transactions ran"; fi
idle=$(awk '/^SQL script [0-9]+:/ { name = $4 } /^ - [0-9]+ transactions/ && $2 == 0 { print name }' "$work/pgbench.out")
check "every script of the mix ran" "${idle:-none idle}" "none idle"
check "no failed transaction" \
      "$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench.out")" "0"
check "no transaction retried (no serialization failure, no deadlock)" \
      "$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$work/pgbench.out")" "0"
# the backends of the clients have exited, so their statistics are in
check "no deadlock in pg_stat_database" \
      "$(q "SELECT deadlocks - $deadlocks_before FROM pg_stat_database WHERE datname = current_database()")" "0"

check "the load moved deals, wrote snapshots and transcripts, created deals" \
      "$(q "SELECT (SELECT count(*) FROM sales_kpi.stage_event) > $events_before,
                   (SELECT count(*) FROM sales_kpi.opportunity_history) > $snapshots_before,
                   (SELECT count(*) FROM sales_kpi.utterance) > $turns_before,
                   (SELECT count(*) FROM sales_kpi.opportunity) > $deals_before")" "t|t|t|t"
findings=$(q "SELECT count(*) FROM sales_kpi.check_consistency()")
check "check_consistency() finds nothing after the load" "$findings" "0"
if [ "$findings" != 0 ]; then
    q "SELECT rule, table_name, row_key, detail FROM sales_kpi.check_consistency() LIMIT 10" | sed 's/^/#   /'
fi
check "every deal's current stage is its newest event's, as the history rebuilt with DISTINCT ON says" \
      "$(q "SELECT count(*) FROM sales_kpi.opportunity o
              JOIN (SELECT DISTINCT ON (opportunity_id) opportunity_id, stage_id
                      FROM sales_kpi.stage_event ORDER BY opportunity_id, entered_at DESC, stage_event_id DESC) e
                USING (opportunity_id)
             WHERE o.stage_id IS DISTINCT FROM e.stage_id")" "0"

echo "1..$n"
