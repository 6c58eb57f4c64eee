# Shared set-up for scripts/demo.sh and scripts/test.sh (sourced, not run).
#
# Installs what is missing (Debian 12 + PostgreSQL 15), builds and installs
# the extension, and runs a throwaway cluster as the postgres OS user in a
# temporary directory, listening on a unix socket only.

set -euo pipefail

SALES_KPI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
# SALES_KPI_PG_BIN points at another (relocated) copy of the server's
# binaries, so that several working copies can build and test side by side
PG_BIN=${SALES_KPI_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}

say() { printf '==> %s\n' "$*" >&2; }

# Install the packages the build and the tests need, once.
ensure_packages() {
    local want=(make gcc postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR
                postgresql-$PG_MAJOR-pgtap libtap-parser-sourcehandler-pgtap-perl)
    local missing=() p
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            say "missing packages: ${missing[*]} (run as root, or install them first)"
            exit 1
        fi
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    export PATH=$PG_BIN:$PATH
}

build_and_install() {
    say "building and installing sales_kpi"
    make -C "$SALES_KPI_ROOT" -s PG_CONFIG=$PG_BIN/pg_config >/dev/null
    make -C "$SALES_KPI_ROOT" -s PG_CONFIG=$PG_BIN/pg_config install >/dev/null
}

# Start a cluster in a fresh temporary directory; sets PGHOST/PGPORT/PGUSER
# so that psql, pg_regress and pg_prove reach it.
start_cluster() {
    CLUSTER_DIR=$(mktemp -d /tmp/sales_kpi_pg.XXXXXX)
    chown postgres:postgres "$CLUSTER_DIR"
    chmod 700 "$CLUSTER_DIR"
    say "starting a throwaway cluster in $CLUSTER_DIR"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$CLUSTER_DIR/data" -U postgres \
        --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$CLUSTER_DIR/initdb.log"
    # unix socket only; a disposable cluster needs no durability, and bulk
    # loads (load_demo, benchmarks) want room for WAL and buffers
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$CLUSTER_DIR'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 8GB
checkpoint_timeout = 30min
shared_buffers = ${SALES_KPI_SHARED_BUFFERS:-1GB}
maintenance_work_mem = 512MB
temp_buffers = 512MB
max_parallel_workers_per_gather = 2
CONF
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -w -l "$CLUSTER_DIR/server.log" \
        start >/dev/null
    export PGHOST=$CLUSTER_DIR PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

stop_cluster() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$CLUSTER_DIR"
    fi
}

# Milliseconds one statement takes by the server's clock (no client or
# network time): server_ms DATABASE "STATEMENT" (the statement runs under
# PERFORM, so it may be a query).
server_ms() {
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "
        DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
            $2;
            RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000);
        END \$\$;" 2>&1 | sed -n 's/.*ms=\([0-9]*\).*/\1/p'
}
