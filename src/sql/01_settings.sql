-- Settings (sales_kpi.* parameters, defined by the C module) and their
-- accessors.  SQL code calls these instead of current_setting() so that the
-- module is loaded and the documented defaults apply.

CREATE FUNCTION @extschema@.base_currency() RETURNS text
    AS 'MODULE_PATHNAME', 'base_currency'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.base_currency() IS
    'The currency all KPI amounts are reported in (setting sales_kpi.base_currency, default USD).';

CREATE FUNCTION @extschema@.reporting_timezone() RETURNS text
    AS 'MODULE_PATHNAME', 'reporting_timezone'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.reporting_timezone() IS
    'The time zone periods and hours of day are cut in (setting sales_kpi.reporting_timezone; empty means the session TimeZone).';

CREATE FUNCTION @extschema@.fiscal_year_start_month() RETURNS integer
    AS 'MODULE_PATHNAME', 'fiscal_year_start_month'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.fiscal_year_start_month() IS
    'First month (1-12) of the fiscal year (setting sales_kpi.fiscal_year_start_month, default 1).';

CREATE FUNCTION @extschema@.default_stage_gate_mode() RETURNS text
    AS 'MODULE_PATHNAME', 'default_stage_gate_mode'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.default_stage_gate_mode() IS
    'Stage-gate mode (off, warn, enforce) of pipelines whose gate_mode is null (setting sales_kpi.stage_gate_mode, default off).';

CREATE FUNCTION @extschema@.valid_timezone(name text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'valid_timezone'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.valid_timezone(text) IS
    'True when the argument is a time zone name the server knows (such as Asia/Shanghai).';

CREATE FUNCTION @extschema@.demo_random(seed integer, key bigint) RETURNS double precision
    AS 'MODULE_PATHNAME', 'demo_random'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.demo_random(integer, bigint) IS
    'Deterministic uniform number in [0,1) from (seed, key); the demo generator''s source of randomness.';
