#!/usr/bin/env bash
# Fuzzing, short seeded run (the long run is bench/fuzz.sh).  Prints TAP.
#
#  - the summary types' input and receive functions get FUZZ_ITERATIONS
#    (default 200,000) generated and mutated text and binary inputs from
#    seed FUZZ_SEED (default 1), through the test-only module test/fuzz;
#    one line per type and format: no refusal outside class 22, 0A000 and
#    54000, and every accepted value round-trips, combines and has
#    accessors in range (test/fuzz/fuzz_check.c);
#  - the argument sweep (test/fuzz/sweep.sql) calls every KPI, aggregate,
#    accessor, window function and building block with argument values from
#    per-type pools plus FUZZ_SWEEP_RANDOM (default 200) random calls; one
#    line per family: no XX000/XX001, 57014 (20 s timeout), P0001 and no
#    result out of range;
#  - the server survives, and a seed reproduces its run exactly.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with sales_kpi installed,
# as a superuser, and pg_config on PATH (scripts/test.sh provides them).
set -uo pipefail
source "$(dirname "$0")/fuzz/driver.sh"

seed=${FUZZ_SEED:-1}
iterations=${FUZZ_ITERATIONS:-200000}
sweep_random=${FUZZ_SWEEP_RANDOM:-200}
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
q() { psql -X -qAt -d "$FUZZ_DB" -c "$1"; }

work=$(mktemp -d)
trap 'fuzz_cleanup; rm -rf "$work"' EXIT
fuzz_build_module || { fail "build the fuzz module"; exit 1; }
fuzz_prepare_db sales_kpi_fuzz || { fail "prepare the fuzz database"; exit 1; }

# --- summary inputs ---
start=$(date +%s.%N)
fuzz_summaries "$seed" "$iterations" "$work/run"
rc=$?
secs=$(echo "$(date +%s.%N) - $start" | bc)
if [ $rc -eq 3 ]; then
    fail "summary inputs: the server survives $iterations inputs of seed $seed (it crashed; bench/fuzz.sh with smaller chunks finds the input)"
elif [ $rc -ne 0 ]; then
    fail "summary inputs: fuzz_run($seed, $iterations) failed"
else
    ok "summary inputs: the server survives $iterations inputs of seed $seed (${secs%.*} s)"
fi
for type in weighted_sum winloss duration_summary survival lift funnel; do
    for format in text binary built; do
        counts=$(awk -F'|' -v t="$type" -v f="$format" '$1 == "count" && $2 == t && $3 == f { printf "%s%s %s", sep, $4, $5; sep = ", " }' "$work/run")
        bad=$(awk -F'|' -v t="$type" -v f="$format" '$1 == "count" && $2 == t && $3 == f && $4 ~ /^VIOLATION/ { s += $5 } END { print s + 0 }' "$work/run")
        if [ $rc -eq 0 ] && [ "$bad" -eq 0 ]; then
            ok "$type $format: no violation ($counts)"
        else
            fail "$type $format: $bad violations ($counts)"
            awk -F'|' -v t="$type" -v f="$format" '$1 == "violation" && $2 == t && $3 == f { print "#   iteration " $6 ": " $4 ": " substr($7, 1, 600); if (++k == 3) exit }' "$work/run"
        fi
    done
done
checks=$(awk -F'|' '$1 == "count" && $3 ~ /^(accessor|combine|transition)$/ { s += $5 } END { print s + 0 }' "$work/run")
echo "# $checks accessor, combine and transition calls on the accepted and built values"

# --- reproducibility ---
fuzz_summaries "$seed" 3000 "$work/a" && fuzz_summaries "$seed" 3000 "$work/b"
if cmp -s <(sort "$work/a") <(sort "$work/b"); then
    ok "seed $seed reproduces its run exactly"
else
    fail "seed $seed reproduces its run exactly"
fi

# --- argument sweep ---
start=$(date +%s.%N)
if ! fuzz_sweep "$seed" "$sweep_random"; then
    fail "argument sweep ran to the end"
fi
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "# argument sweep: $(q "SELECT count(*) FROM fuzz.sweep_result") calls in ${secs%.*} s"
for family in kpi aggregate "moving aggregate" accessor window "building block"; do
    summary=$(q "SELECT string_agg(outcome || ' ' || n, ', ' ORDER BY outcome) FROM (
                   SELECT r.outcome, count(*) n FROM fuzz.sweep_call c JOIN fuzz.sweep_result r USING (id)
                    WHERE c.family = '$family' GROUP BY 1) s")
    bad=$(q "SELECT count(*) FROM fuzz.sweep_call c JOIN fuzz.sweep_result r USING (id)
              WHERE c.family = '$family' AND r.violation IS NOT NULL")
    missing=$(q "SELECT count(*) FROM fuzz.sweep_call c WHERE c.family = '$family'
                  AND NOT EXISTS (SELECT 1 FROM fuzz.sweep_result r WHERE r.id = c.id)")
    if [ "$bad" -eq 0 ] && [ "$missing" -eq 0 ]; then
        ok "sweep $family: no violation ($summary)"
    else
        fail "sweep $family: $bad violations, $missing calls without a result ($summary)"
        q "SELECT '#   ' || r.violation || E'\n#     ' || c.sql FROM fuzz.sweep_call c JOIN fuzz.sweep_result r USING (id)
            WHERE c.family = '$family' AND r.violation IS NOT NULL ORDER BY c.id LIMIT 5"
    fi
done

if psql -X -qAt -d "$FUZZ_DB" -c 'SELECT 1' >/dev/null 2>&1; then
    ok "the server is up after the run"
else
    fail "the server is up after the run"
fi
echo "1..$n"
