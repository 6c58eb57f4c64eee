-- sales_kpi 0.1.0 -> 0.2.0.  What changed is listed in CHANGELOG.md; the
-- upgrade test (test/upgrade.sh) checks that a database updated with this
-- script has the same catalog as a fresh 0.2.0 install, every row and
-- stored summary intact and the same KPI results.

\echo Use "ALTER EXTENSION sales_kpi UPDATE TO '0.2.0'" to load this file. \quit
