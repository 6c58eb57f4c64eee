-- duration_agg(interval) -> duration_summary: exact count, mean, min and
-- max, and percentiles within 1% (1 s to 10 years) from a mergeable sketch.

CREATE TYPE @extschema@.duration_summary;

CREATE FUNCTION @extschema@.duration_summary_in(cstring) RETURNS @extschema@.duration_summary
    AS 'MODULE_PATHNAME', 'duration_summary_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.duration_summary_out(@extschema@.duration_summary) RETURNS cstring
    AS 'MODULE_PATHNAME', 'duration_summary_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.duration_summary_recv(internal) RETURNS @extschema@.duration_summary
    AS 'MODULE_PATHNAME', 'duration_summary_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.duration_summary_send(@extschema@.duration_summary) RETURNS bytea
    AS 'MODULE_PATHNAME', 'duration_summary_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- about 8 KB, mostly empty counters: stored compressed
CREATE TYPE @extschema@.duration_summary (
    INPUT = @extschema@.duration_summary_in,
    OUTPUT = @extschema@.duration_summary_out,
    RECEIVE = @extschema@.duration_summary_recv,
    SEND = @extschema@.duration_summary_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE @extschema@.duration_summary IS
    'Summary of durations: exact count, sum, min and max in microseconds and a quantile sketch. Text form {"v":1,"n":count,"sum_us":"sum","min_us":min,"max_us":max,"buckets":[[index,count],...]}.';

CREATE FUNCTION @extschema@.duration_agg_trans(@extschema@.duration_summary, interval)
    RETURNS @extschema@.duration_summary
    AS 'MODULE_PATHNAME', 'duration_agg_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.duration_summary_combine(@extschema@.duration_summary, @extschema@.duration_summary)
    RETURNS @extschema@.duration_summary
    AS 'MODULE_PATHNAME', 'duration_summary_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- no inverse transition: min and max could not stay exact (see duration.c)
CREATE AGGREGATE @extschema@.duration_agg(interval) (
    SFUNC = @extschema@.duration_agg_trans,
    STYPE = @extschema@.duration_summary,
    INITCOND = '{"v":1,"n":0,"sum_us":"0","min_us":0,"max_us":0,"buckets":[]}',
    COMBINEFUNC = @extschema@.duration_summary_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.duration_agg(interval) IS
    'Summary of durations (a month counts as 30 days); NULLs are skipped; a negative duration is an error.';

CREATE AGGREGATE @extschema@.rollup(@extschema@.duration_summary) (
    SFUNC = @extschema@.duration_summary_combine,
    STYPE = @extschema@.duration_summary,
    INITCOND = '{"v":1,"n":0,"sum_us":"0","min_us":0,"max_us":0,"buckets":[]}',
    COMBINEFUNC = @extschema@.duration_summary_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.rollup(@extschema@.duration_summary) IS
    'Merges duration summaries exactly (the sketch of the union); NULL summaries are skipped.';

CREATE FUNCTION @extschema@.duration_count(@extschema@.duration_summary) RETURNS bigint
    AS 'MODULE_PATHNAME', 'duration_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.duration_count(@extschema@.duration_summary) IS 'Number of durations (exact).';
CREATE FUNCTION @extschema@.mean(@extschema@.duration_summary) RETURNS interval
    AS 'MODULE_PATHNAME', 'duration_mean' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mean(@extschema@.duration_summary) IS
    'Mean duration (exact, rounded to the microsecond, as days and time); NULL when empty.';
CREATE FUNCTION @extschema@.min_duration(@extschema@.duration_summary) RETURNS interval
    AS 'MODULE_PATHNAME', 'duration_min' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.min_duration(@extschema@.duration_summary) IS 'Shortest duration (exact); NULL when empty.';
CREATE FUNCTION @extschema@.max_duration(@extschema@.duration_summary) RETURNS interval
    AS 'MODULE_PATHNAME', 'duration_max' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.max_duration(@extschema@.duration_summary) IS 'Longest duration (exact); NULL when empty.';
CREATE FUNCTION @extschema@.percentile(@extschema@.duration_summary, q double precision) RETURNS interval
    AS 'MODULE_PATHNAME', 'duration_percentile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.percentile(@extschema@.duration_summary, double precision) IS
    'The q-quantile (the value of rank floor(q*(n-1)) in sorted order) within 1% relative error from 1 second to 10 years; q = 0 and 1 are the exact min and max; NULL when empty.';
CREATE FUNCTION @extschema@.median(@extschema@.duration_summary) RETURNS interval
    AS 'MODULE_PATHNAME', 'duration_median' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.median(@extschema@.duration_summary) IS 'percentile(summary, 0.5).';
