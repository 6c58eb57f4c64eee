-- survival_agg(age, outcome) -> survival: cohort win rate with right-
-- censoring (Aalen-Johansen), and the Kaplan-Meier median time to close.

CREATE TYPE @extschema@.survival;

CREATE FUNCTION @extschema@.survival_in(cstring) RETURNS @extschema@.survival
    AS 'MODULE_PATHNAME', 'survival_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.survival_out(@extschema@.survival) RETURNS cstring
    AS 'MODULE_PATHNAME', 'survival_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.survival_recv(internal) RETURNS @extschema@.survival
    AS 'MODULE_PATHNAME', 'survival_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.survival_send(@extschema@.survival) RETURNS bytea
    AS 'MODULE_PATHNAME', 'survival_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- about 6 KB of mostly empty counters: stored compressed
CREATE TYPE @extschema@.survival (
    INPUT = @extschema@.survival_in,
    OUTPUT = @extschema@.survival_out,
    RECEIVE = @extschema@.survival_recv,
    SEND = @extschema@.survival_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE @extschema@.survival IS
    'Summary of deal ages and outcomes of a cohort. Text form {"v":1,"n":deals,"days":[[day,won,lost,open],...]}; days are exact up to 365, then 7-day and 30-day bins written as their first day.';

CREATE FUNCTION @extschema@.survival_agg_trans(@extschema@.survival, interval, text)
    RETURNS @extschema@.survival
    AS 'MODULE_PATHNAME', 'survival_agg_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.survival_agg_inv(@extschema@.survival, interval, text)
    RETURNS @extschema@.survival
    AS 'MODULE_PATHNAME', 'survival_agg_inv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.survival_combine(@extschema@.survival, @extschema@.survival)
    RETURNS @extschema@.survival
    AS 'MODULE_PATHNAME', 'survival_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE @extschema@.survival_agg(age interval, outcome text) (
    SFUNC = @extschema@.survival_agg_trans,
    STYPE = @extschema@.survival,
    INITCOND = '{"v":1,"n":0,"days":[]}',
    COMBINEFUNC = @extschema@.survival_combine,
    MSFUNC = @extschema@.survival_agg_trans,
    MINVFUNC = @extschema@.survival_agg_inv,
    MSTYPE = @extschema@.survival,
    MINITCOND = '{"v":1,"n":0,"days":[]}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.survival_agg(interval, text) IS
    'Summary of a cohort: each deal''s age (to its close, or to the as-of instant if still open) and outcome won, lost or open. Rows with a NULL argument are skipped.';

CREATE AGGREGATE @extschema@.rollup(@extschema@.survival) (
    SFUNC = @extschema@.survival_combine,
    STYPE = @extschema@.survival,
    INITCOND = '{"v":1,"n":0,"days":[]}',
    COMBINEFUNC = @extschema@.survival_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.rollup(@extschema@.survival) IS
    'Merges survival summaries exactly; NULL summaries are skipped.';

CREATE FUNCTION @extschema@.compact(@extschema@.survival) RETURNS @extschema@.survival
    AS 'MODULE_PATHNAME', 'survival_compact' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.compact(@extschema@.survival) IS
    'The same summary holding only its non-empty age bins (16 bytes each, where the full form takes 6 kB in memory; the full form itself past 390 bins), for summaries passed on between query steps in numbers. Every function reads both forms with the same results; the text and binary forms do not change.';

CREATE FUNCTION @extschema@.survival_count(@extschema@.survival) RETURNS bigint
    AS 'MODULE_PATHNAME', 'survival_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.survival_count(@extschema@.survival) IS 'Number of deals in the summary.';
CREATE FUNCTION @extschema@.cumulative_win_rate(@extschema@.survival, horizon interval) RETURNS double precision
    AS 'MODULE_PATHNAME', 'survival_cumulative_win_rate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.cumulative_win_rate(@extschema@.survival, interval) IS
    'Aalen-Johansen estimate of the share of deals won within the horizon of creation, lost being the competing event and open deals censored; NULL when empty.';
CREATE FUNCTION @extschema@.naive_win_rate(@extschema@.survival, horizon interval) RETURNS double precision
    AS 'MODULE_PATHNAME', 'survival_naive_win_rate_fn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.naive_win_rate(@extschema@.survival, interval) IS
    'Deals won within the horizon / all deals (biased low for young cohorts); NULL when empty.';
CREATE FUNCTION @extschema@.median_time_to_close(@extschema@.survival) RETURNS interval
    AS 'MODULE_PATHNAME', 'survival_median_time_to_close' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.median_time_to_close(@extschema@.survival) IS
    'Kaplan-Meier median age at close (won or lost), open deals censored; NULL when fewer than half are known to close.';
