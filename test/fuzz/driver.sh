# Shared by test/fuzz.sh (CI) and bench/fuzz.sh (the long run); sourced.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster and pg_config of that
# server on PATH (or PG_CONFIG).  The harness module is built in test/fuzz
# and loaded from a copy in a temporary directory: nothing is installed.

FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# builds the module and copies it where the server can read it; sets FUZZ_SO
fuzz_build_module() {
    local pg_config=${PG_CONFIG:-$(command -v pg_config)}
    make -C "$FUZZ_DIR" -s PG_CONFIG="$pg_config" >/dev/null
    FUZZ_SO_DIR=$(mktemp -d /tmp/sales_kpi_fuzz.XXXXXX)
    chmod 755 "$FUZZ_SO_DIR"
    cp "$FUZZ_DIR/sales_kpi_fuzz.so" "$FUZZ_SO_DIR/"
    chmod 644 "$FUZZ_SO_DIR/sales_kpi_fuzz.so"
    FUZZ_SO=$FUZZ_SO_DIR/sales_kpi_fuzz.so
}

fuzz_cleanup() {
    [ -n "${FUZZ_SO_DIR:-}" ] && rm -rf "$FUZZ_SO_DIR"
    [ -n "${FUZZ_DB:-}" ] && dropdb --if-exists "$FUZZ_DB" 2>/dev/null
    true
}

# a database with sales_kpi, the demo data, the harness functions, the corpus and the sweep
fuzz_prepare_db() {
    FUZZ_DB=$1
    dropdb --if-exists "$FUZZ_DB" 2>/dev/null
    createdb "$FUZZ_DB"
    psql -X -q -v ON_ERROR_STOP=1 -d "$FUZZ_DB" -c 'CREATE EXTENSION sales_kpi' \
        -c "SELECT count(*) FROM sales_kpi.load_demo(500, 1, '2026-10-31')" >/dev/null
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -d "$FUZZ_DB" \
        -v fuzz_so="$FUZZ_SO" -v corpus_dir="$FUZZ_DIR/corpus" \
        -f "$FUZZ_DIR/setup.sql" -f "$FUZZ_DIR/sweep.sql" >/dev/null
}

# waits until the server accepts connections again (after a crash it restarts)
fuzz_wait_server() {
    for _ in $(seq 60); do
        psql -X -qAt -d "$FUZZ_DB" -c 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}

# fuzz_summaries SEED ITERATIONS OUT: one run of fuzz_run; its rows go to OUT
# (kind|type|format|outcome|count|iteration|detail).  Returns 0, or 3 when the
# server crashed (the connection died), 1 on another failure.
fuzz_summaries() {
    local seed=$1 iterations=$2 out=$3 rc
    psql -X -qAt -F '|' -v ON_ERROR_STOP=1 -d "$FUZZ_DB" \
        -c "SELECT kind, type, format, outcome, count, iteration, replace(detail, E'\n', ' ')
              FROM fuzz.fuzz_run($seed, $iterations, fuzz.corpus_array(), 1000)" >"$out" 2>"$out.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        if grep -qE 'server closed the connection|connection to server was lost|terminated abnormally' "$out.err"; then
            fuzz_wait_server
            return 3
        fi
        cat "$out.err" >&2
        return 1
    fi
    return 0
}

# fuzz_sweep SEED N_RANDOM: plans and runs the argument sweep; each call is
# its own statement under statement_timeout = 20s.  A crash is recorded as
# outcome 'crash' for the call that was running, and the sweep goes on
# after it.  Results are in fuzz.sweep_result.
fuzz_sweep() {
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$FUZZ_DB" -c "SELECT fuzz.sweep_plan($1, $2)" >/dev/null || return 1
    fuzz_sweep_run
}

# runs the planned calls that have no result yet
fuzz_sweep_run() {
    local last crashes=0
    while :; do
        last=$(psql -X -qAt -d "$FUZZ_DB" -c "SELECT coalesce(max(id), 0) FROM fuzz.sweep_result")
        printf '%s\n' "SET statement_timeout = '20s';" \
            "SELECT format('SELECT fuzz.sweep_exec(%s)', id) FROM fuzz.sweep_call WHERE id > $last ORDER BY id \\gexec" \
            | psql -X -qAt -d "$FUZZ_DB" >/dev/null 2>"$FUZZ_SO_DIR/sweep.err"
        # every call has its result unless the server went away during one
        fuzz_wait_server || return 1
        last=$(psql -X -qAt -d "$FUZZ_DB" -c "SELECT min(id) FROM fuzz.sweep_call c
                                               WHERE NOT EXISTS (SELECT 1 FROM fuzz.sweep_result r WHERE r.id = c.id)")
        [ -z "$last" ] && return 0
        crashes=$((crashes + 1))
        printf '%s\n' "INSERT INTO fuzz.sweep_result VALUES ($last, 'crash', 'server crashed (connection lost)', :'msg');" \
            | psql -X -qAt -v ON_ERROR_STOP=1 -d "$FUZZ_DB" -v msg="$(tail -c 300 "$FUZZ_SO_DIR/sweep.err")" >/dev/null
        [ $crashes -ge 20 ] && return 1
    done
}
