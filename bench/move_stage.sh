#!/usr/bin/env bash
# move_stage latency benchmark (not part of the test suite): times
# move_stage called by pgbench from one client, one call per transaction,
# each call moving a random open deal to the next open stage of its
# pipeline, and prints the median and the 95th percentile (pgbench's
# per-transaction log, so the figures include the client round trip).
# It runs --rounds rounds of --moves calls and prints each: the first round
# after a load finds few of the pages a move touches in shared buffers, the
# later ones show a server in use.
# Stage gates are off while it runs (so that no move is refused), then put
# back as they were; its own tables live in schema sales_kpi_bench_moves.
#
#   bench/move_stage.sh --database NAME [--moves 2000] [--rounds 3]
#       on a database of the running cluster (PGHOST/PGPORT/PGUSER);
#       bench/bulk_import.sh calls it on its largest database
#   bench/move_stage.sh [--deals 1000000] [--seed 1] [--until 2026-10-31]
#                       [--moves 2000] [--rounds 3] [--keep]
#       builds, installs, starts a throwaway cluster and loads
#       load_demo(--deals, --seed, --until) first.  Its shared_buffers is
#       SALES_KPI_SHARED_BUFFERS, by default a quarter of the machine's
#       memory (the usual setting for a database server), so that the
#       tables a move touches fit as on a server sized for its data.
source "$(dirname "$0")/../scripts/lib.sh"

database="" deals=1000000 seed=1 until=2026-10-31 moves=2000 rounds=3 keep=no
while [ $# -gt 0 ]; do
    case "$1" in
        --database) database=$2; shift 2 ;;
        --deals) deals=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --until) until=$2; shift 2 ;;
        --moves) moves=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --keep) keep=yes; shift ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
work=$(mktemp -d /tmp/sales_kpi_moves.XXXXXX)
chmod 777 "$work"
if [ -z "$database" ]; then
    if [ -z "${SALES_KPI_SHARED_BUFFERS:-}" ]; then
        SALES_KPI_SHARED_BUFFERS="$(awk '/^MemTotal:/ { print int($2 / 4 / 1024) }' /proc/meminfo)MB"
        export SALES_KPI_SHARED_BUFFERS
    fi
    ensure_packages
    build_and_install
    start_cluster
    database=moves_$deals
    if [ "$keep" = yes ]; then
        trap 'rm -rf "$work"; say "the cluster keeps running: psql -h $CLUSTER_DIR -U postgres $database"' EXIT
    else
        trap 'stop_cluster; rm -rf "$work"' EXIT
    fi
    createdb $database
    q $database "CREATE EXTENSION sales_kpi"
    say "loading load_demo($deals, $seed, '$until')"
    q $database "SELECT count(*) FROM sales_kpi.load_demo($deals, $seed, '$until')" >/dev/null 2>&1
    q $database "VACUUM ANALYZE"
else
    trap 'rm -rf "$work"' EXIT
fi

say "move_stage: $rounds rounds of $moves calls on $database"
# the pipelines' gate modes are put back at the end
q $database "CREATE SCHEMA sales_kpi_bench_moves;
    CREATE TABLE sales_kpi_bench_moves.gate_modes AS SELECT pipeline_id, gate_mode FROM sales_kpi.pipeline;
    UPDATE sales_kpi.pipeline SET gate_mode = 'off'"
total_deals=$(q $database "SELECT count(*) FROM sales_kpi.opportunity")
rows=""
for round in $(seq 1 "$rounds"); do
    # the moves to make: each open deal to its next open stage, as the deals
    # stand at the start of the round
    q $database "DROP TABLE IF EXISTS sales_kpi_bench_moves.moves;
        CREATE TABLE sales_kpi_bench_moves.moves AS
        SELECT row_number() OVER (ORDER BY o.opportunity_id) AS i, o.opportunity_id, nx.stage_id
          FROM sales_kpi.opportunity o
          JOIN sales_kpi.stage s ON s.stage_id = o.stage_id AND s.kind = 'open'
          CROSS JOIN LATERAL (SELECT n.stage_id FROM sales_kpi.stage n
                               WHERE n.pipeline_id = s.pipeline_id AND n.kind = 'open' AND n.position > s.position
                               ORDER BY n.position LIMIT 1) nx;
        CREATE UNIQUE INDEX ON sales_kpi_bench_moves.moves (i); ANALYZE sales_kpi_bench_moves.moves"
    open_deals=$(q $database "SELECT count(*) FROM sales_kpi_bench_moves.moves")
    cat >"$work/move.sql" <<EOS
\set i random(1, $open_deals)
SELECT sales_kpi.move_stage(m.opportunity_id, m.stage_id) FROM sales_kpi_bench_moves.moves m WHERE m.i = :i;
EOS
    rm -f "$work"/latency.*
    (cd "$work" && pgbench -n -f move.sql -t "$moves" -c 1 -l --log-prefix=latency "$database" >"$work/pgbench.out" 2>&1) \
        || { cat "$work/pgbench.out"; exit 1; }
    awk '{ print $3 }' "$work"/latency.* | sort -n >"$work/lat"
    count=$(wc -l <"$work/lat")
    median=$(awk -v n="$count" 'NR == int((n + 1) / 2) { printf "%.3f", $1 / 1000 }' "$work/lat")
    p95=$(awk -v n="$count" 'NR == int(n * 0.95) { printf "%.3f", $1 / 1000 }' "$work/lat")
    rows="$rows| $database | $total_deals | $open_deals | $round | $count | $median | $p95 |
"
done
q $database "UPDATE sales_kpi.pipeline p SET gate_mode = g.gate_mode
               FROM sales_kpi_bench_moves.gate_modes g WHERE g.pipeline_id = p.pipeline_id;
             DROP SCHEMA sales_kpi_bench_moves CASCADE" 2>/dev/null
echo
echo "| database | deals | open deals | round | calls | median ms | 95th percentile ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf "%s" "$rows"
