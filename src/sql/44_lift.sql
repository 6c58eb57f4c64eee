-- lift_agg(outcome, factor) -> lift: win (or qualification) rate with and
-- without a behaviour, lift and odds ratio with its confidence interval.

CREATE TYPE @extschema@.lift;

CREATE FUNCTION @extschema@.lift_in(cstring) RETURNS @extschema@.lift
    AS 'MODULE_PATHNAME', 'lift_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.lift_out(@extschema@.lift) RETURNS cstring
    AS 'MODULE_PATHNAME', 'lift_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.lift_recv(internal) RETURNS @extschema@.lift
    AS 'MODULE_PATHNAME', 'lift_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.lift_send(@extschema@.lift) RETURNS bytea
    AS 'MODULE_PATHNAME', 'lift_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.lift (
    INPUT = @extschema@.lift_in,
    OUTPUT = @extschema@.lift_out,
    RECEIVE = @extschema@.lift_recv,
    SEND = @extschema@.lift_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.lift IS
    'A 2x2 table of outcome by factor. Text form {"v":1,"with_true":n,"with_false":n,"without_true":n,"without_false":n}.';

CREATE FUNCTION @extschema@.lift_trans(@extschema@.lift, boolean, boolean) RETURNS @extschema@.lift
    AS 'MODULE_PATHNAME', 'lift_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.lift_inv(@extschema@.lift, boolean, boolean) RETURNS @extschema@.lift
    AS 'MODULE_PATHNAME', 'lift_inv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.lift_combine(@extschema@.lift, @extschema@.lift) RETURNS @extschema@.lift
    AS 'MODULE_PATHNAME', 'lift_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE @extschema@.lift_agg(outcome boolean, factor boolean) (
    SFUNC = @extschema@.lift_trans,
    STYPE = @extschema@.lift,
    INITCOND = '{"v":1,"with_true":0,"with_false":0,"without_true":0,"without_false":0}',
    COMBINEFUNC = @extschema@.lift_combine,
    MSFUNC = @extschema@.lift_trans,
    MINVFUNC = @extschema@.lift_inv,
    MSTYPE = @extschema@.lift,
    MINITCOND = '{"v":1,"with_true":0,"with_false":0,"without_true":0,"without_false":0}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.lift_agg(boolean, boolean) IS
    'Outcome (e.g. won) by factor (e.g. demo held); rows with a NULL argument are skipped.';

CREATE AGGREGATE @extschema@.rollup(@extschema@.lift) (
    SFUNC = @extschema@.lift_combine,
    STYPE = @extschema@.lift,
    INITCOND = '{"v":1,"with_true":0,"with_false":0,"without_true":0,"without_false":0}',
    COMBINEFUNC = @extschema@.lift_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.rollup(@extschema@.lift) IS 'Merges lift summaries; NULL summaries are skipped.';

CREATE FUNCTION @extschema@.rate_with(@extschema@.lift) RETURNS double precision
    AS 'MODULE_PATHNAME', 'lift_rate_with' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.rate_with(@extschema@.lift) IS
    'Share of rows with the factor whose outcome is true; NULL without such rows.';
CREATE FUNCTION @extschema@.rate_without(@extschema@.lift) RETURNS double precision
    AS 'MODULE_PATHNAME', 'lift_rate_without' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.rate_without(@extschema@.lift) IS
    'Share of rows without the factor whose outcome is true; NULL without such rows.';
CREATE FUNCTION @extschema@.lift(@extschema@.lift) RETURNS double precision
    AS 'MODULE_PATHNAME', 'lift_lift' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.lift(@extschema@.lift) IS
    'rate_with / rate_without; NULL when either rate is undefined or rate_without is 0.';
CREATE FUNCTION @extschema@.odds_ratio(@extschema@.lift) RETURNS double precision
    AS 'MODULE_PATHNAME', 'lift_odds_ratio' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.odds_ratio(@extschema@.lift) IS
    'Odds ratio (with_true x without_false) / (with_false x without_true), with 0.5 added to every cell when one is zero; NULL when one side has no rows.';
CREATE FUNCTION @extschema@.odds_ratio_lower(@extschema@.lift, confidence double precision DEFAULT 0.95)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'lift_odds_ratio_lower' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.odds_ratio_lower(@extschema@.lift, double precision) IS
    'Lower bound of the Woolf confidence interval of the odds ratio (default 95%).';
CREATE FUNCTION @extschema@.odds_ratio_upper(@extschema@.lift, confidence double precision DEFAULT 0.95)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'lift_odds_ratio_upper' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.odds_ratio_upper(@extschema@.lift, double precision) IS
    'Upper bound of the Woolf confidence interval of the odds ratio (default 95%).';
