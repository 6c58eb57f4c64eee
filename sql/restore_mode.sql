-- A restore's COPY (check_function_bodies off, as pg_restore sets it, by a
-- role that may set session_replication_role) takes the dump's rows as they
-- are: no row-by-row foreign-key checks, no triggers.  Its foreign keys are
-- checked when the statement ends, one query per key.  Anything else goes
-- the ordinary way.
\i sql/fixture.psql
\set VERBOSITY terse
SET check_function_bodies = off;

-- a deal restored with its stage fields and no snapshot: taken as it is
-- (an INSERT would have given it a creation snapshot)
COPY sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, stage_id, closed_at, stage_entered_at, created_at) FROM stdin;
900	1	1	2	Restored	1000	5	2026-02-01 00:00:00+00	2026-02-01 00:00:00+00	2026-01-05 00:00:00+00
\.
SELECT opportunity_id, stage_id, closed_at, snapshot_at FROM sales_kpi.opportunity WHERE opportunity_id = 900;
SELECT count(*) AS snapshots FROM sales_kpi.opportunity_history WHERE opportunity_id = 900;
SHOW session_replication_role;
-- its history, in dump order: the deal's fields are not rewritten
COPY sales_kpi.stage_event (stage_event_id, opportunity_id, stage_id, entered_at) FROM stdin;
900	900	1	2026-01-05 00:00:00+00
901	900	5	2026-02-01 00:00:00+00
\.
SELECT count(*) FROM sales_kpi.check_consistency();

-- every foreign key of the rows loaded is checked when the COPY ends
\set VERBOSITY default
COPY sales_kpi.stage_event (opportunity_id, stage_id, entered_at) FROM stdin;
900	1	2026-01-10 00:00:00+00
99999	1	2026-01-10 00:00:00+00
\.
COPY sales_kpi.stage_event (opportunity_id, stage_id, entered_at, rep_id) FROM stdin;
900	1	2026-01-10 00:00:00+00	42
\.
-- a key of two columns (the deal's stage must be of its pipeline)
COPY sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, stage_id, created_at) FROM stdin;
1	1	2	Wrong pipeline	7	2026-01-05 00:00:00+00
\.
-- a null key column refers to nothing (MATCH SIMPLE)
COPY sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at) FROM stdin;
2	\N	email	2026-01-10 00:00:00+00
\.
COPY sales_kpi.activity (rep_id, opportunity_id, kind, occurred_at) FROM stdin;
2	424242	email	2026-01-10 00:00:00+00
\.
\set VERBOSITY terse
-- the setting is back after a failed COPY as after a good one
SHOW session_replication_role;
SELECT count(*) AS events FROM sales_kpi.stage_event WHERE opportunity_id = 900;

-- an INSERT is not a restore: the triggers run (creation snapshot)
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, created_at)
VALUES (901, 1, 1, 2, 'Inserted', 500, '2026-01-05');
SELECT count(*) AS snapshots FROM sales_kpi.opportunity_history WHERE opportunity_id = 901;

-- with check_function_bodies on, a COPY is not a restore either: the new
-- event moves the deal
RESET check_function_bodies;
COPY sales_kpi.stage_event (opportunity_id, stage_id, entered_at) FROM stdin;
901	2	2026-01-06 00:00:00+00
\.
SELECT stage_id, stage_entered_at FROM sales_kpi.opportunity WHERE opportunity_id = 901;
COPY sales_kpi.stage_event (opportunity_id, stage_id, entered_at) FROM stdin;
99999	1	2026-01-10 00:00:00+00
\.

-- a role that may not set session_replication_role restores the ordinary
-- way, triggers and row-by-row checks included
CREATE ROLE restore_mode_owner;
GRANT USAGE ON SCHEMA sales_kpi TO restore_mode_owner;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sales_kpi TO restore_mode_owner;
SET ROLE restore_mode_owner;
SET check_function_bodies = off;
COPY sales_kpi.stage_event (opportunity_id, stage_id, entered_at) FROM stdin;
901	3	2026-01-07 00:00:00+00
\.
SHOW session_replication_role;
RESET ROLE;
SELECT stage_id, stage_entered_at FROM sales_kpi.opportunity WHERE opportunity_id = 901;
RESET check_function_bodies;
REVOKE ALL ON ALL TABLES IN SCHEMA sales_kpi FROM restore_mode_owner;
REVOKE USAGE ON SCHEMA sales_kpi FROM restore_mode_owner;
DROP ROLE restore_mode_owner;

-- only a COPY into the table itself is a restore: an INSERT run by a COPY
-- (here COPY (INSERT ...) TO) goes the ordinary way, and moves the deal
SET check_function_bodies = off;
COPY (INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
      VALUES (901, 4, '2026-01-08') RETURNING opportunity_id) TO STDOUT;
SELECT stage_id, stage_entered_at FROM sales_kpi.opportunity WHERE opportunity_id = 901;

-- a table whose end-of-statement trigger is no longer ENABLE ALWAYS (as
-- ALTER TABLE ... ENABLE TRIGGER ALL leaves it) is restored the ordinary
-- way: row-by-row checks, and the setting never changes
ALTER TABLE sales_kpi.stage_event DISABLE TRIGGER ALL;
ALTER TABLE sales_kpi.stage_event ENABLE TRIGGER ALL;
COPY sales_kpi.stage_event (opportunity_id, stage_id, entered_at) FROM stdin;
99999	1	2026-01-10 00:00:00+00
\.
SHOW session_replication_role;
ALTER TABLE sales_kpi.stage_event ENABLE ALWAYS TRIGGER restore_statement_begin;
ALTER TABLE sales_kpi.stage_event ENABLE ALWAYS TRIGGER restore_statement_end;

-- a restore that failed in a savepoint leaves nothing behind: a later
-- statement keeps the setting its transaction chose
BEGIN;
SAVEPOINT s;
COPY sales_kpi.stage_event (opportunity_id, stage_id, entered_at) FROM stdin;
900	1	2026-01-10 00:00:00+00
900	1	not a time
\.
ROLLBACK TO SAVEPOINT s;
SET LOCAL session_replication_role = replica;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (900, 1, '2026-01-11');
SHOW session_replication_role;
ROLLBACK;
RESET check_function_bodies;

-- the triggers are for the extension's tables only
CREATE TABLE public.restore_mode_other (id bigint);
CREATE TRIGGER restore_statement_begin BEFORE INSERT ON public.restore_mode_other
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.restore_statement_begin();
INSERT INTO public.restore_mode_other VALUES (1);
DROP TABLE public.restore_mode_other;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'sales_kpi_internal'::regnamespace AND p.proname LIKE 'restore_statement_%'
 ORDER BY 1;

-- the triggers fire only as triggers
SELECT sales_kpi_internal.restore_statement_begin();
SELECT sales_kpi_internal.restore_statement_end();
