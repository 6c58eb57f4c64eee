#!/usr/bin/env bash
# The long fuzz run (test/fuzz.sh is the short one in the test suite).
#
#   bench/fuzz.sh [--iterations 10000000] [--seed 1] [--chunk 1000000] [--sweep-random 2000]
#
# Builds and installs sales_kpi, starts a throwaway cluster (niced), builds
# the test-only module test/fuzz, then feeds --iterations summary inputs in
# chunks of --chunk, chunk k with seed (--seed + k), each chunk its own
# connection, so that a crash names its chunk (rerun fuzz_run(seed, n) on
# that seed to find the input).  Then the argument sweep with
# --sweep-random random calls.  Prints the counts by type, format and
# outcome, the violations, and the wall time.  Exits non-zero on a
# violation or a crash.
source "$(dirname "$0")/../scripts/lib.sh"

iterations=10000000 seed=1 chunk=1000000 sweep_random=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --iterations) iterations=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --chunk) chunk=$2; shift 2 ;;
        --sweep-random) sweep_random=$2; shift 2 ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

ensure_packages
build_and_install
start_cluster
# the run shares the machine: every backend inherits the postmaster's niceness
renice -n 10 -p "$(head -1 "$CLUSTER_DIR/data/postmaster.pid")" >/dev/null
source "$SALES_KPI_ROOT/test/fuzz/driver.sh"
work=$(mktemp -d /tmp/sales_kpi_fuzz_run.XXXXXX)
trap 'fuzz_cleanup; stop_cluster; rm -rf "$work"' EXIT
export PG_CONFIG=$PG_BIN/pg_config
fuzz_build_module
fuzz_prepare_db fuzz_long

status=0
echo "## bench/fuzz.sh --iterations $iterations --seed $seed --chunk $chunk --sweep-random $sweep_random"
echo "PostgreSQL $(psql -X -qAt -d "$FUZZ_DB" -c 'SHOW server_version'), $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| chunk | seed | inputs | seconds | result |"
echo "|---:|---:|---:|---:|---|"
t0=$(date +%s.%N)
done_inputs=0 k=0
while [ "$done_inputs" -lt "$iterations" ]; do
    n=$(( iterations - done_inputs < chunk ? iterations - done_inputs : chunk ))
    s=$((seed + k))
    c0=$(date +%s.%N)
    rc=0
    fuzz_summaries "$s" "$n" "$work/chunk_$k.out" || rc=$?
    secs=$(echo "$(date +%s.%N) - $c0" | bc)
    case $rc in
        0) result=ok ;;
        3) result="SERVER CRASHED: find the input with fuzz.fuzz_violations($s, N) for growing N"; status=1
           : >"$work/chunk_$k.out" ;;
        *) result="failed: $(head -c 300 "$work/chunk_$k.out.err")"; status=1; : >"$work/chunk_$k.out" ;;
    esac
    printf '| %d | %d | %d | %.1f | %s |\n' "$k" "$s" "$n" "$secs" "$result"
    done_inputs=$((done_inputs + n)) k=$((k + 1))
done
secs=$(echo "$(date +%s.%N) - $t0" | bc)
cat "$work"/chunk_*.out >"$work/all"

echo
printf 'Summary inputs: %d in %.0f s (%.0f per second).\n' "$iterations" "$secs" "$(echo "$iterations / $secs" | bc -l)"
echo
echo "| type | format | inputs | accepted | refused (by SQLSTATE) | violations |"
echo "|---|---|---:|---:|---|---:|"
awk -F'|' '$1 == "count" && ($3 == "text" || $3 == "binary") {
        key = $2 "|" $3
        if ($4 == "accepted") acc[key] += $5
        else if ($4 ~ /^refused /) { st = substr($4, 9); ref[key, st] += $5; states[st] = 1; inputs[key] += $5; if (!(key in acc)) acc[key] += 0 }
        else if ($4 ~ /^VIOLATION/) viol[key] += $5
        if ($4 == "accepted") inputs[key] += $5
        keys[key] = 1
    }
    END {
        n = split("weighted_sum duration_summary funnel lift survival winloss", types, " ")
        for (i = 1; i <= n; i++) for (f = 1; f <= 2; f++) {
            key = types[i] "|" (f == 1 ? "text" : "binary")
            if (!(key in keys)) continue
            r = ""; for (st in states) if ((key, st) in ref) r = r (r == "" ? "" : ", ") st " " ref[key, st]
            printf "| %s | %s | %d | %d | %s | %d |\n", types[i], (f == 1 ? "text" : "binary"), inputs[key], acc[key], r, viol[key]
        }
    }' "$work/all"
echo
echo "Calls made on the accepted and built values, by outcome:"
echo
echo "| kind | outcome | calls |"
echo "|---|---|---:|"
awk -F'|' '$1 == "count" && $3 ~ /^(accessor|combine|transition|built)$/ && $4 !~ /^VIOLATION/ { c[$3 "|" $4] += $5 }
    END { for (k in c) { split(k, p, "|"); printf "| %s | %s | %d |\n", p[1], p[2], c[k] } }' "$work/all" | sort
echo
nviol=$(awk -F'|' '$1 == "count" && $4 ~ /^VIOLATION/ { s += $5 } END { print s + 0 }' "$work/all")
echo "Violations: $nviol"
if [ "$nviol" -gt 0 ]; then
    status=1
    echo
    echo "| type | format | check | count |"
    echo "|---|---|---|---:|"
    awk -F'|' '$1 == "count" && $4 ~ /^VIOLATION/ { c[$2 "|" $3 "|" substr($4, 11)] += $5 }
        END { for (k in c) { split(k, p, "|"); printf "| %s | %s | %s | %d |\n", p[1], p[2], p[3], c[k] } }' "$work/all" | sort
    echo
    echo "One example of each check (chunk seed, iteration, detail):"
    for f in "$work"/chunk_*.out; do
        k=${f##*_}; k=${k%.out}
        awk -F'|' -v s=$((seed + k)) '$1 == "violation" { print $2 "|" $3 "|" $4 "|" s "|" $6 "|" $7 }' "$f"
    done | awk -F'|' '!seen[$1 $3]++ { print "- " $1 " " $2 ", " $3 " (seed " $4 ", iteration " $5 "): " substr($6, 1, 700) }'
fi

echo
c0=$(date +%s.%N)
fuzz_sweep "$seed" "$sweep_random" || status=1
secs=$(echo "$(date +%s.%N) - $c0" | bc)
echo "Argument sweep, seed $seed: $(psql -X -qAt -d "$FUZZ_DB" -c 'SELECT count(*) FROM fuzz.sweep_result') calls in ${secs%.*} s."
echo
echo "| family | calls | outcomes | violations |"
echo "|---|---:|---|---:|"
psql -X -qAt -F ' | ' -d "$FUZZ_DB" -c "
    SELECT '| ' || family, sum(n), string_agg(outcome || ' ' || n, ', ' ORDER BY outcome), sum(v) || ' |'
      FROM (SELECT c.family, r.outcome, count(*) n, count(r.violation) v
              FROM fuzz.sweep_call c JOIN fuzz.sweep_result r USING (id) GROUP BY 1, 2) s
     GROUP BY family ORDER BY family"
sweep_bad=$(psql -X -qAt -d "$FUZZ_DB" -c "SELECT count(*) FROM fuzz.sweep_result WHERE violation IS NOT NULL")
if [ "$sweep_bad" -gt 0 ]; then
    status=1
    echo
    psql -X -qAt -d "$FUZZ_DB" -c "SELECT DISTINCT ON (c.fn, left(r.violation, 40)) '- ' || c.fn || ': ' || r.violation || ' — ' || c.sql
                                     FROM fuzz.sweep_call c JOIN fuzz.sweep_result r USING (id)
                                    WHERE r.violation IS NOT NULL ORDER BY c.fn, left(r.violation, 40), c.id"
fi
echo
printf 'Wall time: %.0f s.\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
exit $status
