#!/usr/bin/env bash
# Runs the test suites against an assert-enabled PostgreSQL 15 whose server
# runs under Valgrind memcheck, and fails on any test failure, any Valgrind
# error, any failed assertion and any crashed server process.
#
#   scripts/valgrind.sh                 pg_regress (sql/ + expected/)
#   scripts/valgrind.sh --pgtap         ... and the pgTAP suites (test/*.sql)
#   scripts/valgrind.sh --all           ... and the shell TAP checks (test/*.sh)
#   scripts/valgrind.sh --regress "stage_moves kpi_flow"   only these pg_regress tests
#   scripts/valgrind.sh --tap "test/kpi_flow.sql"          only these pgTAP files (implies --pgtap)
#   scripts/valgrind.sh --no-regress --tap "test/window_functions.sql"   pgTAP only
#   scripts/valgrind.sh --no-valgrind   same server, without Valgrind (quick check of the assert build)
#   scripts/valgrind.sh --rebuild       rebuild the debug server even if it is cached
#
# The server is PostgreSQL built from the source of Debian's postgresql-15
# package (the upstream tarball inside it, the same version as the installed
# server) with --enable-cassert --enable-debug and CFLAGS="-O0 -g
# -DUSE_VALGRIND", so that memory contexts tell Valgrind which bytes of a
# palloc'd chunk were asked for, freed memory is clobbered and the server's
# assertions are on.  It is built once and cached in $SALES_KPI_DEBUG_PG
# (default /opt/pg15-debug); its source stays in $SALES_KPI_DEBUG_PG_SRC
# (default /opt/pg15-debug-src), where src/tools/valgrind.supp, PostgreSQL's
# suppressions of known false positives, is read from.  scripts/valgrind.supp
# adds the project's own.
#
# The extension is built from a copy of this working tree (so the objects of
# a normal build are not mixed with these) and installed into that prefix
# only.  The cluster is throwaway: a temporary directory, the postgres OS
# user, a unix socket only.  Valgrind's logs (one per server process), the
# server log and the test outputs stay in the log directory printed at the
# end.
source "$(dirname "$0")/lib.sh"

PREFIX=${SALES_KPI_DEBUG_PG:-/opt/pg15-debug}
SRC_ROOT=${SALES_KPI_DEBUG_PG_SRC:-/opt/pg15-debug-src}
CONFIGURE_FLAGS=(--enable-cassert --enable-debug --without-llvm --with-icu --with-libxml)
DEBUG_CFLAGS="-O0 -g -DUSE_VALGRIND"

use_valgrind=1 run_regress=1 run_pgtap=0 run_shell=0 rebuild=0 regress_list="" tap_list=""
while [ $# -gt 0 ]; do
    case $1 in
        --pgtap) run_pgtap=1 ;;
        --all) run_pgtap=1 run_shell=1 ;;
        --regress) regress_list=$2; shift ;;
        --no-regress) run_regress=0 ;;
        --tap) tap_list=$2; run_pgtap=1; shift ;;
        --no-valgrind) use_valgrind=0 ;;
        --rebuild) rebuild=1 ;;
        -h|--help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

t_start=$(date +%s)
elapsed() { echo $(( $(date +%s) - $1 )); }

# --- packages ---------------------------------------------------------------
ensure_debug_packages() {
    local want=(make gcc pkg-config bzip2 valgrind libreadline-dev zlib1g-dev libicu-dev libxml2-dev)
    [ $run_pgtap -eq 1 ] && want+=(postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl)
    [ $run_shell -eq 1 ] && want+=(postgresql-client-15)
    local missing=() p
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || { say "missing packages: ${missing[*]} (run as root)"; exit 1; }
        say "installing ${missing[*]}"
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

apt_updated=0
apt_update_once() {
    if [ $apt_updated -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
}

# deb-src entries mirroring the deb ones, so that `apt-get source` works
ensure_deb_src() {
    local have
    have=$(apt-cache showsrc postgresql-$PG_MAJOR 2>/dev/null || true)
    if grep -q '^Package:' <<<"$have"; then return; fi
    local f=/etc/apt/sources.list.d/sales-kpi-deb-src.sources
    say "adding deb-src entries ($f)"
    {
        local s
        for s in /etc/apt/sources.list.d/*.sources; do
            [ -e "$s" ] && [ "$s" != "$f" ] || continue
            grep -q 'deb.debian.org\|debian-security' "$s" || continue
            sed 's/^Types: deb$/Types: deb-src/' "$s"; echo
        done
    } >"$f.tmp"
    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' /etc/apt/sources.list >"${f%.sources}.list"
    fi
    mv "$f.tmp" "$f"
    apt_updated=0
    apt_update_once
}

# --- the debug server ---------------------------------------------------------
# The source: the upstream tarball inside Debian's postgresql-15 source
# package, of the installed server's version when the archive still has it,
# or else of the newest version it has (a minor version apart at most).
# Sets PG_UPSTREAM and PG_SRC.
fetch_source() {
    local installed versions v tarball
    installed=$(dpkg-query -W -f='${Version}' postgresql-$PG_MAJOR 2>/dev/null || true)
    # a cached source tree of the installed version, or of any version
    for v in "${installed%%-*}" $(cd "$SRC_ROOT" 2>/dev/null && for d in postgresql-$PG_MAJOR.*; do [ -d "$d" ] && echo "${d#postgresql-}"; done | sort -rV); do
        if [ -n "$v" ] && [ -f "$SRC_ROOT/postgresql-$v/configure" ]; then
            PG_UPSTREAM=$v PG_SRC=$SRC_ROOT/postgresql-$v
            return
        fi
    done
    ensure_deb_src
    versions=$( { echo "$installed"; apt-cache showsrc postgresql-$PG_MAJOR | sed -n 's/^Version: //p' | sort -rV; } \
                | awk 'NF && !seen[$0]++')
    mkdir -p "$SRC_ROOT/download"
    for v in $versions; do
        tarball=$(find_tarball "${v%%-*}")
        if [ -z "$tarball" ]; then
            say "downloading the source of postgresql-$PG_MAJOR $v"
            (cd "$SRC_ROOT/download" && apt-get source -qq --download-only "postgresql-$PG_MAJOR=$v" 2>&1 \
                | grep -v unsandboxed >&2) || true
            tarball=$(find_tarball "${v%%-*}")
        fi
        if [ -n "$tarball" ]; then
            [ "$v" = "$installed" ] || say "note: building $v (the archive has no source of the installed $installed)"
            tar -xf "$tarball" -C "$SRC_ROOT"
            PG_UPSTREAM=${v%%-*} PG_SRC=$SRC_ROOT/postgresql-${v%%-*}
            [ -f "$PG_SRC/configure" ] || { say "unexpected layout of $tarball"; exit 1; }
            return
        fi
    done
    say "could not download the source of postgresql-$PG_MAJOR"
    exit 1
}

find_tarball() {
    local t
    for t in "$SRC_ROOT"/download/postgresql-${PG_MAJOR}_"$1".orig.tar.*; do
        if [ -f "$t" ]; then echo "$t"; return; fi
    done
    return 0
}

build_debug_server() {
    local stamp
    fetch_source
    stamp="postgresql $PG_UPSTREAM ${CONFIGURE_FLAGS[*]} CFLAGS=$DEBUG_CFLAGS"
    if [ $rebuild -eq 0 ] && [ -x "$PREFIX/bin/postgres" ] \
       && [ "$(cat "$PREFIX/.sales_kpi_build" 2>/dev/null)" = "$stamp" ]; then
        say "debug server: cached in $PREFIX ($stamp)"
        BUILD_SECONDS=0
        return
    fi
    local t0; t0=$(date +%s)
    say "building PostgreSQL $PG_UPSTREAM (${CONFIGURE_FLAGS[*]} CFLAGS=\"$DEBUG_CFLAGS\") into $PREFIX"
    local blog=$SRC_ROOT/build-$PG_UPSTREAM.log
    (
        cd "$PG_SRC"
        [ ! -f GNUmakefile ] || make -s distclean >/dev/null 2>&1 || true
        ./configure --prefix="$PREFIX" "${CONFIGURE_FLAGS[@]}" CFLAGS="$DEBUG_CFLAGS"
        nice make -s -j"$(nproc)"
        rm -rf "$PREFIX"
        make -s install
    ) >"$blog" 2>&1 || { tail -40 "$blog"; say "build failed, see $blog"; exit 1; }
    echo "$stamp" >"$PREFIX/.sales_kpi_build"
    BUILD_SECONDS=$(elapsed "$t0")
    say "debug server built in ${BUILD_SECONDS}s"
}

# pgTAP is plain SQL: copy Debian's files into the prefix's extension directory
install_pgtap() {
    local ext; ext=$("$PREFIX/bin/pg_config" --sharedir)/extension
    if ! ls "$ext"/pgtap.control >/dev/null 2>&1; then
        say "copying pgTAP into $ext"
        cp /usr/share/postgresql/$PG_MAJOR/extension/pgtap* "$ext"/
    fi
}

# --- the extension ------------------------------------------------------------
build_extension() {
    EXT_DIR=$LOG_DIR/build
    mkdir -p "$EXT_DIR"
    local d
    for d in Makefile sales_kpi.control src sql expected releases test; do
        [ -e "$SALES_KPI_ROOT/$d" ] && cp -a "$SALES_KPI_ROOT/$d" "$EXT_DIR/"
    done
    find "$EXT_DIR/src" \( -name '*.o' -o -name '*.so' -o -name '*.bc' \) -delete
    rm -f "$EXT_DIR"/sales_kpi--[0-9]*.[0-9]*.[0-9]*.sql
    say "building sales_kpi against $PREFIX"
    make -C "$EXT_DIR" -s PG_CONFIG="$PREFIX/bin/pg_config" >"$LOG_DIR/ext-build.log" 2>&1 \
        && make -C "$EXT_DIR" -s PG_CONFIG="$PREFIX/bin/pg_config" install >>"$LOG_DIR/ext-build.log" 2>&1 \
        || { cat "$LOG_DIR/ext-build.log"; say "extension build failed"; exit 1; }
    # the scratch outputs of the suites are the server's (postgres) to write
    chown -R postgres:postgres "$EXT_DIR"
}

# --- the cluster under valgrind -------------------------------------------------
start_vg_cluster() {
    CLUSTER_DIR=$(mktemp -d /tmp/sales_kpi_vg_pg.XXXXXX)
    chown postgres:postgres "$CLUSTER_DIR"
    chmod 700 "$CLUSTER_DIR"
    VG_DIR=$LOG_DIR/valgrind
    mkdir -p "$VG_DIR"
    chown postgres:postgres "$VG_DIR" "$LOG_DIR"
    say "initdb in $CLUSTER_DIR"
    runuser -u postgres -- "$PREFIX/bin/initdb" -D "$CLUSTER_DIR/data" -U postgres \
        --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 \
        || { cat "$LOG_DIR/initdb.log"; exit 1; }
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$CLUSTER_DIR'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 2GB
shared_buffers = 128MB
max_parallel_workers_per_gather = 2
# which backend ran which test: the pid of a Valgrind log is in the line
# "connection authorized: ... application_name=pg_regress/TEST" (or pgtap/FILE)
log_line_prefix = '%m [%p] %a '
log_connections = on
CONF
    local cmd=("$PREFIX/bin/postgres" -D "$CLUSTER_DIR/data")
    if [ $use_valgrind -eq 1 ]; then
        local supp=(--suppressions="$PG_SRC/src/tools/valgrind.supp")
        [ -f "$SALES_KPI_ROOT/scripts/valgrind.supp" ] && supp+=(--suppressions="$SALES_KPI_ROOT/scripts/valgrind.supp")
        cmd=(valgrind --quiet --trace-children=yes --track-origins=yes --read-var-info=yes
             --leak-check=no --num-callers=30 "${supp[@]}" --gen-suppressions=all
             --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
             --log-file="$VG_DIR/%p.log" "${cmd[@]}")
    fi
    if [ $use_valgrind -eq 1 ]; then say "starting the server under valgrind"; else say "starting the server"; fi
    runuser -u postgres -- "${cmd[@]}" >"$LOG_DIR/server.log" 2>&1 </dev/null &
    local i
    for i in $(seq 1 600); do
        "$PREFIX/bin/pg_isready" -q -h "$CLUSTER_DIR" -p 5432 && break
        sleep 1
    done
    "$PREFIX/bin/pg_isready" -q -h "$CLUSTER_DIR" -p 5432 || { tail -20 "$LOG_DIR/server.log"; say "server did not start"; exit 1; }
    export PGHOST=$CLUSTER_DIR PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

stop_vg_cluster() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ]; then
        runuser -u postgres -- "$PREFIX/bin/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -t 600 stop >/dev/null 2>&1 || true
        # a server that would not stop: end the postmaster recorded in its pid file
        if [ -f "$CLUSTER_DIR/data/postmaster.pid" ]; then
            kill -9 "$(head -1 "$CLUSTER_DIR/data/postmaster.pid")" 2>/dev/null || true
        fi
        rm -rf "$CLUSTER_DIR"
    fi
    CLUSTER_DIR=
}

# --- run ------------------------------------------------------------------------
LOG_DIR=$(mktemp -d /tmp/sales_kpi_valgrind.XXXXXX)
chmod 755 "$LOG_DIR"
trap 'stop_vg_cluster' EXIT

ensure_debug_packages
build_debug_server
[ $run_pgtap -eq 1 ] && install_pgtap
build_extension
export PATH=$PREFIX/bin:$PATH
start_vg_cluster
t_tests=$(date +%s)

passed=0 failed=0
tally() {
    ok=$(grep -cE '^ *ok [0-9]+|\.\.\. ok |^ok +[0-9]+ +[-+] ' "$1" || true)
    bad=$(grep -cE '^ *not ok [0-9]+|\.\.\. FAILED|^not ok +[0-9]+ +[-+] ' "$1" || true)
    passed=$((passed + ok)) failed=$((failed + bad))
}

regress_passed=0 regress_failed=0 t_regress=0
if [ $run_regress -eq 1 ]; then
    say "pg_regress"
    regress_args=()
    [ -n "$regress_list" ] && regress_args=(REGRESS="$regress_list")
    set +e
    make -C "$EXT_DIR" -s PG_CONFIG="$PREFIX/bin/pg_config" installcheck "${regress_args[@]}" \
        >"$LOG_DIR/regress.log" 2>&1
    rc=$?
    set -e
    cat "$LOG_DIR/regress.log"
    tally "$LOG_DIR/regress.log"
    regress_passed=$ok regress_failed=$bad
    if [ $rc -ne 0 ]; then
        [ "$bad" -gt 0 ] || { failed=$((failed + 1)); regress_failed=$((regress_failed + 1)); }
        [ -f "$EXT_DIR/regression.diffs" ] && head -200 "$EXT_DIR/regression.diffs"
    fi
    t_regress=$(elapsed "$t_tests")
fi

tap_passed=0 tap_failed=0
if [ $run_pgtap -eq 1 ]; then
    say "pgTAP"
    t0=$(date +%s)
    createdb sales_kpi_tap
    psql -X -q -v ON_ERROR_STOP=1 -d sales_kpi_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION sales_kpi'
    files=${tap_list:-$(cd "$EXT_DIR" && ls test/*.sql)}
    # one pg_prove per file, so that the server log names the file each
    # backend ran (application_name pgtap/FILE)
    rc=0
    : >"$LOG_DIR/tap.log"
    for f in $files; do
        (cd "$EXT_DIR" && PGAPPNAME="pgtap/$(basename "$f" .sql)" pg_prove --timer -v -d sales_kpi_tap "$f") \
            >>"$LOG_DIR/tap.log" 2>&1 || rc=1
    done
    rm -f /tmp/sales_kpi_copy_*.bin /tmp/sales_kpi_dur_*.bin /tmp/sales_kpi_surv_*.bin \
          /tmp/sales_kpi_lift_*.bin /tmp/sales_kpi_funnel_*.bin /tmp/sales_kpi_bin_*
    grep -vE '^ *ok [0-9]+' "$LOG_DIR/tap.log" || true
    tally "$LOG_DIR/tap.log"
    tap_passed=$ok tap_failed=$bad
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then failed=$((failed + 1)); tap_failed=$((tap_failed + 1)); fi
    t_tap=$(elapsed "$t0")
fi

shell_passed=0 shell_failed=0
if [ $run_shell -eq 1 ]; then
    t0=$(date +%s)
    for t in "$EXT_DIR"/test/*.sh; do
        [ -e "$t" ] || continue
        say "test/$(basename "$t")"
        set +e
        (cd "$EXT_DIR" && SALES_KPI_PG_BIN=$PREFIX/bin bash "$t") >"$LOG_DIR/sh.log" 2>&1
        rc=$?
        set -e
        cat "$LOG_DIR/sh.log"
        tally "$LOG_DIR/sh.log"
        shell_passed=$((shell_passed + ok)) shell_failed=$((shell_failed + bad))
        if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then failed=$((failed + 1)); shell_failed=$((shell_failed + 1)); fi
    done
    t_shell=$(elapsed "$t0")
fi

say "stopping the server"
stop_vg_cluster
t_run=$(elapsed "$t_tests")

# --- what the server said ---------------------------------------------------------
# pid -> the test its backend ran (application_name), from the server log
which_test() {
    sed -n "s/.*\[$1\] .*connection authorized: .*application_name=\([^ ]*\).*/\1/p" "$LOG_DIR/server.log" | head -1
}
vg_errors=0 vg_procs=0
if [ $use_valgrind -eq 1 ]; then
    for f in "$VG_DIR"/*.log; do
        [ -e "$f" ] || continue
        n=$(grep -c '^==[0-9]*== VALGRINDERROR-BEGIN' "$f" || true)
        [ "$n" -gt 0 ] || continue
        vg_errors=$((vg_errors + n)) vg_procs=$((vg_procs + 1))
        pid=$(basename "$f" .log)
        echo
        echo "=== valgrind: $n error(s) in process $pid ($(which_test "$pid")): $f"
        sed -n '/VALGRINDERROR-BEGIN/,/VALGRINDERROR-END/p' "$f" | head -120
    done
    # logs of processes that Valgrind could not run, or that it ended
    if grep -l 'Valgrind.*\(cannot\|unhandled\|FATAL\)\|Process terminating' "$VG_DIR"/*.log >/dev/null 2>&1; then
        echo; echo "=== valgrind reported a terminated or unsupported process:"
        grep -l 'Valgrind.*\(cannot\|unhandled\|FATAL\)\|Process terminating' "$VG_DIR"/*.log
        vg_errors=$((vg_errors + 1))
    fi
fi
# failed assertions and crashed processes
traps=$(grep -c 'TRAP: ' "$LOG_DIR/server.log" || true)
crashes=$(grep -cE 'was terminated by signal|terminated by exception|server process .* exited with exit code [^01]' "$LOG_DIR/server.log" || true)
if [ "$traps" -gt 0 ] || [ "$crashes" -gt 0 ]; then
    echo; echo "=== server log: failed assertions and crashed processes"
    grep -E -B2 -A20 'TRAP: |was terminated by signal|terminated by exception' "$LOG_DIR/server.log" | head -200
fi

echo
echo "Summary (log directory: $LOG_DIR)"
echo "  server:          $("$PREFIX/bin/postgres" --version), cassert, -O0 -DUSE_VALGRIND$( [ $use_valgrind -eq 1 ] && echo ', under valgrind memcheck')"
echo "  debug build:     ${BUILD_SECONDS}s ($( [ "$BUILD_SECONDS" -eq 0 ] && echo cached || echo built))"
[ $run_regress -eq 1 ] && echo "  pg_regress:      $regress_passed passed, $regress_failed failed (${t_regress}s)"
[ $run_pgtap -eq 1 ] && echo "  pgTAP:           $tap_passed assertions passed, $tap_failed failed (${t_tap}s)"
[ $run_shell -eq 1 ] && echo "  shell checks:    $shell_passed passed, $shell_failed failed (${t_shell}s)"
[ $use_valgrind -eq 1 ] && echo "  valgrind errors: $vg_errors (in $vg_procs of $(ls "$VG_DIR" | wc -l) server processes)"
echo "  assertion failures: $traps, crashed server processes: $crashes"
echo "  wall time:       $(elapsed "$t_start")s in all, ${t_run}s for the suites"
echo
failed=$((failed + vg_errors + traps + crashes))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
