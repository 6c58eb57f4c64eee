-- weighted_pipeline(amount, probability): the exact sum of amount x p.
-- Its state type weighted_sum is a real type with text and binary I/O, so
-- parallel workers and sharded engines can pass partial sums around.

CREATE TYPE @extschema@.weighted_sum;

CREATE FUNCTION @extschema@.weighted_sum_in(cstring) RETURNS @extschema@.weighted_sum
    AS 'MODULE_PATHNAME', 'weighted_sum_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.weighted_sum_out(@extschema@.weighted_sum) RETURNS cstring
    AS 'MODULE_PATHNAME', 'weighted_sum_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.weighted_sum_recv(internal) RETURNS @extschema@.weighted_sum
    AS 'MODULE_PATHNAME', 'weighted_sum_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.weighted_sum_send(@extschema@.weighted_sum) RETURNS bytea
    AS 'MODULE_PATHNAME', 'weighted_sum_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.weighted_sum (
    INPUT = @extschema@.weighted_sum_in,
    OUTPUT = @extschema@.weighted_sum_out,
    RECEIVE = @extschema@.weighted_sum_recv,
    SEND = @extschema@.weighted_sum_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.weighted_sum IS
    'State of weighted_pipeline: row count and exact sum of amount x probability. Text form {"v":1,"n":rows,"sum":"decimal"}.';

CREATE FUNCTION @extschema@.weighted_pipeline_trans(@extschema@.weighted_sum, numeric, numeric)
    RETURNS @extschema@.weighted_sum
    AS 'MODULE_PATHNAME', 'weighted_pipeline_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.weighted_pipeline_inv(@extschema@.weighted_sum, numeric, numeric)
    RETURNS @extschema@.weighted_sum
    AS 'MODULE_PATHNAME', 'weighted_pipeline_inv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.weighted_sum_combine(@extschema@.weighted_sum, @extschema@.weighted_sum)
    RETURNS @extschema@.weighted_sum
    AS 'MODULE_PATHNAME', 'weighted_sum_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.weighted_pipeline_final(@extschema@.weighted_sum) RETURNS numeric
    AS 'MODULE_PATHNAME', 'weighted_pipeline_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- strict transition with a non-null initial state: rows with a NULL
-- argument are skipped, as sum() skips a NULL product
CREATE AGGREGATE @extschema@.weighted_pipeline(amount numeric, probability numeric) (
    SFUNC = @extschema@.weighted_pipeline_trans,
    STYPE = @extschema@.weighted_sum,
    INITCOND = '{"v":1,"n":0,"sum":"0"}',
    FINALFUNC = @extschema@.weighted_pipeline_final,
    COMBINEFUNC = @extschema@.weighted_sum_combine,
    MSFUNC = @extschema@.weighted_pipeline_trans,
    MINVFUNC = @extschema@.weighted_pipeline_inv,
    MSTYPE = @extschema@.weighted_sum,
    MINITCOND = '{"v":1,"n":0,"sum":"0"}',
    MFINALFUNC = @extschema@.weighted_pipeline_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.weighted_pipeline(numeric, numeric) IS
    'Exact sum of amount x probability (equal to sum(amount * probability) to the last digit); skips rows with a NULL argument; NULL for no rows. Errors on a negative amount or a probability outside [0,1].';
