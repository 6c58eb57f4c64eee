#!/usr/bin/env bash
# A database installed at the previous release keeps working after
# ALTER EXTENSION sales_kpi UPDATE: every row of every table and every
# stored summary is intact, the KPIs give the same results, the catalog
# equals a fresh install of the new version, and the whole pg_regress suite
# passes on an upgraded database.  Prints TAP.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with the new version of
# sales_kpi installed (scripts/test.sh provides them).
set -uo pipefail

cd "$(dirname "$0")/.."
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
# an empty expected value is what a failed query gives: never a pass
check() { if [ -n "$3" ] && [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; echo "#   got:      $2"; echo "#   expected: $3"; fi; }
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

previous=0.1.0
current=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" sales_kpi.control)
as_of="2026-10-15 12:00:00+00"

work=$(mktemp -d)
dbs="up_old up_new up_fresh up_regress"
trap 'rm -rf "$work"; for d in $dbs; do dropdb --if-exists "$d" 2>/dev/null; done' EXIT
for d in $dbs; do dropdb --if-exists "$d" 2>/dev/null; done

# one fingerprint per table (of those named, else every one): row count
# and an md5 of all rows in a fixed order, over the columns the table had
# before the update (columns the update adds are checked apart)
tables_of() { q "$1" "SELECT relname FROM pg_class WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'r' ORDER BY relname"; }
declare -A old_columns
columns_of() {
    [ -n "${old_columns[$1]:-}" ] ||
        old_columns[$1]=$(q up_old "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                                    WHERE attrelid = 'sales_kpi.$1'::regclass AND attnum > 0 AND NOT attisdropped")
    echo "${old_columns[$1]}"
}
fingerprint() {
    local t
    for t in ${2:-$(tables_of "$1")}; do
        echo "$t $(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
                             FROM (SELECT $(columns_of "$t") FROM sales_kpi.$t) t")"
    done
}

# Every KPI view's function called at a fixed instant (pipeline_flow over a
# fixed window), and the views that take no instant: one md5 of the sorted
# rows each.
kpi_results() {
    local calls
    calls=$(q "$1" "
        SELECT c.relname || E'\t' ||
               CASE WHEN c.relname = 'pipeline_flow'
                    THEN 'sales_kpi.pipeline_flow(from_at => ''2026-07-01'', to_at => ''$as_of'')'
                    WHEN EXISTS (SELECT 1 FROM pg_proc p
                                  WHERE p.pronamespace = c.relnamespace AND p.proname = c.relname
                                    AND 'as_of' = ANY (p.proargnames))
                    THEN format('sales_kpi.%I(as_of => %L)', c.relname, '$as_of')
                    ELSE format('sales_kpi.%I', c.relname) END
          FROM pg_class c
         WHERE c.relnamespace = 'sales_kpi'::regnamespace AND c.relkind = 'v'
         ORDER BY c.relname")
    while IFS=$'\t' read -r name call; do
        echo "$name $(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
                               FROM $call t")"
    done <<<"$calls"
}

# stored summaries of every type, as a user would keep them (monthly
# rollups), plus edge values each type must keep exactly
stored_summaries_sql="
CREATE TABLE public.stored_summaries AS
SELECT date_trunc('month', o.created_at) AS month,
       sales_kpi.weighted_pipeline(o.amount, s.probability)::text AS weighted,
       sales_kpi.winloss_agg(s.kind = 'won', o.amount) AS wl,
       sales_kpi.duration_agg(coalesce(o.closed_at, '2026-10-31') - o.created_at) AS du,
       sales_kpi.survival_agg(coalesce(o.closed_at, '2026-10-31') - o.created_at,
                              CASE WHEN o.closed_at IS NULL THEN 'open' ELSE s.kind END) AS sv,
       sales_kpi.lift_agg(s.kind = 'won', o.competitor IS NULL) AS li,
       sales_kpi.funnel_agg(s.position, s.kind = 'won') AS fu
  FROM sales_kpi.opportunity o JOIN sales_kpi.stage s USING (stage_id)
 WHERE s.kind = 'open' OR s.position IS NOT NULL
 GROUP BY 1;
CREATE TABLE public.stored_states (ws sales_kpi.weighted_sum, wl sales_kpi.winloss,
                                   du sales_kpi.duration_summary, sv sales_kpi.survival,
                                   li sales_kpi.lift, fu sales_kpi.funnel);
INSERT INTO public.stored_states VALUES
  ('{\"v\":1,\"n\":2,\"sum\":\"12.375\"}',
   '{\"v\":1,\"won\":9223372036854775000,\"lost\":0,\"won_with_amount\":1,\"won_amount\":\"99999999999999999999999999999999999999\"}',
   '{\"v\":1,\"n\":1,\"sum_us\":\"86400000000\",\"min_us\":86400000000,\"max_us\":86400000000,\"buckets\":[[575,1]]}',
   '{\"v\":1,\"n\":3,\"days\":[[0,1,0,0],[394,0,1,0],[3700,0,0,1]]}',
   '{\"v\":1,\"with_true\":1,\"with_false\":2,\"without_true\":3,\"without_false\":4}',
   '{\"v\":1,\"positions\":[[1,5,0],[64,2,2]]}'),
  (NULL, '{\"v\":1,\"won\":0,\"lost\":0,\"won_with_amount\":0,\"won_amount\":\"0\"}',
   '{\"v\":1,\"n\":0,\"sum_us\":\"0\",\"min_us\":0,\"max_us\":0,\"buckets\":[]}',
   '{\"v\":1,\"n\":0,\"days\":[]}',
   '{\"v\":1,\"with_true\":0,\"with_false\":0,\"without_true\":0,\"without_false\":0}',
   '{\"v\":1,\"positions\":[]}');"
summaries() {
    q "$1" "SELECT md5(string_agg(t::text, E'\n' ORDER BY month)) || ' ' || count(*) FROM public.stored_summaries t"
    q "$1" "SELECT md5(string_agg(t::text, E'\n' ORDER BY t::text)) || ' ' || count(*) FROM public.stored_states t"
    # the accessors read the stored values the same way
    q "$1" "SELECT md5(string_agg(concat_ws(' ', sales_kpi.win_rate(wl), sales_kpi.won_amount(wl),
                                            sales_kpi.median(du), sales_kpi.percentile(du, 0.9),
                                            sales_kpi.cumulative_win_rate(sv, '90 days'),
                                            sales_kpi.median_time_to_close(sv),
                                            sales_kpi.odds_ratio(li), sales_kpi.reached(fu, 2)),
                                  E'\n' ORDER BY month))
              FROM public.stored_summaries"
}

# catalog of a database as a binary-upgrade dump describes it (every member
# of the extension, not just CREATE EXTENSION), without what differs between
# two databases of the same schema: object ids, the session key of the
# dump, the ids and order of the configuration tables (listed by name), the
# positions of the sequences and the frozen-xid updates of pg_class
catalog() {
    pg_dump --schema-only --binary-upgrade -d "$1" 2>/dev/null |
        grep -vE 'binary_upgrade_set_next_|^SELECT pg_catalog.setval\(|^\\(un)?restrict |binary_upgrade_create_empty_extension' |
        awk '/^UPDATE pg_catalog.pg_class$/ { skip = 1 } !skip { print } skip && /;$/ { skip = 0 }'
    q "$1" "SELECT extversion, string_agg(c::regclass || ' ' || cond, ', ' ORDER BY c::regclass::text)
              FROM pg_extension, unnest(extconfig, extcondition) AS u(c, cond)
             WHERE extname = 'sales_kpi' GROUP BY extversion"
}

# a release is frozen: its install script is the one that shipped
check "releases/sales_kpi--$previous.sql is the script released as $previous" \
      "$(sha256sum releases/sales_kpi--$previous.sql | cut -d' ' -f1)" \
      "57b30bc2706c3de43d8e6cb92546adfd5e23cd9dc2cb5b31f6e36458c6894872"

createdb up_old
if q up_old "CREATE EXTENSION sales_kpi VERSION '$previous'"; then ok "install $previous"; else fail "install $previous"; fi
q up_old "SELECT count(*) FROM sales_kpi.load_demo(3000, 7, '2026-10-31')" >/dev/null
q up_old "INSERT INTO sales_kpi.price_term (term) VALUES ('ROI')"
q up_old "UPDATE sales_kpi.pipeline SET gate_mode = 'warn' WHERE pipeline_id = 2"
psql -X -q -v ON_ERROR_STOP=1 -d up_old -c "$stored_summaries_sql"
check "the $previous database has rows in every table" \
      "$(q up_old "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'sales_kpi'::regnamespace AND c.relkind = 'r'
                    AND NOT EXISTS (SELECT 1 FROM pg_stat_user_tables s WHERE s.relid = c.oid AND s.n_live_tup > 0)")" "0"
for t in $(tables_of up_old); do columns_of "$t" >/dev/null; done
before_rows=$(fingerprint up_old)
before_summaries=$(summaries up_old)
before_kpis=$(kpi_results up_old)

if q up_old "ALTER EXTENSION sales_kpi UPDATE" 2>"$work/update.err"; then
    ok "ALTER EXTENSION sales_kpi UPDATE from $previous"
else
    fail "ALTER EXTENSION sales_kpi UPDATE from $previous"; sed 's/^/#   /' "$work/update.err"
fi
check "the extension is at $current" "$(q up_old "SELECT extversion FROM pg_extension WHERE extname = 'sales_kpi'")" "$current"
check "every row of every table is intact" "$(fingerprint up_old "$(cut -d' ' -f1 <<<"$before_rows")")" "$before_rows"
check "stored summaries of every type read back the same" "$(summaries up_old)" "$before_summaries"
after_kpis=$(kpi_results up_old)
# each view's line is "name rows md5": a call that failed leaves its md5 out
check "every KPI view's function answers after the update" \
      "$(grep -cvE '^[a-z_]+ [0-9]+ [0-9a-f]{32}$' <<<"$after_kpis") $(grep -c . <<<"$after_kpis")" \
      "0 $(q up_old "SELECT count(*) FROM pg_class WHERE relnamespace = 'sales_kpi'::regnamespace AND relkind = 'v'")"
# The KPIs whose results the new version changes on purpose (CHANGELOG.md):
# 0.2.0 rounds the computed win probabilities to 6 decimals, and
# forecast_accuracy averages its periods in date order (the last digit of a
# mean could depend on the plan), and deal_dimensions has the product.
changed="deal_probability forecast forecast_accuracy deal_dimensions"
unchanged() { grep -vwE "^($(tr ' ' '|' <<<"$changed"))" <<<"$1"; }
check "every KPI view's function gives the same rows at a fixed instant, but those changed on purpose ($(unchanged "$after_kpis" | wc -l) views)" \
      "$(unchanged "$after_kpis")" "$(unchanged "$before_kpis")"
if [ "$(unchanged "$after_kpis")" != "$(unchanged "$before_kpis")" ]; then
    diff <(unchanged "$before_kpis") <(unchanged "$after_kpis") | sed 's/^/#   /'
fi
# and every one, those too, gives the rows a fresh install gives on the same data
createdb up_fresh
q up_fresh "CREATE EXTENSION sales_kpi"
q up_fresh "SELECT count(*) FROM sales_kpi.load_demo(3000, 7, '2026-10-31')" >/dev/null
# the demo of 0.2.0 names each deal's product, the 0.1.0 data has none
q up_fresh "UPDATE sales_kpi.opportunity SET product = NULL"
q up_fresh "INSERT INTO sales_kpi.price_term (term) VALUES ('ROI')"
q up_fresh "UPDATE sales_kpi.pipeline SET gate_mode = 'warn' WHERE pipeline_id = 2"
check "every KPI view's function gives the rows a fresh $current install gives on the same data" \
      "$after_kpis" "$(kpi_results up_fresh)"
check "check_consistency finds nothing after the update" \
      "$(q up_old "SELECT count(*) FROM sales_kpi.check_consistency()")" "0"
check "new deals still move after the update" \
      "$(q up_old "SELECT sales_kpi.move_stage(o.opportunity_id, s.stage_id, o.created_at + interval '1 second') > 0
                     FROM sales_kpi.opportunity o
                     JOIN sales_kpi.stage s ON s.pipeline_id = o.pipeline_id AND s.kind = 'lost'
                    WHERE o.closed_at IS NULL ORDER BY o.opportunity_id LIMIT 1")" "t"

createdb up_new
q up_new "CREATE EXTENSION sales_kpi"
psql -X -q -v ON_ERROR_STOP=1 -d up_new -c "CREATE TABLE public.stored_summaries AS SELECT * FROM (VALUES (NULL::timestamptz)) v(month) LIMIT 0"
# the same user objects in both, so that only the extension can differ
q up_old "DROP TABLE public.stored_summaries, public.stored_states"
q up_new "DROP TABLE public.stored_summaries"
catalog up_old >"$work/updated.sql"
catalog up_new >"$work/fresh.sql"
if [ -s "$work/fresh.sql" ] && diff -u "$work/fresh.sql" "$work/updated.sql" >"$work/catalog.diff"; then
    ok "the updated catalog equals a fresh $current install ($(wc -l <"$work/fresh.sql") lines of binary-upgrade dump)"
else
    fail "the updated catalog equals a fresh $current install"; head -80 "$work/catalog.diff" | sed 's/^/#   /'
fi

# the regression suite, run on a database updated from the previous release
createdb up_regress
q up_regress "CREATE EXTENSION sales_kpi VERSION '$previous'; ALTER EXTENSION sales_kpi UPDATE"
regress=$(ls sql/*.sql | xargs -n1 basename | sed 's/\.sql$//')
outdir="$work/regress"
mkdir -p "$outdir"
"$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" --inputdir=. --outputdir="$outdir" \
    --use-existing --dbname=up_regress $regress >"$outdir/log" 2>&1
passed=$(grep -cE '\.\.\. ok ' "$outdir/log")
failed=$(grep -cE '\.\.\. FAILED' "$outdir/log")
check "pg_regress on an updated database: $passed tests pass, none fail" "$failed $passed" "0 $(wc -w <<<"$regress")"
if [ "$failed" != 0 ]; then grep FAILED "$outdir/log" | sed 's/^/#   /'; head -60 "$outdir/regression.diffs" | sed 's/^/#   /'; fi

echo "1..$n"
