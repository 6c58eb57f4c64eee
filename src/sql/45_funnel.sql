-- funnel_agg(reached_position [, won]) -> funnel: how many deals reached
-- each stage, conversion between stages and win rate from each stage.

CREATE TYPE @extschema@.funnel;

CREATE FUNCTION @extschema@.funnel_in(cstring) RETURNS @extschema@.funnel
    AS 'MODULE_PATHNAME', 'funnel_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.funnel_out(@extschema@.funnel) RETURNS cstring
    AS 'MODULE_PATHNAME', 'funnel_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.funnel_recv(internal) RETURNS @extschema@.funnel
    AS 'MODULE_PATHNAME', 'funnel_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.funnel_send(@extschema@.funnel) RETURNS bytea
    AS 'MODULE_PATHNAME', 'funnel_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- 1 KB of mostly empty counters: stored compressed
CREATE TYPE @extschema@.funnel (
    INPUT = @extschema@.funnel_in,
    OUTPUT = @extschema@.funnel_out,
    RECEIVE = @extschema@.funnel_recv,
    SEND = @extschema@.funnel_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE @extschema@.funnel IS
    'Deals by the highest open-stage position they reached (1 to 64), and how many of those were won. Text form {"v":1,"positions":[[position,deals,won],...]}.';

-- not strict: a NULL won still counts the deal as reached
CREATE FUNCTION @extschema@.funnel_trans(@extschema@.funnel, integer) RETURNS @extschema@.funnel
    AS 'MODULE_PATHNAME', 'funnel_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.funnel_inv(@extschema@.funnel, integer) RETURNS @extschema@.funnel
    AS 'MODULE_PATHNAME', 'funnel_inv' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.funnel_trans(@extschema@.funnel, integer, boolean) RETURNS @extschema@.funnel
    AS 'MODULE_PATHNAME', 'funnel_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.funnel_inv(@extschema@.funnel, integer, boolean) RETURNS @extschema@.funnel
    AS 'MODULE_PATHNAME', 'funnel_inv' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.funnel_combine(@extschema@.funnel, @extschema@.funnel) RETURNS @extschema@.funnel
    AS 'MODULE_PATHNAME', 'funnel_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE @extschema@.funnel_agg(reached_position integer) (
    SFUNC = @extschema@.funnel_trans,
    STYPE = @extschema@.funnel,
    INITCOND = '{"v":1,"positions":[]}',
    COMBINEFUNC = @extschema@.funnel_combine,
    MSFUNC = @extschema@.funnel_trans,
    MINVFUNC = @extschema@.funnel_inv,
    MSTYPE = @extschema@.funnel,
    MINITCOND = '{"v":1,"positions":[]}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.funnel_agg(integer) IS
    'Funnel of deals by the highest open-stage position reached (reaching k counts as passing 1..k); NULL positions are skipped.';

CREATE AGGREGATE @extschema@.funnel_agg(reached_position integer, won boolean) (
    SFUNC = @extschema@.funnel_trans,
    STYPE = @extschema@.funnel,
    INITCOND = '{"v":1,"positions":[]}',
    COMBINEFUNC = @extschema@.funnel_combine,
    MSFUNC = @extschema@.funnel_trans,
    MINVFUNC = @extschema@.funnel_inv,
    MSTYPE = @extschema@.funnel,
    MINITCOND = '{"v":1,"positions":[]}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.funnel_agg(integer, boolean) IS
    'Funnel with outcomes: give a won deal the last open position; a NULL won counts as reached but not won.';

CREATE AGGREGATE @extschema@.rollup(@extschema@.funnel) (
    SFUNC = @extschema@.funnel_combine,
    STYPE = @extschema@.funnel,
    INITCOND = '{"v":1,"positions":[]}',
    COMBINEFUNC = @extschema@.funnel_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.rollup(@extschema@.funnel) IS 'Merges funnel summaries; NULL summaries are skipped.';

CREATE FUNCTION @extschema@.reached(@extschema@.funnel, "position" integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'funnel_reached' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.reached(@extschema@.funnel, integer) IS
    'Deals whose highest position reached is at least position.';
CREATE FUNCTION @extschema@.conversion(@extschema@.funnel, from_position integer, to_position integer)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'funnel_conversion' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.conversion(@extschema@.funnel, integer, integer) IS
    'reached(to_position) / reached(from_position); NULL when no deal reached from_position.';
CREATE FUNCTION @extschema@.win_rate_from(@extschema@.funnel, "position" integer) RETURNS double precision
    AS 'MODULE_PATHNAME', 'funnel_win_rate_from' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.win_rate_from(@extschema@.funnel, integer) IS
    'Won deals among those that reached position, over all that reached it; NULL when none did.';
CREATE FUNCTION @extschema@.stages(@extschema@.funnel,
                                   OUT "position" integer, OUT reached bigint,
                                   OUT conversion_to_next double precision, OUT win_rate_from double precision)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'funnel_stages' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.stages(@extschema@.funnel) IS
    'One row per position from 1 to the highest reached: deals that reached it, conversion to the next position, win rate from it.';
