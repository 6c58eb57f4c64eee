-- sales_kpi install script, assembled by make from src/sql/*.sql.
-- Every object is schema-qualified with @extschema@ and every function body
-- runs with a fixed search_path, so the script and its functions are safe
-- against search_path attacks.

\echo Use "CREATE EXTENSION sales_kpi" to load this file. \quit
