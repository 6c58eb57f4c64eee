-- winloss_agg(won [, amount]) -> winloss: won/lost counts and the exact won
-- amount; accessors read win rate, Wilson interval and amounts out of it;
-- rollup(winloss) merges stored summaries.

CREATE TYPE @extschema@.winloss;

CREATE FUNCTION @extschema@.winloss_in(cstring) RETURNS @extschema@.winloss
    AS 'MODULE_PATHNAME', 'winloss_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.winloss_out(@extschema@.winloss) RETURNS cstring
    AS 'MODULE_PATHNAME', 'winloss_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.winloss_recv(internal) RETURNS @extschema@.winloss
    AS 'MODULE_PATHNAME', 'winloss_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.winloss_send(@extschema@.winloss) RETURNS bytea
    AS 'MODULE_PATHNAME', 'winloss_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.winloss (
    INPUT = @extschema@.winloss_in,
    OUTPUT = @extschema@.winloss_out,
    RECEIVE = @extschema@.winloss_recv,
    SEND = @extschema@.winloss_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.winloss IS
    'Summary of closed deals: won and lost counts, won deals with an amount, exact won amount. Text form {"v":1,"won":n,"lost":n,"won_with_amount":n,"won_amount":"decimal"}.';

CREATE FUNCTION @extschema@.winloss_trans(@extschema@.winloss, boolean) RETURNS @extschema@.winloss
    AS 'MODULE_PATHNAME', 'winloss_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.winloss_inv(@extschema@.winloss, boolean) RETURNS @extschema@.winloss
    AS 'MODULE_PATHNAME', 'winloss_inv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- not strict: a NULL amount still counts the outcome
CREATE FUNCTION @extschema@.winloss_amount_trans(@extschema@.winloss, boolean, numeric) RETURNS @extschema@.winloss
    AS 'MODULE_PATHNAME', 'winloss_amount_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.winloss_amount_inv(@extschema@.winloss, boolean, numeric) RETURNS @extschema@.winloss
    AS 'MODULE_PATHNAME', 'winloss_amount_inv' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.winloss_combine(@extschema@.winloss, @extschema@.winloss) RETURNS @extschema@.winloss
    AS 'MODULE_PATHNAME', 'winloss_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE @extschema@.winloss_agg(won boolean) (
    SFUNC = @extschema@.winloss_trans,
    STYPE = @extschema@.winloss,
    INITCOND = '{"v":1,"won":0,"lost":0,"won_with_amount":0,"won_amount":"0"}',
    COMBINEFUNC = @extschema@.winloss_combine,
    MSFUNC = @extschema@.winloss_trans,
    MINVFUNC = @extschema@.winloss_inv,
    MSTYPE = @extschema@.winloss,
    MINITCOND = '{"v":1,"won":0,"lost":0,"won_with_amount":0,"won_amount":"0"}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.winloss_agg(boolean) IS
    'Summary of closed deals (won true/false); rows with a NULL won are skipped.';

CREATE AGGREGATE @extschema@.winloss_agg(won boolean, amount numeric) (
    SFUNC = @extschema@.winloss_amount_trans,
    STYPE = @extschema@.winloss,
    INITCOND = '{"v":1,"won":0,"lost":0,"won_with_amount":0,"won_amount":"0"}',
    COMBINEFUNC = @extschema@.winloss_combine,
    MSFUNC = @extschema@.winloss_amount_trans,
    MINVFUNC = @extschema@.winloss_amount_inv,
    MSTYPE = @extschema@.winloss,
    MINITCOND = '{"v":1,"won":0,"lost":0,"won_with_amount":0,"won_amount":"0"}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.winloss_agg(boolean, numeric) IS
    'Summary of closed deals with their amounts; rows with a NULL won are skipped, a NULL amount counts the outcome only. Errors on a negative or non-finite amount.';

CREATE AGGREGATE @extschema@.rollup(@extschema@.winloss) (
    SFUNC = @extschema@.winloss_combine,
    STYPE = @extschema@.winloss,
    INITCOND = '{"v":1,"won":0,"lost":0,"won_with_amount":0,"won_amount":"0"}',
    COMBINEFUNC = @extschema@.winloss_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.rollup(@extschema@.winloss) IS
    'Merges winloss summaries (for example daily ones into a month); NULL summaries are skipped.';

CREATE FUNCTION @extschema@.win_rate(@extschema@.winloss) RETURNS double precision
    AS 'MODULE_PATHNAME', 'winloss_win_rate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.win_rate(@extschema@.winloss) IS
    'won / (won + lost); NULL when nothing closed.';
CREATE FUNCTION @extschema@.wilson_lower(@extschema@.winloss, confidence double precision DEFAULT 0.95)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'winloss_wilson_lower' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.wilson_lower(@extschema@.winloss, double precision) IS
    'Lower bound of the Wilson score interval of the win rate at the given two-sided confidence (default 0.95); NULL when nothing closed.';
CREATE FUNCTION @extschema@.wilson_upper(@extschema@.winloss, confidence double precision DEFAULT 0.95)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'winloss_wilson_upper' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.wilson_upper(@extschema@.winloss, double precision) IS
    'Upper bound of the Wilson score interval of the win rate at the given two-sided confidence (default 0.95); NULL when nothing closed.';
CREATE FUNCTION @extschema@.won_count(@extschema@.winloss) RETURNS bigint
    AS 'MODULE_PATHNAME', 'winloss_won_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.won_count(@extschema@.winloss) IS 'Number of won deals.';
CREATE FUNCTION @extschema@.lost_count(@extschema@.winloss) RETURNS bigint
    AS 'MODULE_PATHNAME', 'winloss_lost_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.lost_count(@extschema@.winloss) IS 'Number of lost deals.';
CREATE FUNCTION @extschema@.won_amount(@extschema@.winloss) RETURNS numeric
    AS 'MODULE_PATHNAME', 'winloss_won_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.won_amount(@extschema@.winloss) IS
    'Exact sum of the amounts of won deals; NULL when no won deal has an amount.';
CREATE FUNCTION @extschema@.avg_won_amount(@extschema@.winloss) RETURNS numeric
    AS 'MODULE_PATHNAME', 'winloss_avg_won_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.avg_won_amount(@extschema@.winloss) IS
    'Mean amount of won deals that have an amount (equal to avg(amount) over them); NULL when there are none.';
