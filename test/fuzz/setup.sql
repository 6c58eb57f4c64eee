-- The fuzz harness's SQL interface, in schema fuzz (run with psql, as a
-- superuser, with -v fuzz_so=/path/to/a/copy/of/sales_kpi_fuzz.so and
-- -v corpus_dir=/path/to/test/fuzz/corpus).  Not part of the extension.

CREATE SCHEMA IF NOT EXISTS fuzz;

-- kind 'count': (type, format, outcome, count); kind 'violation':
-- (type, format, outcome = the check, iteration, detail with the input)
CREATE OR REPLACE FUNCTION fuzz.fuzz_run(seed bigint, iterations bigint, corpus text[],
                                         max_violations int DEFAULT 100)
    RETURNS TABLE(kind text, type text, format text, outcome text, count bigint,
                  iteration bigint, detail text)
    AS :'fuzz_so', 'fuzz_run' LANGUAGE C STRICT VOLATILE;

-- recv then out, to reproduce a binary input from SQL
CREATE OR REPLACE FUNCTION fuzz.fuzz_recv(type regtype, data bytea) RETURNS text
    AS :'fuzz_so', 'fuzz_recv' LANGUAGE C STRICT VOLATILE;

-- the seed corpus, one row per value, loaded from test/fuzz/corpus/TYPE.txt
CREATE TABLE IF NOT EXISTS fuzz.corpus (type text, value text);
TRUNCATE fuzz.corpus;
\set ws_file :corpus_dir '/weighted_sum.txt'
\set wl_file :corpus_dir '/winloss.txt'
\set du_file :corpus_dir '/duration_summary.txt'
\set sv_file :corpus_dir '/survival.txt'
\set li_file :corpus_dir '/lift.txt'
\set fu_file :corpus_dir '/funnel.txt'
CREATE TEMP TABLE corpus_line (line text);
COPY corpus_line FROM :'ws_file' (FORMAT text, DELIMITER E'\x01');
INSERT INTO fuzz.corpus SELECT 'weighted_sum', line FROM corpus_line; TRUNCATE corpus_line;
COPY corpus_line FROM :'wl_file' (FORMAT text, DELIMITER E'\x01');
INSERT INTO fuzz.corpus SELECT 'winloss', line FROM corpus_line; TRUNCATE corpus_line;
COPY corpus_line FROM :'du_file' (FORMAT text, DELIMITER E'\x01');
INSERT INTO fuzz.corpus SELECT 'duration_summary', line FROM corpus_line; TRUNCATE corpus_line;
COPY corpus_line FROM :'sv_file' (FORMAT text, DELIMITER E'\x01');
INSERT INTO fuzz.corpus SELECT 'survival', line FROM corpus_line; TRUNCATE corpus_line;
COPY corpus_line FROM :'li_file' (FORMAT text, DELIMITER E'\x01');
INSERT INTO fuzz.corpus SELECT 'lift', line FROM corpus_line; TRUNCATE corpus_line;
COPY corpus_line FROM :'fu_file' (FORMAT text, DELIMITER E'\x01');
INSERT INTO fuzz.corpus SELECT 'funnel', line FROM corpus_line;
DROP TABLE corpus_line;
DELETE FROM fuzz.corpus WHERE value ~ '^\s*(#|$)';

CREATE OR REPLACE FUNCTION fuzz.corpus_array() RETURNS text[]
    LANGUAGE sql STABLE AS $$ SELECT array_agg(type || E'\t' || value ORDER BY type, value) FROM fuzz.corpus $$;

-- the run's counts and its violations
CREATE OR REPLACE FUNCTION fuzz.fuzz_summaries(seed bigint, iterations bigint)
    RETURNS TABLE(type text, format text, outcome text, count bigint)
    LANGUAGE sql AS $$
    SELECT type, format, outcome, count FROM fuzz.fuzz_run(seed, iterations, fuzz.corpus_array())
     WHERE kind = 'count' ORDER BY 1, 2, 3 $$;
CREATE OR REPLACE FUNCTION fuzz.fuzz_violations(seed bigint, iterations bigint)
    RETURNS TABLE(iteration bigint, type text, format text, "check" text, detail text)
    LANGUAGE sql AS $$
    SELECT iteration, type, format, outcome, detail FROM fuzz.fuzz_run(seed, iterations, fuzz.corpus_array())
     WHERE kind = 'violation' ORDER BY 1 $$;
