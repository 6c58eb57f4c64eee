#!/usr/bin/env bash
# Row-level security, tried by logging in as each persona: a rep, their
# manager, the manager's manager, a member of the analyst role and a login
# that is none of these.  Checks exactly which rows of every table each one
# sees (against independent predicates over the whole data, computed as a
# superuser), that KPI functions, views and C passes compute from those rows
# only, what a rep may and may not write, that the data owner's loads and
# moves run unfiltered with RLS on, and that a dump and restore keeps it
# all.  Prints TAP.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with sales_kpi installed
# (scripts/test.sh provides them).
set -uo pipefail

cd "$(dirname "$0")/.."
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; echo "#   got:      $2"; echo "#   expected: $3"; fi; }

db=rls_test
restored=rls_restored
roles="regress_rls_rep regress_rls_manager regress_rls_vp regress_rls_analyst regress_rls_outsider regress_rls_owner regress_rls_users regress_rls_analysts"
work=$(mktemp -d)
cleanup() {
    dropdb --if-exists "$db" 2>/dev/null
    dropdb --if-exists "$restored" 2>/dev/null
    for r in $roles; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" 2>/dev/null; done
}
trap 'cleanup; rm -rf "$work"' EXIT
cleanup

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
# as a login: the output, or the SQLSTATE of the error
as() {
    local role=$1 sql=$2
    psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -d "${3:-$db}" -U "$role" -c "$sql" 2>&1 |
        sed 's/^ERROR:  \([0-9A-Z]\{5\}\)$/error \1/'
}

createdb "$db"
q "CREATE EXTENSION sales_kpi"
q "SELECT count(*) FROM sales_kpi.load_demo(3000, 4, '2026-10-31')" >/dev/null

# the personas: a vice president with managers below, one of those managers,
# and a rep of that manager's with deals
read -r vp mgr rep <<<"$(q "
    SELECT m.manager_id, m.rep_id, r.rep_id
      FROM sales_kpi.rep m
      JOIN sales_kpi.rep r ON r.manager_id = m.rep_id
      JOIN sales_kpi.rep top ON top.rep_id = m.manager_id AND top.manager_id IS NULL
     WHERE NOT EXISTS (SELECT 1 FROM sales_kpi.rep x WHERE x.manager_id = r.rep_id)
       AND (SELECT count(*) FROM sales_kpi.opportunity o WHERE o.owner_id = r.rep_id) >= 20
       AND EXISTS (SELECT 1 FROM sales_kpi.quota qq WHERE qq.rep_id = r.rep_id)
     ORDER BY m.rep_id, r.rep_id LIMIT 1" | tr '|' ' ')"
peer=$(q "SELECT rep_id FROM sales_kpi.rep WHERE manager_id = $mgr AND rep_id <> $rep
            AND EXISTS (SELECT 1 FROM sales_kpi.quota qq WHERE qq.rep_id = rep.rep_id) ORDER BY rep_id LIMIT 1")
check "personas found: a rep ($rep) with a peer ($peer), their manager ($mgr) and the manager's manager ($vp)" \
      "$([ -n "$rep" ] && [ -n "$peer" ] && [ -n "$mgr" ] && [ -n "$vp" ] && echo yes)" "yes"

psql -X -q -v ON_ERROR_STOP=1 -d "$db" -o /dev/null <<SQL
CREATE ROLE regress_rls_users NOLOGIN;
CREATE ROLE regress_rls_analysts NOLOGIN;
CREATE ROLE regress_rls_rep LOGIN IN ROLE regress_rls_users;
CREATE ROLE regress_rls_manager LOGIN IN ROLE regress_rls_users;
CREATE ROLE regress_rls_vp LOGIN IN ROLE regress_rls_users;
CREATE ROLE regress_rls_analyst LOGIN IN ROLE regress_rls_users, regress_rls_analysts;
CREATE ROLE regress_rls_outsider LOGIN IN ROLE regress_rls_users;
CREATE ROLE regress_rls_owner LOGIN BYPASSRLS IN ROLE regress_rls_users;
GRANT USAGE ON SCHEMA sales_kpi TO regress_rls_users;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sales_kpi TO regress_rls_users;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA sales_kpi TO regress_rls_users;
UPDATE sales_kpi.rep SET db_role = 'regress_rls_rep' WHERE rep_id = $rep;
UPDATE sales_kpi.rep SET db_role = 'regress_rls_manager' WHERE rep_id = $mgr;
UPDATE sales_kpi.rep SET db_role = 'regress_rls_vp' WHERE rep_id = $vp;
SELECT sales_kpi.enable_row_security('regress_rls_analysts');
-- the reps each persona's rows belong to, walked independently of rep_visibility
CREATE TABLE public.persona_tree AS
WITH RECURSIVE tree(login, rep_id) AS (
    SELECT r.db_role, r.rep_id FROM sales_kpi.rep r WHERE r.db_role IS NOT NULL
    UNION
    SELECT t.login, r.rep_id FROM tree t JOIN sales_kpi.rep r ON r.manager_id = t.rep_id
)
SELECT login, rep_id FROM tree;
SQL

# what a login should see of a table, by the rules, as a superuser: the WHERE
# clause over the table (alias t) for a login whose reps are in persona_tree
expected_where() {
    local t=$1 login=$2 tree="(SELECT p.rep_id FROM public.persona_tree p WHERE p.login = '$2')"
    local deals="(SELECT o.opportunity_id FROM sales_kpi.opportunity o WHERE o.owner_id IN $tree)"
    # the row-security setting is its owner's alone
    if [ "$t" = row_security ]; then echo "false"; return; fi
    case $login in
        regress_rls_analyst) echo "true"; return ;;
        regress_rls_outsider) echo "false"; return ;;
    esac
    case $t in
        opportunity) echo "t.owner_id IN $tree" ;;
        stage_event|opportunity_history|milestone_event|opportunity_contact|collection)
            echo "t.opportunity_id IN $deals" ;;
        activity|quota|forecast_submission|rep) echo "t.rep_id IN $tree" ;;
        utterance) echo "t.activity_id IN (SELECT a.activity_id FROM sales_kpi.activity a WHERE a.rep_id IN $tree)" ;;
        lead) echo "(t.rep_id IN $tree OR t.opportunity_id IN $deals)" ;;
        recurring_revenue) echo "t.account_id IN (SELECT o.account_id FROM sales_kpi.opportunity o WHERE o.owner_id IN $tree)" ;;
        rep_visibility) echo "t.viewer = '$login'" ;;
        *) echo "true" ;;   # reference data and accounts: every rep reads them
    esac
}
fingerprint_sql() { echo "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '')) FROM sales_kpi.$1 t WHERE $2"; }

tables=$(q "SELECT relname FROM pg_class WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'r' ORDER BY 1")
personas="regress_rls_rep regress_rls_manager regress_rls_vp regress_rls_analyst regress_rls_outsider"
for login in $personas; do
    for t in $tables; do
        got=$(as $login "$(fingerprint_sql $t true)")
        want=$(q "$(fingerprint_sql $t "$(expected_where $t $login)")")
        check "$login sees exactly the rows of $t the rules give it (${want%% *} rows)" "$got" "$want"
    done
done

# KPIs computed from the persona's rows only: the company row of a KPI is
# the superuser's computation over the deals that persona sees
period="'2025-10-01', '2026-10-01'"
as_of="'2026-10-15 12:00:00+00'"
for login in $personas; do
    where=$(expected_where opportunity $login)
    check "$login: win_rate counts exactly the closed deals it sees" \
          "$(as $login "SELECT closed || ' ' || won FROM sales_kpi.win_rate($period, as_of => $as_of)")" \
          "$(q "SELECT count(*) || ' ' || count(*) FILTER (WHERE cd.outcome = 'won')
                  FROM sales_kpi.closed_deals($period, $as_of) cd
                  JOIN sales_kpi.opportunity t ON t.opportunity_id = cd.opportunity_id WHERE $where")"
    check "$login: the pipeline value counts exactly the open deals it sees" \
          "$(as $login "SELECT coalesce(sum(deals), 0) FROM sales_kpi.stage_pipeline_value($as_of)")" \
          "$(q "SELECT count(*) FROM sales_kpi.pipeline_as_of($as_of, open_only => true) pa
                  JOIN sales_kpi.opportunity t ON t.opportunity_id = pa.opportunity_id WHERE $where")"
    check "$login: data_quality_findings (a C pass over the history) reports only deals it sees" \
          "$(as $login "SELECT count(*) FROM sales_kpi.data_quality_findings($as_of) f
                         WHERE f.opportunity_id IS NOT NULL")" \
          "$(q "SELECT count(*) FROM sales_kpi.data_quality_findings($as_of) f
                  JOIN sales_kpi.opportunity t ON t.opportunity_id = f.opportunity_id WHERE $where")"
    check "$login: win_rate_by_rep lists exactly the reps of its tree" \
          "$(as $login "SELECT string_agg(rep_id::text, ',' ORDER BY rep_id) FROM sales_kpi.win_rate_by_rep")" \
          "$(q "SELECT string_agg(t.rep_id::text, ',' ORDER BY t.rep_id) FROM sales_kpi.rep t WHERE $(expected_where rep $login)")"
done
check "the rep's KPI has no company beyond the rep: its win rate is the company's" \
      "$(as regress_rls_rep "SELECT win_rate = company_win_rate FROM sales_kpi.win_rate($period, as_of => $as_of)")" "t"
check "the rep's timeline ranks the rep among no one it may not see" \
      "$(as regress_rls_rep "SELECT string_agg(DISTINCT dimension_value, ',') FROM sales_kpi.rep_timeline(as_of => $as_of)")" \
      "$(q "SELECT name FROM sales_kpi.rep WHERE rep_id = $rep")"
check "a view reads as its caller: the rep's stage_pipeline_value view equals its function now" \
      "$(as regress_rls_rep "SELECT (SELECT sum(deals) FROM sales_kpi.stage_pipeline_value) = (SELECT sum(deals) FROM sales_kpi.stage_pipeline_value(now()))")" "t"

# what the rep may write
other_deal=$(q "SELECT opportunity_id FROM sales_kpi.opportunity WHERE owner_id = $peer AND closed_at IS NULL ORDER BY 1 LIMIT 1")
own_deal=$(q "SELECT opportunity_id FROM sales_kpi.opportunity WHERE owner_id = $rep AND closed_at IS NULL ORDER BY 1 LIMIT 1")
lost_stage() { q "SELECT s.stage_id FROM sales_kpi.stage s JOIN sales_kpi.opportunity o USING (pipeline_id) WHERE o.opportunity_id = $1 AND s.kind = 'lost'"; }
new_deal() { echo "INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount)
                   VALUES (1, 1, $1, 'row security', 1000) RETURNING owner_id"; }
check "a rep inserts a deal of their own" "$(as regress_rls_rep "$(new_deal $rep)")" "$rep"
check "a rep cannot insert a deal for another rep" "$(as regress_rls_rep "$(new_deal $peer)")" "error 42501"
# the checks a loading dump skips (check_function_bodies off) hold for a rep
check "a rep cannot write a deal in a currency without a rate, even with check_function_bodies off" \
      "$(as regress_rls_rep "SET check_function_bodies = off; INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, currency)
                            VALUES (1, 1, $rep, 'francs', 1, 'CHF')")" "error 23503"
check "a rep cannot set the base currency" \
      "$(as regress_rls_rep "SELECT 1 WHERE sales_kpi.base_currency() IS NULL; SET sales_kpi.base_currency = 'CHF'")" "error 42501"
check "a rep cannot hand their deal to another rep" \
      "$(as regress_rls_rep "UPDATE sales_kpi.opportunity SET owner_id = $peer WHERE opportunity_id = $own_deal")" "error 42501"
check "a rep moves their own deal (move_stage, with its trigger paths, under row security)" \
      "$(as regress_rls_rep "SELECT sales_kpi.move_stage($own_deal, $(lost_stage $own_deal), '2026-10-31 12:00+00') > 0")" "t"
check "a rep cannot move another rep's deal: to them it does not exist" \
      "$(as regress_rls_rep "SELECT sales_kpi.move_stage($other_deal, $(lost_stage $other_deal), '2026-10-31 12:00+00')")" "error 23503"
check "a rep cannot insert a stage event into another rep's deal" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
                             VALUES ($other_deal, $(lost_stage $other_deal), '2026-10-31 12:00+00')")" "error 42501"
check "a rep cannot write a snapshot of their own deal that names another rep as owner" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, owner_id)
                             SELECT $own_deal, created_at + interval '1 second', 1e9, $peer FROM sales_kpi.opportunity WHERE opportunity_id = $own_deal")" "error 42501"
check "nor one at an instant that already has a snapshot (the insert becomes an update)" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, owner_id)
                             SELECT $own_deal, created_at, 1e9, $peer FROM sales_kpi.opportunity WHERE opportunity_id = $own_deal")" "error 42501"
check "a rep cannot record a stage event of their own deal as moved by another rep" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, rep_id)
                             VALUES ($own_deal, $(lost_stage $own_deal), now(), $peer)")" "error 42501"
check "a rep logs an activity on their own deal" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at)
                             VALUES ($rep, $own_deal, 'call', now()) RETURNING opportunity_id")" "$own_deal"
check "a rep cannot log an activity on another rep's deal" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at)
                             VALUES ($rep, $other_deal, 'call', now())")" "error 42501"
check "nor on a deal that does not exist: the same answer, so deal ids cannot be probed" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at)
                             VALUES ($rep, $(q "SELECT max(opportunity_id) + 1000 FROM sales_kpi.opportunity"), 'call', now())")" "error 42501"
check "a rep cannot attach a lead to another rep's deal" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.lead (rep_id, opportunity_id, created_at, converted_at, source)
                             VALUES ($rep, $other_deal, now() - interval '1 day', now(), 'planted')")" "error 42501"
quotas_before=$(q "SELECT string_agg(rep_id || ':' || amount, ',' ORDER BY rep_id, period_start) FROM sales_kpi.quota WHERE rep_id IN ($rep, $peer)")
check "a rep cannot raise another rep's quota (no row to update)" \
      "$(as regress_rls_rep "WITH u AS (UPDATE sales_kpi.quota SET amount = amount * 2 WHERE rep_id = $peer RETURNING 1) SELECT count(*) FROM u")" "0"
check "nor their own" \
      "$(as regress_rls_rep "WITH u AS (UPDATE sales_kpi.quota SET amount = amount * 2 WHERE rep_id = $rep RETURNING 1) SELECT count(*) FROM u")" "0"
check "nor add one" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES ($rep, '2030-01-01', '2030-04-01', 1)")" "error 42501"
check "the quotas are as they were" \
      "$(q "SELECT string_agg(rep_id || ':' || amount, ',' ORDER BY rep_id, period_start) FROM sales_kpi.quota WHERE rep_id IN ($rep, $peer)")" "$quotas_before"
check "their manager sets the rep's quota" \
      "$(as regress_rls_manager "WITH u AS (UPDATE sales_kpi.quota SET amount = amount + 1 WHERE rep_id = $rep RETURNING 1) SELECT count(*) > 0 FROM u")" "t"
check "a rep submits their own forecast" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount)
                             VALUES ($rep, '2026-10-01', '2027-01-01', now(), 'commit', 5000) RETURNING rep_id")" "$rep"
check "a rep cannot backdate a forecast submission" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount)
                             VALUES ($rep, '2026-10-01', '2027-01-01', now() - interval '1 day', 'commit', 5000)")" "error 42501"
check "a rep cannot submit one for another rep" \
      "$(as regress_rls_rep "INSERT INTO sales_kpi.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount)
                             VALUES ($peer, '2026-10-01', '2027-01-01', '2026-10-20', 'commit', 5000)")" "error 42501"
check "a rep cannot rewrite a forecast already submitted" \
      "$(as regress_rls_rep "WITH u AS (UPDATE sales_kpi.forecast_submission SET amount = 1 WHERE rep_id = $rep RETURNING 1) SELECT count(*) FROM u")" "0"
check "a rep cannot switch a pipeline's stage gates off" \
      "$(as regress_rls_rep "WITH u AS (UPDATE sales_kpi.pipeline SET gate_mode = 'off' RETURNING 1) SELECT count(*) FROM u")" "0"
check "a rep cannot delete an account" \
      "$(as regress_rls_rep "WITH u AS (DELETE FROM sales_kpi.account RETURNING 1) SELECT count(*) FROM u")" "0"
check "the outsider writes nothing" "$(as regress_rls_outsider "$(new_deal $rep)")" "error 42501"

# the data owner (BYPASSRLS, not a superuser) loads and moves as before
check "the data owner moves deals with move_stage under row security" \
      "$(as regress_rls_owner "SELECT count(*) FROM (SELECT sales_kpi.move_stage(o.opportunity_id, s.stage_id, o.stage_entered_at + interval '1 hour')
                                                  FROM sales_kpi.opportunity o
                                                  JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'won'
                                                 WHERE o.closed_at IS NULL ORDER BY o.opportunity_id LIMIT 50) m")" "50"
check "the data owner loads stage events set-wise under row security" \
      "$(as regress_rls_owner "WITH i AS (INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
                                        SELECT o.opportunity_id, s.stage_id, o.stage_entered_at + interval '2 hours'
                                          FROM sales_kpi.opportunity o
                                          JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'lost'
                                         WHERE o.closed_at IS NULL AND o.stage_entered_at IS NOT NULL
                                        RETURNING 1) SELECT count(*) > 100 FROM i")" "t"
check "check_consistency finds nothing after the writes" "$(q "SELECT count(*) FROM sales_kpi.check_consistency()")" "0"

# a new rep, or a rep moved under another manager, changes who sees what at once
q "UPDATE sales_kpi.rep SET manager_id = $mgr WHERE rep_id = (SELECT rep_id FROM sales_kpi.rep WHERE manager_id = $vp AND rep_id <> $mgr ORDER BY rep_id LIMIT 1)"
check "a rep moved under the manager is in the manager's tree at once" \
      "$(as regress_rls_manager "SELECT count(*) FROM sales_kpi.rep")" \
      "$(q "WITH RECURSIVE t AS (SELECT $mgr::bigint AS rep_id UNION SELECT r.rep_id FROM t JOIN sales_kpi.rep r ON r.manager_id = t.rep_id) SELECT count(*) FROM t")"

# dump and restore keep the policies and what each persona sees
before=$(for login in $personas; do as $login "SELECT count(*) FROM sales_kpi.stage_event"; done | tr '\n' ' ')
pg_dump -Fc -d "$db" -f "$work/db.dump" 2>/dev/null
createdb "$restored"
if pg_restore --exit-on-error -d "$restored" "$work/db.dump" 2>"$work/restore.err"; then
    ok "a database with row security restores"
else
    fail "a database with row security restores"; sed 's/^/#   /' "$work/restore.err"
fi
check "after the restore every persona sees what it saw" \
      "$(for login in $personas; do as $login "SELECT count(*) FROM sales_kpi.stage_event" "$restored"; done | tr '\n' ' ')" "$before"

# and off again
q "SELECT sales_kpi.disable_row_security()" >/dev/null
check "disable_row_security: the rep sees every deal again" \
      "$(as regress_rls_rep "SELECT count(*) FROM sales_kpi.opportunity")" "$(q "SELECT count(*) FROM sales_kpi.opportunity")"
check "disable_row_security leaves no policy" \
      "$(q "SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = 'sales_kpi'::regnamespace")" "0"

# the README's set-up, run as written on a fresh demo database
readme_db=rls_readme
readme_roles="lukas crm_sync ana sales_analysts sales_users"
readme_cleanup() {
    dropdb --if-exists "$readme_db" 2>/dev/null
    for r in $readme_roles; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" 2>/dev/null; done
}
readme_cleanup
createdb "$readme_db"
psql -X -q -d "$readme_db" -c "CREATE EXTENSION sales_kpi" -c "SELECT count(*) FROM sales_kpi.load_demo(500, 2, '2026-10-31')" >/dev/null
awk '/^### Roles and grants/ { s = 1 } s && /^```sql$/ { c = 1; next } c && /^```$/ { exit } c { print }' README.md >"$work/readme.sql"
if [ -s "$work/readme.sql" ] && psql -X -q -v ON_ERROR_STOP=1 -d "$readme_db" -f "$work/readme.sql" >/dev/null 2>"$work/readme.err"; then
    ok "the README's roles-and-grants set-up runs as written"
else
    fail "the README's roles-and-grants set-up runs as written"; sed 's/^/#   /' "$work/readme.err"
fi
check "after it, the rep's login sees exactly rep 4's deals" \
      "$(as lukas "SELECT count(*) FROM sales_kpi.opportunity" "$readme_db")" \
      "$(psql -X -qAt -d "$readme_db" -c "SELECT count(*) FROM sales_kpi.opportunity WHERE owner_id = 4")"
check "and the analyst and the data owner see every deal" \
      "$(as ana "SELECT count(*) FROM sales_kpi.opportunity" "$readme_db") $(as crm_sync "SELECT count(*) FROM sales_kpi.opportunity" "$readme_db")" \
      "$(psql -X -qAt -d "$readme_db" -c "SELECT count(*) || ' ' || count(*) FROM sales_kpi.opportunity")"
readme_cleanup

echo "1..$n"
