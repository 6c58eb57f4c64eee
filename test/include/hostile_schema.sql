-- A hostile schema "evil": for every pg_catalog operator on the common
-- types, a function or aggregate of the names SQL code uses most, and the
-- common type names, a look-alike in evil that raises
-- 'hostile <object> called' (SQLSTATE EV1L0).  A session whose search_path
-- lists evil before pg_catalog resolves an unqualified name to the
-- look-alike, so any statement that does not pin its names fails.
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;

DO $hostile$
DECLARE
    r record;
    fname text;
    ret text;
    args text;
BEGIN
    -- operators: same name and argument types, pg_catalog's return type
    FOR r IN
        SELECT o.oid, o.oprname, o.oprleft::regtype AS l, o.oprright::regtype AS rt,
               o.oprresult::regtype AS res
          FROM pg_catalog.pg_operator o
         WHERE o.oprnamespace = 'pg_catalog'::regnamespace
           AND o.oprkind = 'b'
           AND o.oprleft IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype,
                             'float8'::regtype, 'float4'::regtype, 'text'::regtype, 'bpchar'::regtype,
                             'varchar'::regtype, 'name'::regtype, 'date'::regtype, 'timestamp'::regtype,
                             'timestamptz'::regtype, 'interval'::regtype, 'bool'::regtype,
                             'oid'::regtype, 'int8range'::regtype, 'daterange'::regtype,
                             'tstzrange'::regtype, 'anyarray'::regtype)
    LOOP
        fname := 'op_' || r.oid;
        EXECUTE format('CREATE FUNCTION evil.%I(%s, %s) RETURNS %s LANGUAGE plpgsql AS $f$
                        BEGIN RAISE EXCEPTION ''%%'', %L USING ERRCODE = ''EV1L0''; END $f$',
                       fname, r.l, r.rt, r.res, format('hostile operator %s(%s, %s) called', r.oprname, r.l, r.rt));
        EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.%I)',
                       r.oprname, r.l, r.rt, fname);
    END LOOP;

    -- plain functions of the names SQL code uses, same signatures
    FOR r IN
        SELECT p.oid, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_result(p.oid) AS res, p.proretset
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
           AND p.proname IN ('lower', 'upper', 'now', 'date_trunc', 'date_part', 'extract', 'round',
                             'trunc', 'floor', 'ceil', 'abs', 'sqrt', 'exp', 'ln', 'power', 'sign',
                             'unnest', 'generate_series', 'format', 'make_interval', 'isfinite',
                             'array_length', 'cardinality', 'length', 'to_char', 'btrim', 'md5',
                             'age', 'timezone', 'clock_timestamp', 'statement_timestamp',
                             'current_setting', 'set_config', 'array_position', 'array_remove',
                             'array_append', 'split_part', 'strpos', 'substr', 'left', 'right',
                             'concat', 'concat_ws', 'to_timestamp', 'justify_interval', 'int8range',
                             'daterange', 'tstzrange', 'random', 'width_bucket', 'array_fill',
                             'array_upper', 'array_lower', 'mod', 'div', 'log', 'pg_sleep',
                             'text', 'numeric', 'int8', 'int4', 'float8', 'date', 'timestamptz',
                             'make_date', 'make_timestamptz', 'regexp_replace', 'quote_ident',
                             'string_to_array', 'array_to_string', 'jsonb_build_object', 'to_jsonb',
                             'pg_advisory_xact_lock', 'nextval', 'has_table_privilege', 'pg_has_role')
           -- internal-typed and pseudo-typed results cannot be written in plpgsql
           AND p.prorettype NOT IN ('internal'::regtype, 'anyelement'::regtype, 'anyarray'::regtype,
                                    'anycompatible'::regtype, 'anycompatiblearray'::regtype,
                                    'anynonarray'::regtype, 'record'::regtype, 'void'::regtype)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proargtypes::oid[]) t
                            WHERE t IN ('internal'::regtype, 'cstring'::regtype, '"any"'::regtype))
    LOOP
        EXECUTE format('CREATE FUNCTION evil.%I(%s) RETURNS %s LANGUAGE plpgsql AS $f$
                        BEGIN RAISE EXCEPTION ''%%'', %L USING ERRCODE = ''EV1L0''; END $f$',
                       r.proname, r.args, r.res, format('hostile function %s(%s) called', r.proname, r.args));
    END LOOP;

    -- aggregates over the plain types
    FOR r IN
        SELECT p.oid, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
               p.prorettype::regtype AS res
          FROM pg_catalog.pg_aggregate a
          JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND a.aggkind = 'n'
           AND p.proname IN ('sum', 'count', 'max', 'min', 'avg', 'string_agg', 'bool_or', 'bool_and',
                             'every', 'stddev', 'variance')
           AND p.prorettype NOT IN ('anyelement'::regtype, 'anyarray'::regtype, 'anyenum'::regtype,
                                    'anyrange'::regtype, 'anymultirange'::regtype)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proargtypes::oid[]) t
                            WHERE t IN ('internal'::regtype, '"any"'::regtype, 'anyarray'::regtype,
                                        'anyenum'::regtype, 'anyrange'::regtype, 'anymultirange'::regtype,
                                        'anyelement'::regtype))
    LOOP
        args := coalesce(nullif(r.args, ''), '*');
        fname := 'agg_' || r.oid;
        EXECUTE format('CREATE FUNCTION evil.%I(%s) RETURNS %s LANGUAGE plpgsql AS $f$
                        BEGIN RAISE EXCEPTION ''%%'', %L USING ERRCODE = ''EV1L0''; END $f$',
                       fname, concat_ws(', ', r.res::text, nullif(r.args, '')), r.res,
                       format('hostile aggregate %s(%s) called', r.proname, args));
        EXECUTE format('CREATE AGGREGATE evil.%I(%s) (SFUNC = evil.%I, STYPE = %s)',
                       r.proname, args, fname, r.res);
    END LOOP;
END
$hostile$;

-- type names: a domain over another type, so a cast to the bare name fails
CREATE DOMAIN evil.text AS integer;
CREATE DOMAIN evil.numeric AS integer;
CREATE DOMAIN evil.bigint AS integer;
CREATE DOMAIN evil.int8 AS integer;
CREATE DOMAIN evil.timestamptz AS integer;
CREATE DOMAIN evil.date AS integer;
CREATE DOMAIN evil."interval" AS integer;
