#!/usr/bin/env bash
# The sales_kpi.* settings when the module is first loaded inside a
# parallel query (a C function called by the leader while workers run):
# PostgreSQL cannot apply the values set before then, so the first reading
# is an error, never the default, and the next statement applies them.
# Prints TAP.
set -uo pipefail
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1"; echo "#   got:      $2"; echo "#   expected: $3"; fi; }
db=settings_load
trap 'dropdb --if-exists $db 2>/dev/null' EXIT
dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION sales_kpi;
INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate) VALUES ('USD', '2020-01-01', 0.9);
CREATE TABLE public.amounts AS SELECT g, (g % 100)::numeric AS amount FROM generate_series(1, 100000) g;
ANALYZE public.amounts;
ALTER DATABASE settings_load SET sales_kpi.base_currency = 'EUR';
SQL
# fx_rate_on is PL/pgSQL: its first C call (base_currency) runs in the
# leader during the Gather, in parallel mode
out=$(psql -X -qAt -v VERBOSITY=default -d $db 2>&1 <<'SQL'
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT sum(sales_kpi.fx_rate_on('USD', '2026-01-01') * amount) FROM public.amounts;
SELECT sum(sales_kpi.fx_rate_on('USD', '2026-01-01') * amount) FROM public.amounts;
SELECT sales_kpi.base_currency();
SQL
)
check "loaded inside a parallel query, the first reading of a setting is an error, not the default" \
      "$(grep -c 'ERROR:  parameter "sales_kpi.base_currency" = "EUR" is not applied yet' <<<"$out")" "1"
check "the next statement applies the database's value (USD at 0.9 into EUR)" \
      "$(grep -v 'WARNING\|ERROR\|DETAIL\|HINT' <<<"$out" | tr '\n' ' ')" "4455000.0 EUR "
check "without parallel query the value applies at load" \
      "$(psql -X -qAt -d $db -c "SELECT sales_kpi.base_currency()")" "EUR"
echo "1..$n"
