#!/usr/bin/env bash
# The writers of a deal lock it in id order (lock_deals), so statements of
# the extension never deadlock each other.  A multi-row UPDATE of
# opportunity, though, locks its rows in the order its plan finds them:
# against a statement that locks the same deals in id order it conflicts,
# and PostgreSQL breaks the cycle with a deadlock error, SQLSTATE 40P01,
# which is safe to retry.  Locking the deals in id order first (SELECT ...
# ORDER BY opportunity_id FOR NO KEY UPDATE) avoids it.  Either way the
# deals stay consistent with their history.  Prints TAP.
#
# The UPDATE finds deal b, then waits until another backend waits for a
# lock before it goes on to deal a, so the interleaving does not depend on
# timing.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with sales_kpi installed
# (scripts/test.sh provides them).
set -uo pipefail

n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; echo "#   got:      $2"; echo "#   expected: $3"; fi; }
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

db=lock_order_test
work=$(mktemp -d)
trap 'rm -rf "$work"; dropdb --if-exists "$db" 2>/dev/null' EXIT
dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
q "CREATE EXTENSION sales_kpi"
q "SELECT count(*) FROM sales_kpi.load_demo(200, 4)" >/dev/null
# true once another backend waits for a lock this one holds (at most 20 s;
# a backend waiting for anything else, an autovacuum worker say, does not
# count)
q "CREATE FUNCTION public.lock_waiter_seen() RETURNS boolean LANGUAGE plpgsql AS \$\$
   DECLARE tries int := 0;
   BEGIN
       LOOP
           PERFORM pg_stat_clear_snapshot();
           EXIT WHEN tries >= 1000 OR EXISTS (
               SELECT 1 FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND pg_backend_pid() = ANY (pg_blocking_pids(pid)));
           PERFORM pg_sleep(0.02);
           tries := tries + 1;
       END LOOP;
       RETURN true;
   END \$\$"

# wait until a backend runs lock_waiter_seen()
wait_for_pause() {
    for _ in $(seq 500); do
        [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                  AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()")" -gt 0 ] && return
        sleep 0.02
    done
}

# update_then_insert PRELOCK A B: one UPDATE finds deal B, pauses, then deal
# A; meanwhile one INSERT moves A and B (its trigger locks A, then B).
# PRELOCK = yes: the UPDATE's transaction first locks A and B in id order.
# Prints the SQLSTATE of each (00000 when it committed).
update_then_insert() {
    local prelock=$1 a=$2 b=$3 lock=
    [ "$1" = yes ] && lock="SELECT count(*) FROM (SELECT 1 FROM sales_kpi.opportunity
                                WHERE opportunity_id IN ($a, $b) ORDER BY opportunity_id FOR NO KEY UPDATE) l;"
    psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db" >"$work/update.out" 2>&1 <<SQL &
BEGIN;
$lock
WITH u AS MATERIALIZED (SELECT * FROM (VALUES (1, $b::bigint), (2, $a::bigint)) v(n, id) ORDER BY n)
UPDATE sales_kpi.opportunity o
   SET expected_close = current_date + 30
  FROM u
 WHERE o.opportunity_id = u.id
   AND (u.n = 1 OR public.lock_waiter_seen());
COMMIT;
SQL
    local update_pid=$!
    wait_for_pause
    psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db" >"$work/insert.out" 2>&1 -c "
        INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
        SELECT o.opportunity_id, s.stage_id, clock_timestamp()
          FROM sales_kpi.opportunity o
          JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'lost'
         WHERE o.opportunity_id IN ($a, $b)"
    wait $update_pid
    local f state
    for f in update insert; do
        state=$(sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' "$work/$f.out" | head -1)
        printf '%s ' "${state:-00000}"
    done
    echo
}
# exactly one of the two states is 40P01, the other 00000
one_deadlock() { case "$1" in "40P01 00000 "|"00000 40P01 ") echo yes ;; *) echo "no: $1" ;; esac; }
in_sync() {
    q "SELECT count(*) FROM sales_kpi.check_consistency() WHERE table_name = 'opportunity' AND row_key IN ('$1', '$2')"
}

set -- $(q "SELECT opportunity_id FROM sales_kpi.opportunity WHERE closed_at IS NULL ORDER BY opportunity_id LIMIT 4")

check "an UPDATE finding two deals out of id order and an INSERT moving both: one fails with 40P01, the other commits" \
      "$(one_deadlock "$(update_then_insert no "$1" "$2")")" "yes"
check "both deals still agree with their history" "$(in_sync "$1" "$2")" "0"

check "the same UPDATE after locking the deals in id order: both commit" \
      "$(update_then_insert yes "$3" "$4")" "00000 00000 "
check "both deals moved and agree with their history" \
      "$(q "SELECT count(*) FROM sales_kpi.opportunity o JOIN sales_kpi.stage s USING (stage_id)
             WHERE o.opportunity_id IN ($3, $4) AND s.kind = 'lost'")$(in_sync "$3" "$4")" "20"

echo "1..$n"
