#!/usr/bin/env bash
# Concurrent writers of one deal serialize cleanly: a writer that waited for
# another's lock on the deal goes on with the history as that one committed
# it, not with what it read before the wait; statements that move many
# deals in opposite orders do not deadlock.  Prints TAP.
#
# Each case holds a first transaction open until the second one is seen
# waiting for a lock (pg_stat_activity), then commits it, so the order of
# events does not depend on timing.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with sales_kpi installed
# (scripts/test.sh provides them).
set -uo pipefail

n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; echo "#   got:      $2"; echo "#   expected: $3"; fi; }
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

db=conc_test
work=$(mktemp -d)
trap 'rm -rf "$work"; dropdb --if-exists "$db" 2>/dev/null' EXIT
dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
q "CREATE EXTENSION sales_kpi"
q "SELECT count(*) FROM sales_kpi.load_demo(400, 3, '2026-10-31')" >/dev/null

# open deals and a later open stage of their pipeline
deals=$(q "SELECT string_agg(o.opportunity_id::text, ' ' ORDER BY o.opportunity_id)
             FROM (SELECT opportunity_id FROM sales_kpi.opportunity
                    WHERE closed_at IS NULL ORDER BY opportunity_id LIMIT 40) o")
set -- $deals

# "first" runs in a transaction that stays open until another backend waits
# for a lock, then commits; "second" is the statement that waits.  Prints
# the exit status of both, and the second's error, if any.
race() {
    local first=$1 second=$2
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" >"$work/first.out" 2>&1 <<SQL &
BEGIN;
$first;
DO \$\$
DECLARE waited_for interval := '0';
BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM pg_stat_activity
                       WHERE datname = current_database() AND wait_event_type = 'Lock'
                         AND pid <> pg_backend_pid())
          AND waited_for < interval '20 seconds' LOOP
        PERFORM pg_sleep(0.02);
        -- pg_stat_activity is read once per transaction unless cleared
        PERFORM pg_stat_clear_snapshot();
        waited_for := waited_for + interval '0.02 seconds';
    END LOOP;
END
\$\$;
COMMIT;
SQL
    local first_pid=$!
    # the second statement starts once the first holds its locks
    sleep 0.3
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" -c "$second" >"$work/second.out" 2>&1
    local second_rc=$?
    wait $first_pid
    echo "$? $second_rc $(grep -h ERROR "$work/first.out" "$work/second.out" | head -1)"
}

# the newest event of a deal, and a stage its pipeline has beyond the current one
newest_event() { q "SELECT stage_event_id FROM sales_kpi.stage_event WHERE opportunity_id = $1
                     ORDER BY entered_at DESC, stage_event_id DESC LIMIT 1"; }
lost_stage() { q "SELECT s.stage_id FROM sales_kpi.stage s JOIN sales_kpi.opportunity o USING (pipeline_id)
                   WHERE o.opportunity_id = $1 AND s.kind = 'lost'"; }
in_sync() {
    q "SELECT count(*) FROM sales_kpi.check_consistency() WHERE row_key = '$1' AND table_name = 'opportunity'"
}

for try in 1 2 3 4; do
    deal=$1; shift
    ev=$(newest_event $deal)
    check "try $try: a move and a concurrent correction of the deal's newest event both commit" \
          "$(race "SELECT sales_kpi.move_stage($deal, $(lost_stage $deal), now())" \
                  "UPDATE sales_kpi.stage_event SET entered_at = entered_at - interval '1 second' WHERE stage_event_id = $ev")" \
          "0 0 "
    check "try $try: the deal says what its newest event says" "$(in_sync $deal)" "0"
done

for try in 1 2 3 4; do
    deal=$1; shift
    ev=$(newest_event $deal)
    check "try $try: a move and a concurrent deletion of the deal's newest event both commit" \
          "$(race "SELECT sales_kpi.move_stage($deal, $(lost_stage $deal), now())" \
                  "DELETE FROM sales_kpi.stage_event WHERE stage_event_id = $ev")" \
          "0 0 "
    check "try $try: the deal says what its newest event says after the deletion" "$(in_sync $deal)" "0"
done

deal=$1; shift
check "two moves of one deal, the second waiting for the first, both commit" \
      "$(race "SELECT sales_kpi.move_stage($deal, $(lost_stage $deal), now())" \
              "SELECT sales_kpi.move_stage($deal, $(lost_stage $deal), now() + interval '1 hour')")" "0 0 "
check "after two moves the deal is in the later one's stage" \
      "$(q "SELECT count(*) FROM sales_kpi.stage_event WHERE opportunity_id = $deal AND entered_at > now()")$(in_sync $deal)" "10"

deal=$1; shift
check "a snapshot written directly waits for a move of the deal and both commit" \
      "$(race "SELECT sales_kpi.move_stage($deal, $(lost_stage $deal), now(), 12345)" \
              "INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount)
               VALUES ($deal, now() + interval '1 minute', 777)")" "0 0 "
check "the deal has the amount of its newest snapshot" \
      "$(q "SELECT amount FROM sales_kpi.opportunity WHERE opportunity_id = $deal")$(in_sync $deal)" "7770"

# twenty deals moved by two statements in opposite orders: the triggers lock
# them in id order, so one waits for the other instead of deadlocking
hot="$(echo "$@" | cut -d' ' -f1-20 | tr ' ' ',')"
bulk_move() {
    echo "INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
          SELECT o.opportunity_id, s.stage_id, now() + interval '$2'
            FROM sales_kpi.opportunity o
            JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'lost'
           WHERE o.opportunity_id IN ($hot) ORDER BY o.opportunity_id $1"
}
check "two bulk moves of the same twenty deals in opposite orders both commit" \
      "$(race "$(bulk_move ASC '1 hour')" "$(bulk_move DESC '2 hours')")" "0 0 "
check "check_consistency finds nothing after the races" "$(q "SELECT count(*) FROM sales_kpi.check_consistency()")" "0"

# a deal written in a currency while its last rate is deleted: the deal's
# statement locks the rates it relies on, so the delete waits for it and
# then refuses (as with a foreign key), in either order
q "INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate) VALUES ('NZD', '2026-01-01', 0.6)"
check "a deal in a currency and the removal of its last rate, at once: the removal waits and is refused" \
      "$(race "INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, currency) VALUES (1, 1, 1, 'kiwi', 5, 'NZD')" \
              "DELETE FROM sales_kpi.fx_rate WHERE currency = 'NZD'")" \
      "0 1 ERROR:  cannot remove the last exchange rate of currency NZD: opportunity $(q "SELECT max(opportunity_id) FROM sales_kpi.opportunity") is in it"
q "INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate) VALUES ('AUD', '2026-01-01', 0.65)"
check "the removal first: the deal waits for it and is refused" \
      "$(race "DELETE FROM sales_kpi.fx_rate WHERE currency = 'AUD'" \
              "INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, currency) VALUES (1, 1, 1, 'aussie', 5, 'AUD')")" \
      "0 1 ERROR:  opportunity $(( $(q "SELECT max(opportunity_id) FROM sales_kpi.opportunity") + 1 )) is in currency AUD, which has no exchange rate"
check "no deal is left in a currency without a rate" \
      "$(q "SELECT count(*) FROM sales_kpi.data_quality_findings() WHERE rule = 'missing_fx_rate'")" "0"

# a restore's COPY (check_function_bodies off) checks its keys set-wise at
# the end, locking the rows they refer to as a foreign key does: a
# concurrent delete of a deal waits for it, or is waited for and refused
contact=$(q "SELECT min(contact_id) FROM sales_kpi.contact")
restore_copy() {
    echo "SET check_function_bodies = off; COPY sales_kpi.opportunity_contact (opportunity_id, contact_id) FROM PROGRAM 'printf \"$1\\t$contact\\n\"'"
}
new_deal() {
    q "INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount) VALUES (1, 1, 1, 'restored', 5)
       RETURNING opportunity_id"
}
d1=$(new_deal)
check "a restore's COPY first: a delete of the deal it refers to waits for it, then both commit" \
      "$(race "$(restore_copy $d1)" "DELETE FROM sales_kpi.opportunity WHERE opportunity_id = $d1")" "0 0 "
d2=$(new_deal)
check "the delete first: the restore's COPY waits for it and is refused" \
      "$(race "DELETE FROM sales_kpi.opportunity WHERE opportunity_id = $d2" "$(restore_copy $d2)")" \
      "0 1 ERROR:  insert or update on table \"opportunity_contact\" violates foreign key constraint \"opportunity_contact_opportunity_id_fkey\""
check "no contact row is left without its deal" \
      "$(q "SELECT count(*) FROM sales_kpi.opportunity_contact c
             WHERE NOT EXISTS (SELECT 1 FROM sales_kpi.opportunity o WHERE o.opportunity_id = c.opportunity_id)")" "0"

# row security: a rep moves one of their deals while an admin gives it to a
# rep outside their tree.  The move's statement waited for the deal and then
# no longer sees it, so it cannot bring the deal in step with the event:
# refused as a serialization failure (a retry is refused by the policy),
# never left with a deal that says another stage than its history
rls_role=conc_rls_rep_$$
trap 'rm -rf "$work"; dropdb --if-exists "$db" 2>/dev/null; psql -X -q -d postgres -c "DROP ROLE IF EXISTS $rls_role" 2>/dev/null' EXIT
leaf=$(q "SELECT min(r.rep_id) FROM sales_kpi.rep r
           WHERE NOT EXISTS (SELECT 1 FROM sales_kpi.rep s WHERE s.manager_id = r.rep_id)
             AND EXISTS (SELECT 1 FROM sales_kpi.opportunity o WHERE o.owner_id = r.rep_id AND o.closed_at IS NULL
                           AND o.opportunity_id NOT IN ($(echo "$@" | tr ' ' ',')))")
other=$(q "SELECT min(rep_id) FROM sales_kpi.rep WHERE rep_id <> $leaf")
rls_deal=$(q "SELECT min(opportunity_id) FROM sales_kpi.opportunity WHERE owner_id = $leaf AND closed_at IS NULL")
q "CREATE ROLE $rls_role LOGIN;
   GRANT USAGE ON SCHEMA sales_kpi TO $rls_role;
   GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sales_kpi TO $rls_role;
   GRANT USAGE ON ALL SEQUENCES IN SCHEMA sales_kpi TO $rls_role;
   UPDATE sales_kpi.rep SET db_role = '$rls_role' WHERE rep_id = $leaf" >/dev/null
q "SELECT sales_kpi.enable_row_security()" >/dev/null
check "row security: a rep's move_stage of a deal given meanwhile to a rep outside their tree finds no deal" \
      "$(race "UPDATE sales_kpi.opportunity SET owner_id = $other WHERE opportunity_id = $rls_deal" \
              "SET ROLE $rls_role; SELECT sales_kpi.move_stage($rls_deal, $(lost_stage $rls_deal), now())")" \
      "0 1 ERROR:  opportunity $rls_deal does not exist"
check "row security: the deal still says what its newest event says" "$(in_sync $rls_deal)" "0"
q "UPDATE sales_kpi.opportunity SET owner_id = $leaf WHERE opportunity_id = $rls_deal" >/dev/null
check "row security: an event the rep inserts for such a deal is refused (40001)" \
      "$(race "UPDATE sales_kpi.opportunity SET owner_id = $other WHERE opportunity_id = $rls_deal" \
              "SET ROLE $rls_role; INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
               VALUES ($rls_deal, $(lost_stage $rls_deal), now())")" \
      "0 1 ERROR:  could not sync opportunity $rls_deal: it is no longer visible to the current role"
check "row security: check_consistency finds nothing" "$(q "SELECT count(*) FROM sales_kpi.check_consistency()")" "0"
q "SELECT sales_kpi.disable_row_security()" >/dev/null
q "REVOKE ALL ON ALL TABLES IN SCHEMA sales_kpi FROM $rls_role; REVOKE ALL ON ALL SEQUENCES IN SCHEMA sales_kpi FROM $rls_role;
   REVOKE USAGE ON SCHEMA sales_kpi FROM $rls_role" >/dev/null

echo "1..$n"
