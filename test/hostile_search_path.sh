#!/usr/bin/env bash
# Nothing sales_kpi runs depends on the caller's search_path.  A schema
# "evil" holds a look-alike of every common pg_catalog operator, of the
# functions and aggregates SQL code uses most and of the common type names,
# each raising SQLSTATE EV1L0 when called (test/include/hostile_schema.sql).
# With evil listed before pg_catalog, the extension is installed, the demo
# loaded, every view read, every KPI function called, every trigger path,
# move_stage, the aggregates and accessors run, as a superuser and as the
# role that owns the data, and with row-level security on as a rep: not one
# look-alike is ever called.  Prints TAP.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with sales_kpi installed
# (scripts/test.sh provides them).
set -uo pipefail

cd "$(dirname "$0")/.."
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }

db=hostile_path
owner=regress_hostile_owner
rep=regress_hostile_rep
work=$(mktemp -d)
cleanup() {
    dropdb --if-exists "$db" 2>/dev/null
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $owner" -c "DROP ROLE IF EXISTS $rep" 2>/dev/null
}
trap 'cleanup; rm -rf "$work"' EXIT
cleanup
createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f test/include/hostile_schema.sql
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE ROLE $owner LOGIN" -c "CREATE ROLE $rep LOGIN"
hostile_path="SET search_path = evil, pg_catalog, public"

# runs SQL as a role under the hostile search_path; passes when it succeeds
# and names the look-alike that was called when one was
run() {
    local what=$1 role=$2 sql=$3
    if psql -X -q -v ON_ERROR_STOP=1 -d "$db" -U "$role" -o /dev/null \
            -c "$hostile_path" -c "$sql" >"$work/out" 2>&1; then
        ok "$what (as $role)"
    else
        fail "$what (as $role)"
        grep -m3 -E 'ERROR|hostile' "$work/out" | sed 's/^/#   /'
    fi
}

# the control: under this search_path an unpinned name reaches evil
control=$(psql -X -q -d "$db" -c "$hostile_path" -c "SELECT 1::bigint = 1::bigint" 2>&1)
if grep -q 'hostile operator' <<<"$control"; then
    ok "control: an unqualified operator under the hostile search_path calls the look-alike"
else
    fail "control: an unqualified operator under the hostile search_path calls the look-alike"
fi

run "CREATE EXTENSION under the hostile search_path" postgres "CREATE EXTENSION sales_kpi"
run "load_demo" postgres "SELECT sales_kpi.load_demo(1500, 5, '2026-10-31')"

# the data owner: every privilege on the data, no superuser
psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
GRANT USAGE ON SCHEMA sales_kpi TO $owner;
GRANT ALL ON ALL TABLES IN SCHEMA sales_kpi TO $owner;
GRANT ALL ON ALL SEQUENCES IN SCHEMA sales_kpi TO $owner;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA sales_kpi TO $owner;
GRANT USAGE ON SCHEMA sales_kpi TO $rep;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sales_kpi TO $rep;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA sales_kpi TO $rep;
SQL

as_of="'2026-10-15 12:00:00+00'"
# every view, and every KPI view's function at a fixed instant
reads=""
while IFS='|' read -r view takes_as_of; do
    reads+="SELECT * FROM sales_kpi.$view
"
    if [ "$view" = pipeline_flow ]; then
        reads+="SELECT * FROM sales_kpi.pipeline_flow('2026-07-01', $as_of)
"
    elif [ "$takes_as_of" = t ]; then
        reads+="SELECT * FROM sales_kpi.$view(as_of => $as_of)
"
    fi
done < <(psql -X -qAt -d "$db" -c "
    SELECT c.relname, EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = c.relnamespace
                                 AND p.proname = c.relname AND 'as_of' = ANY (p.proargnames))
      FROM pg_class c
     WHERE c.relnamespace = 'sales_kpi'::regnamespace AND c.relkind = 'v' ORDER BY 1")
# the building blocks a user calls, the C passes the KPIs call (which run
# their own queries), the aggregates and their accessors
reads+="SELECT * FROM sales_kpi.pipeline_as_of($as_of)
SELECT * FROM sales_kpi.pipeline_as_of($as_of, team => 'North America 1', open_only => true)
SELECT * FROM sales_kpi.pipeline_flow_deals('2026-07-01', $as_of)
SELECT * FROM sales_kpi.closed_deals('2026-01-01', '2026-10-01', $as_of)
SELECT * FROM sales_kpi.periods('2026-01-01', '2026-10-01', 'week')
SELECT * FROM sales_kpi.check_consistency()
SELECT * FROM sales_kpi_internal.stage_stays($as_of, '{1,2,3,4,5}')
SELECT * FROM sales_kpi_internal.stage_stay_totals($as_of, '{1,2,3,4,5}', '{1,2}')
SELECT * FROM sales_kpi_internal.stage_event_walk($as_of, NULL, NULL, '{1}', '{2}', true)
SELECT * FROM sales_kpi_internal.gate_move_violations($as_of, NULL, NULL, '{1}', '{2}', '{1}', '{gate}')
SELECT * FROM sales_kpi_internal.stage_history_check($as_of, '{1}', '{2}', '{3}', 1, 1000)
SELECT sales_kpi.to_base(o.amount, o.currency, o.created_at::pg_catalog.date), sales_kpi.period_start(o.created_at), sales_kpi.period_end(o.created_at, 'month') FROM sales_kpi.opportunity o
SELECT sales_kpi.win_rate(w), sales_kpi.wilson_lower(w), sales_kpi.wilson_upper(w), sales_kpi.won_amount(w), sales_kpi.avg_won_amount(w), sales_kpi.won_count(w), sales_kpi.lost_count(w), sales_kpi.rollup(w) OVER () FROM (SELECT sales_kpi.winloss_agg(s.kind OPERATOR(pg_catalog.=) 'won', o.amount) AS w FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.stage_id OPERATOR(pg_catalog.=) o.stage_id WHERE s.kind OPERATOR(pg_catalog.<>) 'open' GROUP BY o.pipeline_id) x
SELECT sales_kpi.weighted_pipeline(o.amount, s.probability) FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.stage_id OPERATOR(pg_catalog.=) o.stage_id
SELECT sales_kpi.median(d), sales_kpi.percentile(d, 0.9), sales_kpi.mean(d), sales_kpi.min_duration(d), sales_kpi.max_duration(d), sales_kpi.duration_count(d), sales_kpi.rollup(d) OVER () FROM (SELECT sales_kpi.duration_agg(o.closed_at OPERATOR(pg_catalog.-) o.created_at) AS d FROM sales_kpi.opportunity o WHERE o.closed_at IS NOT NULL GROUP BY o.pipeline_id) x
SELECT sales_kpi.cumulative_win_rate(v, '90 days'), sales_kpi.naive_win_rate(v, '90 days'), sales_kpi.median_time_to_close(v), sales_kpi.survival_count(v) FROM (SELECT sales_kpi.survival_agg(coalesce(o.closed_at, $as_of) OPERATOR(pg_catalog.-) o.created_at, CASE WHEN o.closed_at IS NULL THEN 'open' ELSE s.kind END) AS v FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.stage_id OPERATOR(pg_catalog.=) o.stage_id WHERE o.created_at OPERATOR(pg_catalog.<) $as_of) x
SELECT sales_kpi.lift(l), sales_kpi.odds_ratio(l), sales_kpi.odds_ratio_lower(l), sales_kpi.odds_ratio_upper(l), sales_kpi.rate_with(l), sales_kpi.rate_without(l) FROM (SELECT sales_kpi.lift_agg(o.closed_at IS NOT NULL, o.competitor IS NULL) AS l FROM sales_kpi.opportunity o) x
SELECT (sales_kpi.stages(f)).*, sales_kpi.conversion(f, 1, 2), sales_kpi.reached(f, 1), sales_kpi.win_rate_from(f, 1) FROM (SELECT sales_kpi.funnel_agg(s.position, s.kind OPERATOR(pg_catalog.=) 'won') AS f FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.stage_id OPERATOR(pg_catalog.=) o.stage_id WHERE s.position IS NOT NULL) x
SELECT sales_kpi.stage_transition(s.position, s.kind) OVER (PARTITION BY e.opportunity_id ORDER BY e.entered_at, e.stage_event_id) FROM sales_kpi.stage_event e JOIN sales_kpi.stage s ON s.stage_id OPERATOR(pg_catalog.=) e.stage_id
SELECT sales_kpi.mrr_movement(r.mrr, r.month) OVER (PARTITION BY r.account_id ORDER BY r.month) FROM sales_kpi.recurring_revenue r"

# every path that writes a deal's history: the triggers, move_stage, corrections
writes="
SELECT sales_kpi.move_stage(o.opportunity_id, s.stage_id, o.stage_entered_at OPERATOR(pg_catalog.+) interval '1 hour', o.amount OPERATOR(pg_catalog.+) 1) FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id AND s.kind OPERATOR(pg_catalog.=) 'lost' WHERE o.closed_at IS NULL ORDER BY o.opportunity_id LIMIT 3
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) SELECT o.opportunity_id, s.stage_id, o.created_at OPERATOR(pg_catalog.+) interval '1 day' FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id AND s.position OPERATOR(pg_catalog.=) 2 AND s.kind OPERATOR(pg_catalog.=) 'open' ORDER BY o.opportunity_id LIMIT 50
UPDATE sales_kpi.stage_event SET entered_at = entered_at OPERATOR(pg_catalog.-) interval '1 minute' WHERE stage_event_id OPERATOR(pg_catalog.<) 40
DELETE FROM sales_kpi.stage_event WHERE stage_event_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.max(e.stage_event_id) FROM sales_kpi.stage_event e GROUP BY e.opportunity_id ORDER BY 1 LIMIT 5))
UPDATE sales_kpi.opportunity SET amount = amount OPERATOR(pg_catalog.+) 10, expected_close = expected_close OPERATOR(pg_catalog.+) 7 WHERE opportunity_id OPERATOR(pg_catalog.<) 30
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount) SELECT o.opportunity_id, pg_catalog.now() OPERATOR(pg_catalog.+) interval '1 day', 5 FROM sales_kpi.opportunity o WHERE o.opportunity_id OPERATOR(pg_catalog.<) 20
UPDATE sales_kpi.opportunity_history SET amount = 6 WHERE changed_at OPERATOR(pg_catalog.>) pg_catalog.now()
DELETE FROM sales_kpi.opportunity_history WHERE changed_at OPERATOR(pg_catalog.>) pg_catalog.now() AND opportunity_id OPERATOR(pg_catalog.<) 10
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount) SELECT p.pipeline_id, 1, 1, 'hostile-path deal', 100 FROM sales_kpi.pipeline p
INSERT INTO sales_kpi.milestone_event (opportunity_id, milestone_id, completed_at) SELECT o.opportunity_id, m.milestone_id, pg_catalog.now() FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id JOIN sales_kpi.milestone m ON m.stage_id OPERATOR(pg_catalog.=) s.stage_id WHERE o.name OPERATOR(pg_catalog.=) 'hostile-path deal' ON CONFLICT DO NOTHING
INSERT INTO sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at, duration_s, connected) VALUES (1, 1, 'call', pg_catalog.now(), 60, true)
INSERT INTO sales_kpi.rep (name, team, timezone) VALUES ('Hostile Path', 'North America 1', 'Europe/Berlin')
DELETE FROM sales_kpi.opportunity WHERE name OPERATOR(pg_catalog.=) 'hostile-path deal'"

for role in postgres $owner; do
    while read -r sql; do
        [ -n "$sql" ] || continue
        run "$(cut -c1-90 <<<"$sql")" "$role" "$sql"
    done <<<"$writes
$reads"
done
# with row-level security on, as a rep: the policies and every read again
run "enable_row_security" postgres "UPDATE sales_kpi.rep SET db_role = '$rep' WHERE rep_id OPERATOR(pg_catalog.=) 2;
                                     SELECT sales_kpi.enable_row_security()"
while read -r sql; do
    [ -n "$sql" ] || continue
    run "row security on: $(cut -c1-70 <<<"$sql")" "$rep" "$sql"
done <<<"$reads"
run "row security on: a rep moves their deal" "$rep" "SELECT sales_kpi.move_stage(o.opportunity_id, o.stage_id, o.stage_entered_at OPERATOR(pg_catalog.+) interval '1 hour') FROM sales_kpi.opportunity o WHERE o.closed_at IS NULL AND o.stage_entered_at IS NOT NULL ORDER BY o.opportunity_id LIMIT 1"

if [ "$(psql -X -qAt -d "$db" -c "SELECT pg_catalog.count(*) FROM sales_kpi.check_consistency()")" = 0 ]; then
    ok "check_consistency finds nothing after every write path ran under the hostile search_path"
else
    fail "check_consistency finds nothing after every write path ran under the hostile search_path"
fi

echo "1..$n"
