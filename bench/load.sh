#!/usr/bin/env bash
# Concurrent load benchmark (not part of the test suite; test/concurrent_load.sh
# is its short version).  Builds and installs sales_kpi, starts a throwaway
# cluster, loads the demo data and runs pgbench with the weighted scripts
# of bench/load/: deals moved forward, back, to won, to lost and reopened,
# amounts and expected close dates edited, stage events written directly
# (one deal, and five deals in one statement) and corrected (the newest
# event moved back or deleted), activities logged with
# their transcripts, new deals, and KPI views and per-team functions read,
# all at once.  A share of the picks goes to a small hot set of deals, so
# that clients contend for the same rows.
#
# After the run it reports, as Markdown: transactions per second overall
# and per script, latencies, failed transactions, retries, the errors and
# deadlocks in the server log (by SQLSTATE), lock waits, how many edits the
# deal kept, and sales_kpi.check_consistency().  It exits non-zero when a
# client was aborted (an error other than a retried 40001/40P01), when a
# transaction failed, or when check_consistency() finds anything.
#
#   bench/load.sh [--deals 100000] [--seed 1] [--until YYYY-MM-DD]
#                 [--clients 8] [--jobs 2] [--seconds 60]
#                 [--hot 20] [--hot-share 50] [--max-tries 10]
#                 [--mix "forward@20 back@5 ..."] [--out DIR] [--keep]
#   bench/load.sh --database NAME ...
#       runs against a database that already holds demo data, on the
#       cluster PGHOST/PGPORT point at (no build, no load)
#
#   --hot N        the hot set: N open deals (0: none, every pick from the
#                  whole set)
#   --hot-share P  percentage of the picks that go to the hot set
#   --mix          scripts of bench/load/ with their weights; the default
#                  mix leaves out the scripts that conflict by design
#                  (pair, bulk_edit_unordered), which can deadlock (40P01,
#                  retried by --max-tries)
#   --out DIR      where the pgbench output, the server log of the run and
#                  the report go (default: a new /tmp/sales_kpi_load.*)
source "$(dirname "$0")/../scripts/lib.sh"

deals=100000 seed=1 until=$(date -u +%F) clients=8 jobs=2 seconds=60
hot=20 hot_share=50 max_tries=10 progress=10 out= keep=no database=
default_mix="forward@20 back@5 won@5 lost@5 reopen@5 edit@15 event@8 bulk_move@4 bulk_edit@4 correct@2 activity@20 new_deal@3 read_views@4 read_forecast@1 read_team@2"
mix=$default_mix
while [ $# -gt 0 ]; do
    case "$1" in
        --deals) deals=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --until) until=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --hot) hot=$2; shift 2 ;;
        --hot-share) hot_share=$2; shift 2 ;;
        --max-tries) max_tries=$2; shift 2 ;;
        --mix) mix=$2; shift 2 ;;
        --progress) progress=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --database) database=$2; shift 2 ;;
        --keep) keep=yes; shift ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done
[ "$hot" -gt 0 ] || hot_share=0
script_dir=$SALES_KPI_ROOT/bench/load
out=${out:-$(mktemp -d /tmp/sales_kpi_load.XXXXXX)}
mkdir -p "$out"
chmod 755 "$out"

if [ -z "$database" ]; then
    ensure_packages
    build_and_install
    start_cluster
    if [ "$keep" = yes ]; then
        trap 'say "the cluster keeps running: psql -h $CLUSTER_DIR -U postgres bench"' EXIT
    else
        trap stop_cluster EXIT
    fi
    database=bench
    createdb $database
    psql -X -q -d $database -c 'CREATE EXTENSION sales_kpi'
    say "loading $deals demo deals (seed $seed, until $until)"
    load_ms=$(server_ms $database "PERFORM * FROM sales_kpi.load_demo($deals, $seed, '$until')")
    psql -X -q -d $database -c 'VACUUM ANALYZE'
    say "loaded in $load_ms ms"
else
    export PATH=$PG_BIN:$PATH
fi
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d $database -c "$1"; }

# every move is at clock_timestamp(), so it must come after the demo's history
if [ "$(q "SELECT max(entered_at) < now() FROM sales_kpi.stage_event")" != t ]; then
    say "the demo data has stage events after now(): load it with --until today or earlier"
    exit 1
fi

# the server log: lock waits past deadlock_timeout, deadlocks, and every
# error with its statement and SQLSTATE
q "ALTER SYSTEM SET log_lock_waits = on" >/dev/null
q "ALTER SYSTEM SET deadlock_timeout = '100ms'" >/dev/null
q "ALTER SYSTEM SET log_min_error_statement = 'error'" >/dev/null
q "ALTER SYSTEM SET log_line_prefix = '%m [%p] %e %a: '" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
server_log=$(q "SELECT current_setting('data_directory')")/../server.log
[ -r "$server_log" ] || server_log=

vars=$(psql -X -qAt -v ON_ERROR_STOP=1 -v hot="$hot" -d $database -f "$script_dir/setup.sql" 2>/dev/null)
defines=(-D hot_share="$hot_share")
for v in $vars; do defines+=(-D "$v"); done

scripts=()
for s in $mix; do scripts+=(-f "$script_dir/${s%@*}.sql@${s#*@}"); done

counts() {
    q "SELECT format('%s deals, %s stage events, %s snapshots, %s activities, %s transcript turns',
                     (SELECT count(*) FROM sales_kpi.opportunity), (SELECT count(*) FROM sales_kpi.stage_event),
                     (SELECT count(*) FROM sales_kpi.opportunity_history), (SELECT count(*) FROM sales_kpi.activity),
                     (SELECT count(*) FROM sales_kpi.utterance))"
}
deadlocks() { q "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"; }

before=$(counts)
deadlocks_before=$(deadlocks)
log_offset=0
[ -z "$server_log" ] || log_offset=$(stat -c %s "$server_log")

cmd=(pgbench -n -c "$clients" -j "$jobs" -T "$seconds" -P "$progress" -r
     --max-tries="$max_tries" --failures-detailed "${defines[@]}" "${scripts[@]}" $database)
say "running: ${cmd[*]}"
set +e
(cd "$script_dir" && "${cmd[@]}") >"$out/pgbench.out" 2>&1
pgbench_rc=$?
set -e
cat "$out/pgbench.out"

after=$(counts)
deadlocks_after=$(deadlocks)
if [ -n "$server_log" ]; then
    tail -c +$((log_offset + 1)) "$server_log" >"$out/server.log"
else
    : >"$out/server.log"
fi
say "checking consistency"
q "SELECT rule, table_name, row_key, detail FROM sales_kpi.check_consistency() ORDER BY 1, 2, 3" >"$out/consistency.out"
findings=$(wc -l <"$out/consistency.out")
edits=$(q "SELECT format('%s of %s', count(*) FILTER (WHERE NOT kept), count(*)) FROM public.bench_edit")

# main figures of the pgbench report
field() { sed -n "s/^$1 *[=:] *\([0-9.]*\).*/\1/p" "$out/pgbench.out" | head -1; }
total_tx=$(field 'number of transactions actually processed')
failed=$(field 'number of failed transactions')
retried=$(field 'number of transactions retried')
retries=$(field 'total number of retries')
tps=$(field tps)
lat=$(field 'latency average')
latsd=$(field 'latency stddev')
aborted=$(grep -c 'aborted in command' "$out/pgbench.out" || true)
# the server log of the run: ERROR lines by SQLSTATE, deadlocks, lock waits
errors_by_state=$(grep -E '^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] [0-9A-Z]{5} [^:]*: ERROR:' "$out/server.log" \
                  | awk '{print $5}' | sort | uniq -c | awk '{printf "%s%s × %s", sep, $1, $2; sep=", "}' || true)
deadlock_lines=$(grep -c 'ERROR:  deadlock detected' "$out/server.log" || true)
lock_waits=$(grep -c 'still waiting for' "$out/server.log" || true)

{
echo "### Load: $clients clients, $seconds s, $(echo "$vars" | sed -n 's/^deals=//p') deals, hot set $hot ($hot_share% of picks)"
echo
if [ -n "${load_ms:-}" ]; then source_opts="--deals $deals --seed $seed --until $until"; else source_opts="--database $database"; fi
mix_opt=
[ "$mix" = "$default_mix" ] || mix_opt=" --mix \"$mix\""
echo "Command: \`bench/load.sh $source_opts --clients $clients --jobs $jobs --seconds $seconds --hot $hot --hot-share $hot_share --max-tries $max_tries$mix_opt\`${load_ms:+ (load_demo: $load_ms ms)}"
echo
echo "PostgreSQL $(q "SHOW server_version"), $(nproc) CPUs. Before: $before. After: $after."
echo
echo "| script | weight | transactions | tps | latency avg (ms) | stddev (ms) | failed | retried | retries |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
awk '
    function flush() { if (name != "") printf "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, w, n, t, la, ls, f, rt, rs }
    /^SQL script [0-9]+:/ { flush(); name = $4; sub(/^.*\//, "", name); sub(/\.sql$/, "", name); w = n = t = la = ls = f = rt = rs = "" }
    name != "" && /^ - weight:/ { w = $3 }
    name != "" && /^ - [0-9]+ transactions/ { n = $2; t = $NF; sub(/\)$/, "", t); t = sprintf("%.1f", t) }
    name != "" && /^ - number of failed transactions:/ { f = $6 }
    name != "" && /^ - number of transactions retried:/ { rt = $6 }
    name != "" && /^ - total number of retries:/ { rs = $6 }
    name != "" && /^ - latency average/ { la = $5 }
    name != "" && /^ - latency stddev/ { ls = $5 }
    END { flush() }' "$out/pgbench.out"
echo "| **all** | | $total_tx | $(printf '%.1f' "${tps:-0}") | $lat | $latsd | $failed | ${retried:-0} | ${retries:-0} |"
echo
echo "- failed transactions: $failed; clients aborted by an error: $aborted; pgbench exit status: $pgbench_rc"
echo "- retried transactions: ${retried:-0} (${retries:-0} retries, of 40001/40P01 only, at most $max_tries tries)"
echo "- errors in the server log by SQLSTATE: ${errors_by_state:-none}"
echo "- deadlocks: $deadlock_lines in the server log, $((deadlocks_after - deadlocks_before)) in pg_stat_database"
echo "- lock waits longer than deadlock_timeout (100 ms): $lock_waits"
echo "- edits the deal kept: all but $edits (an edit is undone when a concurrent writer committed a later snapshot of the deal first)"
echo "- \`check_consistency()\`: $findings findings"
if [ "$aborted" -gt 0 ]; then
    echo
    echo "Errors that aborted clients (count, script, message):"
    echo
    awk '/^SQL script [0-9]+:/ { n = $3; sub(/:$/, "", n); name = $4; sub(/^.*\//, "", name); script[n] = name }
         /aborted in command/ { m = $0; sub(/.*aborted in command [0-9]+ query [0-9]+: /, "", m)
                                s = $0; sub(/.*script /, "", s); sub(/ .*/, "", s); key[s "|" m]++ }
         END { for (k in key) { split(k, f, "|"); printf "- %d × `%s`: %s\n", key[k], script[f[1] + 1], f[2] } }' "$out/pgbench.out"
fi
if [ "$deadlock_lines" -gt 0 ]; then
    echo
    echo "Deadlocks (the start of each statement in the cycle, the victim first):"
    echo
    awk 'function stmt_done() { if (cur != "") { gsub(/[ \t]+/, " ", cur); line = line (line == "" ? "" : " ⟷ ") "`" substr(cur, 1, 90) "`"; cur = "" } }
         /ERROR:  deadlock detected/ { inside = 1; line = ""; cur = ""; next }
         inside && /^\tProcess [0-9]+: / { stmt_done(); cur = $0; sub(/^\tProcess [0-9]+: /, "", cur); next }
         inside && cur != "" && /^\t/ { cur = cur " " $0; next }
         inside && /HINT:|CONTEXT:|STATEMENT:/ { stmt_done(); if (line != "") print line; inside = 0 }' "$out/server.log" \
        | sort | uniq -c | sort -rn | awk '{ n = $1; sub(/^ *[0-9]+ /, ""); printf "- %d × %s\n", n, $0 }'
fi
} >"$out/report.md"
echo
cat "$out/report.md"
if [ "$findings" -gt 0 ]; then
    echo; echo "First findings:"; head -20 "$out/consistency.out"
fi
say "pgbench output, server log and report in $out"

[ "$pgbench_rc" -eq 0 ] && [ "$aborted" -eq 0 ] && [ "${failed:-1}" -eq 0 ] && [ "$findings" -eq 0 ]
