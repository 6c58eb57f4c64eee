-- Malformed binary input of every summary type fails cleanly with SQLSTATE
-- 22P03: a wrong version byte, a truncated value and trailing bytes, each
-- fed through COPY (FORMAT binary) with COPY's own framing kept consistent.
-- The binary input refuses an amount the text input would refuse (more
-- than 38 digits), so that nothing it accepts fails to restore from a dump.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(23);

SELECT format('/tmp/sales_kpi_bin_%s', pg_backend_pid()) AS f \gset

-- one value of every summary type
CREATE TEMP TABLE sample (typ text, val text);
INSERT INTO sample
SELECT 'winloss', sales_kpi.winloss_agg(g % 3 = 0, g)::text FROM generate_series(1, 50) g
UNION ALL SELECT 'weighted_sum', sales_kpi.weighted_pipeline_trans('{"v":1,"n":0,"sum":"0"}', 12.5, 0.5)::text
UNION ALL SELECT 'duration_summary', sales_kpi.duration_agg(g * interval '1 hour')::text FROM generate_series(1, 50) g
UNION ALL SELECT 'survival', sales_kpi.survival_agg(g * interval '1 day', CASE g % 3 WHEN 0 THEN 'won' WHEN 1 THEN 'lost' ELSE 'open' END)::text FROM generate_series(1, 50) g
UNION ALL SELECT 'lift', sales_kpi.lift_agg(g % 2 = 0, g % 3 = 0)::text FROM generate_series(1, 50) g
UNION ALL SELECT 'funnel', sales_kpi.funnel_agg(1 + g % 5, g % 4 = 0)::text FROM generate_series(1, 50) g;

-- writes raw bytes to the server file :f
CREATE FUNCTION pg_temp.write_file(path text, content bytea) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT %L) TO PROGRAM %L',
                   translate(encode(content, 'base64'), E'\n', ''), 'base64 -d > ' || path);
END $$;

-- the COPY BINARY file of one value of type typ, corrupted by mode:
-- the value starts at byte 25, after the 19-byte header, the field count
-- and the field length
CREATE FUNCTION pg_temp.corrupt(typ text, val text, mode text, path text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    b bytea;
    len int;
BEGIN
    EXECUTE format('CREATE TEMP TABLE one (v sales_kpi.%I) ON COMMIT DROP', typ);
    EXECUTE format('INSERT INTO one VALUES (%L::sales_kpi.%I)', val, typ);
    EXECUTE format('COPY one TO %L (FORMAT binary)', path);
    DROP TABLE one;
    b := pg_read_binary_file(path);
    len := (get_byte(b, 21) << 24) | (get_byte(b, 22) << 16) | (get_byte(b, 23) << 8) | get_byte(b, 24);
    IF mode = 'none' THEN
        NULL;
    ELSIF mode = 'version' THEN
        b := set_byte(b, 25, 7);
    ELSIF mode IN ('amount_max', 'amount_39_digits') THEN
        -- the exact amount is the value's last 16 bytes: 10^38 - 1, or 10^38
        b := substr(b, 1, 25 + len - 16)
             || CASE mode WHEN 'amount_max' THEN '\x4b3b4ca85a86c47a098a223fffffffff'::bytea
                          ELSE '\x4b3b4ca85a86c47a098a224000000000'::bytea END
             || substr(b, 26 + len);
    ELSIF mode = 'truncated' THEN
        b := substr(b, 1, 21) || int4send(len - 1) || substr(b, 26, len - 1) || substr(b, 26 + len);
    ELSE  -- trailing
        b := substr(b, 1, 21) || int4send(len + 1) || substr(b, 26, len) || '\x00'::bytea || substr(b, 26 + len);
    END IF;
    PERFORM pg_temp.write_file(path, b);
END $$;

CREATE FUNCTION pg_temp.load(typ text, path text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE IF EXISTS back;
    EXECUTE format('CREATE TEMP TABLE back (v sales_kpi.%I)', typ);
    EXECUTE format('COPY back FROM %L (FORMAT binary)', path);
END $$;

-- the file round trip itself works: an uncorrupted value loads
SELECT lives_ok(format($q$DO $do$ BEGIN PERFORM pg_temp.corrupt('funnel', %L, 'none', %L); PERFORM pg_temp.load('funnel', %L); END $do$ $q$,
                       (SELECT val FROM sample WHERE typ = 'funnel'), :'f', :'f'),
                'an intact value written and read back through the same path loads');

SELECT throws_ok(format($q$DO $do$ BEGIN PERFORM pg_temp.corrupt(%L, %L, %L, %L); PERFORM pg_temp.load(%L, %L); END $do$ $q$,
                        s.typ, s.val, m.mode, :'f', s.typ, :'f'),
                 '22P03', NULL, format('%s: %s binary input is refused with 22P03', s.typ, m.mode))
  FROM sample s CROSS JOIN (VALUES ('version'), ('truncated'), ('trailing')) m(mode)
 ORDER BY s.typ, m.mode;

SELECT lives_ok(format($q$DO $do$ BEGIN PERFORM pg_temp.corrupt(%L, %L, 'amount_max', %L); PERFORM pg_temp.load(%L, %L); END $do$ $q$,
                       s.typ, s.val, :'f', s.typ, :'f'),
                format('%s: an amount of 38 digits loads from binary', s.typ))
  FROM sample s WHERE s.typ IN ('winloss', 'weighted_sum') ORDER BY s.typ;
SELECT throws_ok(format($q$DO $do$ BEGIN PERFORM pg_temp.corrupt(%L, %L, 'amount_39_digits', %L); PERFORM pg_temp.load(%L, %L); END $do$ $q$,
                        s.typ, s.val, :'f', s.typ, :'f'),
                 '22P03', NULL, format('%s: an amount of 39 digits is refused from binary, as from text', s.typ))
  FROM sample s WHERE s.typ IN ('winloss', 'weighted_sum') ORDER BY s.typ;

SELECT * FROM finish();
ROLLBACK;
