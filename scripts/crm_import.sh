#!/usr/bin/env bash
# Imports a CRM export (a directory of CSV files) into sales_kpi.
#
#   scripts/crm_import.sh --layout generic|salesforce|hubspot --source NAME
#                         --dir DIR --date-format FMT [--date-format FMT ...]
#                         [--pipeline NAME] [psql connection options...]
#
# Each known file of the layout found in DIR is copied into a temporary
# staging table named after it (columns from its header line), then the
# layout's SQL function validates, maps and writes the rows in one
# transaction.  Bad rows are not loaded; they are listed at the end and kept
# in sales_kpi.import_error.  Run it as the data owner (the tables' owner or
# a role with BYPASSRLS).  The README's "Importing from a CRM" describes the
# files and their columns.
set -euo pipefail

layout="" source="" dir="" pipeline="" formats=()
psql_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --layout) layout=$2; shift 2 ;;
        --source) source=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --date-format) formats+=("$2"); shift 2 ;;
        --pipeline) pipeline=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) psql_args+=("$1"); shift ;;
    esac
done
die() { echo "crm_import: $*" >&2; exit 2; }
[ -n "$source" ] || die "--source NAME is required (it keys every imported row)"
[ -d "$dir" ] || die "--dir must be a directory of CSV files"
[ ${#formats[@]} -gt 0 ] || die "give the export's date format(s) with --date-format, e.g. 'YYYY-MM-DD HH24:MI:SS'"
# file name (without .csv, matched case-insensitively) -> staging table
case "$layout" in
    generic) files="reps:import_reps accounts:import_accounts deals:import_deals stage_changes:import_stage_changes activities:import_activities"
             fn="import_generic" ;;
    salesforce) files="user:sf_user account:sf_account opportunity:sf_opportunity opportunityhistory:sf_opportunity_history task:sf_task event:sf_event"
                fn="import_salesforce" ;;
    hubspot) files="owners:hs_owners companies:hs_companies deals:hs_deals deal_stage_history:hs_deal_stage_history"
             fn="import_hubspot" ;;
    *) die "--layout must be generic, salesforce or hubspot" ;;
esac

sql=$(mktemp)
trap 'rm -f "$sql"' EXIT
quote() { printf "'%s'" "${1//\'/\'\'}"; }
{
    echo '\set ON_ERROR_STOP 1'
    echo 'BEGIN;'
    found=0
    for pair in $files; do
        name=${pair%%:*} table=${pair##*:}
        file=$(find "$dir" -maxdepth 1 -type f -iname "$name.csv" | head -1)
        [ -n "$file" ] || continue
        found=1
        header=$(head -n 1 "$file")
        base=$(basename "$file")
        # psql does not expand variables in \copy: the column list is asked
        # for first (in a session of its own), then the table made for real
        cols=$(psql -X -qAt -v ON_ERROR_STOP=1 "${psql_args[@]}" \
                    -c "SELECT sales_kpi.import_staging_table('$table', $(quote "$base"), $(quote "$header"))")
        echo "SELECT sales_kpi.import_staging_table('$table', $(quote "$base"), $(quote "$header")) IS NOT NULL AS ok \\gset"
        echo "\\copy pg_temp.$table ($cols) FROM $(quote "$file") WITH (FORMAT csv, HEADER true)"
    done
    [ $found = 1 ] || die "no file of the $layout layout in $dir"
    farr="ARRAY[$(for f in "${formats[@]}"; do printf '%s,' "$(quote "$f")"; done | sed 's/,$//')]"
    pl=$([ -n "$pipeline" ] && quote "$pipeline" || echo NULL)
    echo "SELECT sales_kpi.$fn($(quote "$source"), $farr, $pl) AS import_id \\gset"
    echo 'COMMIT;'
    echo '\pset footer off'
    echo "SELECT 'import ' || :import_id || ': ' || counts::text AS summary FROM sales_kpi.import_run WHERE import_id = :import_id;"
    echo "SELECT file, line, reason FROM sales_kpi.import_error WHERE import_id = :import_id ORDER BY file, line;"
} >"$sql"
psql -X -q "${psql_args[@]}" -f "$sql"
