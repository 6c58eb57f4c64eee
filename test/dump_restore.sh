#!/usr/bin/env bash
# A database with the extension and demo data survives pg_dump/pg_restore
# (custom format) and a plain-SQL dump replayed by psql: every row of every
# table is intact, identity sequences continue after the restored ids, and the
# built-in price terms are neither lost nor doubled.  Prints TAP.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with sales_kpi installed
# (scripts/test.sh provides them).
set -uo pipefail

n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; echo "#   got:      $2"; echo "#   expected: $3"; fi; }
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

work=$(mktemp -d)
trap 'rm -rf "$work"; for d in dr_src dr_custom dr_plain dr_sections; do dropdb --if-exists "$d" 2>/dev/null; done' EXIT

# one fingerprint per table: row count and an md5 of all rows in a fixed order
fingerprint() {
    local t
    for t in $(q "$1" "SELECT relname FROM pg_class
                        WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'r' ORDER BY relname"); do
        echo "$t $(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
                             FROM sales_kpi.$t t")"
    done
}

createdb dr_src
q dr_src "CREATE EXTENSION sales_kpi"
# tens of thousands of deals, so that a restore whose triggers were
# quadratic would not finish in the suite's time
q dr_src "SELECT count(*) FROM sales_kpi.load_demo(20000, 11, '2026-10-31')" >/dev/null 2>"$work/load.err"
# load_demo reports its progress: a NOTICE per table written, with its rows
progress=$(sed -n 's/^NOTICE:  load_demo: \([a-z_]*\): \([0-9,]*\) rows in [0-9.]* s$/\1 \2/p' "$work/load.err" | tr -d ',')
check "load_demo prints a progress line for each of the tables it fills" \
      "$(echo "$progress" | wc -l)" \
      "$(q dr_src "SELECT count(*) FROM pg_class WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'r'
                    AND relname NOT IN ('price_term', 'row_security', 'rep_visibility',
                                        'stage_mapping', 'import_run', 'import_error')")"
check "each progress line gives the rows the table then holds" \
      "$progress" \
      "$(while read -r t _; do echo "$t $(q dr_src "SELECT count(*) FROM sales_kpi.$t")"; done <<<"$progress")"
# deals whose creation snapshot was deleted by hand: a restore must not
# bring one back
q dr_src "DELETE FROM sales_kpi.opportunity_history h
           USING sales_kpi.opportunity o
          WHERE h.opportunity_id = o.opportunity_id AND h.changed_at = o.created_at
            AND o.opportunity_id IN (SELECT opportunity_id FROM sales_kpi.opportunity_history
                                      GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 5)"
# state a restore must carry: a user price term, a pipeline with gates enforced
q dr_src "INSERT INTO sales_kpi.price_term (term) VALUES ('ROI'), ('优惠')"
q dr_src "UPDATE sales_kpi.pipeline SET gate_mode = 'enforce' WHERE pipeline_id = 1"
# and row-level security, with a rep's login (rep_visibility is rebuilt from rep)
q dr_src "UPDATE sales_kpi.rep SET db_role = 'dr_rep_login' WHERE rep_id = 2"
q dr_src "SELECT sales_kpi.enable_row_security()" >/dev/null
# the CRM import's mapping and log travel too
q dr_src "INSERT INTO sales_kpi.stage_mapping (crm_source, pipeline_id, crm_stage, stage_id)
          SELECT 'sfdc', s.pipeline_id, 'Closed Won', s.stage_id FROM sales_kpi.stage s WHERE s.kind = 'won'"
q dr_src "WITH r AS (INSERT INTO sales_kpi.import_run (crm_source, layout, finished_at, counts)
                     VALUES ('sfdc', 'salesforce', now(), '{\"deals\": {\"read\": 1, \"written\": 0, \"refused\": 1}}')
                     RETURNING import_id)
          INSERT INTO sales_kpi.import_error (import_id, file, line, reason)
          SELECT import_id, 'Opportunity.csv', 2, 'no name' FROM r"
# a user table of stored summaries (a daily rollup, say) travels with the dump
q dr_src "CREATE TABLE public.stored_summaries AS
          SELECT date_trunc('month', o.created_at) AS month,
                 sales_kpi.weighted_pipeline_trans('{\"v\":1,\"n\":0,\"sum\":\"0\"}', 100.25, 0.5) AS ws,
                 sales_kpi.winloss_agg(s.kind = 'won', o.amount) AS wl,
                 sales_kpi.duration_agg(coalesce(o.closed_at, '2026-10-31') - o.created_at) AS du,
                 sales_kpi.survival_agg(coalesce(o.closed_at, '2026-10-31') - o.created_at,
                                        CASE WHEN o.closed_at IS NULL THEN 'open' ELSE s.kind END) AS sv,
                 sales_kpi.lift_agg(s.kind = 'won', o.competitor IS NULL) AS li,
                 sales_kpi.funnel_agg(1 + o.opportunity_id::int % 5, s.kind = 'won') AS fu
            FROM sales_kpi.opportunity o JOIN sales_kpi.stage s USING (stage_id)
           GROUP BY 1"
summaries() { q "$1" "SELECT md5(string_agg(t::text, E'\n' ORDER BY month)) || ' ' || count(*) FROM public.stored_summaries t"; }
src=$(fingerprint dr_src)
src_summaries=$(summaries dr_src)
check "the source has a user table of stored summaries" \
      "$(q dr_src "SELECT count(*) > 10 FROM public.stored_summaries")" "t"
empty=$(q dr_src "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'sales_kpi'::regnamespace AND c.relkind = 'r'
                   AND NOT EXISTS (SELECT 1 FROM pg_stat_user_tables s WHERE s.relid = c.oid AND s.n_live_tup > 0)")
check "the source database has rows in every table" "$empty" "0"

if pg_dump -Fc -d dr_src -f "$work/db.dump" 2>"$work/dump.err"; then ok "pg_dump -Fc"; else fail "pg_dump -Fc"; sed 's/^/#   /' "$work/dump.err"; fi
createdb dr_custom
if pg_restore --exit-on-error -d dr_custom "$work/db.dump" 2>"$work/restore.err"; then
    ok "pg_restore into a fresh database"
else
    fail "pg_restore into a fresh database"; sed 's/^/#   /' "$work/restore.err"
fi
check "pg_restore: every table has the same rows" "$(fingerprint dr_custom)" "$src"
check "pg_restore: a user table of every summary type is intact" "$(summaries dr_custom)" "$src_summaries"

createdb dr_plain
if pg_dump -Fp -d dr_src 2>"$work/dump.err" | psql -X -q -v ON_ERROR_STOP=1 -d dr_plain >/dev/null 2>"$work/restore.err"; then
    ok "plain dump replayed with psql"
else
    fail "plain dump replayed with psql"; sed 's/^/#   /' "$work/restore.err"
fi
check "plain dump: every table has the same rows" "$(fingerprint dr_plain)" "$src"
check "plain dump: a user table of every summary type is intact" "$(summaries dr_plain)" "$src_summaries"

# the documented way to restore other tables in parallel: the data section
# without -j (pg_restore -j cannot order the extension tables' data)
createdb dr_sections
if pg_restore --exit-on-error -j 2 --section=pre-data -d dr_sections "$work/db.dump" 2>"$work/restore.err" &&
   pg_restore --exit-on-error --section=data -d dr_sections "$work/db.dump" 2>>"$work/restore.err" &&
   pg_restore --exit-on-error -j 2 --section=post-data -d dr_sections "$work/db.dump" 2>>"$work/restore.err"; then
    ok "pg_restore by sections, pre- and post-data with -j 2"
else
    fail "pg_restore by sections, pre- and post-data with -j 2"; sed 's/^/#   /' "$work/restore.err"
fi
check "pg_restore by sections: every table has the same rows" "$(fingerprint dr_sections)" "$src"

for db in dr_custom dr_plain dr_sections; do
    check "$db: check_consistency finds nothing" "$(q $db "SELECT count(*) FROM sales_kpi.check_consistency()")" "0"
    check "$db: row-level security is on again, with every policy" \
          "$(q $db "SELECT count(*) FILTER (WHERE c.relrowsecurity) || ' ' || (SELECT count(*) FROM pg_policy p JOIN pg_class pc ON pc.oid = p.polrelid WHERE pc.relnamespace = 'sales_kpi'::regnamespace)
                    FROM pg_class c WHERE c.relnamespace = 'sales_kpi'::regnamespace")" \
          "$(q dr_src "SELECT count(*) FILTER (WHERE c.relrowsecurity) || ' ' || (SELECT count(*) FROM pg_policy p JOIN pg_class pc ON pc.oid = p.polrelid WHERE pc.relnamespace = 'sales_kpi'::regnamespace)
                    FROM pg_class c WHERE c.relnamespace = 'sales_kpi'::regnamespace")"
    check "$db: built-in price terms are not doubled" \
          "$(q $db "SELECT count(*) FILTER (WHERE builtin) = count(DISTINCT term) FILTER (WHERE builtin) FROM sales_kpi.price_term")" "t"
    check "$db: user price terms are kept" \
          "$(q $db "SELECT string_agg(term, ',' ORDER BY term) FROM sales_kpi.price_term WHERE NOT builtin")" "ROI,优惠"
    # identity sequences continue after the restored ids
    check "$db: new rows get fresh ids" \
          "$(q $db "INSERT INTO sales_kpi.account (name) VALUES ('After restore') RETURNING
                        account_id > (SELECT max(account_id) FROM sales_kpi.account)")" "t"
    check "$db: the restored deals still move (stage history and triggers intact)" \
          "$(q $db "SELECT sales_kpi.move_stage(o.opportunity_id, s.stage_id, o.created_at + interval '1 second') > 0
                      FROM sales_kpi.opportunity o
                      JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'lost'
                     WHERE o.closed_at IS NULL AND o.pipeline_id = 2
                     ORDER BY o.opportunity_id LIMIT 1")" "t"
done

echo "1..$n"
