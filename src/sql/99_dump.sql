-- pg_dump keeps the rows of every user-data table (registered next to each
-- table); it must also keep the position of their identity sequences, or a
-- restored database would hand out ids that already exist.
DO $$
DECLARE
    seq regclass;
BEGIN
    FOR seq IN
        SELECT pg_catalog.pg_get_serial_sequence(a.attrelid::regclass::text, a.attname)::regclass
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
         WHERE c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r'
           AND a.attidentity OPERATOR(pg_catalog.<>) ''
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(seq, '');
    END LOOP;
END;
$$;

-- A restore loads the tables at the speed of COPY (see restore.c): a COPY
-- with check_function_bodies off, by a role that may set
-- session_replication_role, takes the dump's rows as they are and checks
-- their foreign keys with one query per key when it ends.  On every table
-- that has foreign keys or row triggers and can be large.  ENABLE ALWAYS,
-- so that they fire while the setting is replica.
CREATE FUNCTION sales_kpi_internal.restore_statement_begin()
RETURNS trigger
AS 'MODULE_PATHNAME', 'restore_statement_begin'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.restore_statement_begin() IS
    'Trigger: a restore''s COPY (check_function_bodies off, a role that may set session_replication_role, no row security in force) runs without row-by-row foreign-key checks and triggers.';
CREATE FUNCTION sales_kpi_internal.restore_statement_end()
RETURNS trigger
AS 'MODULE_PATHNAME', 'restore_statement_end'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.restore_statement_end() IS
    'Trigger: at the end of a restore''s COPY, checks the foreign keys of the rows it loaded, one query per key, and puts session_replication_role back.';
-- (a trigger needs EXECUTE only to be created)
REVOKE EXECUTE ON FUNCTION sales_kpi_internal.restore_statement_begin() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sales_kpi_internal.restore_statement_end() FROM PUBLIC;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['contact', 'opportunity', 'lead', 'opportunity_contact', 'stage_event',
                             'opportunity_history', 'milestone_event', 'activity', 'utterance',
                             'collection']
    LOOP
        EXECUTE format('CREATE TRIGGER restore_statement_begin BEFORE INSERT ON @extschema@.%I
                            FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.restore_statement_begin()', t);
        EXECUTE format('CREATE TRIGGER restore_statement_end AFTER INSERT ON @extschema@.%I
                            REFERENCING NEW TABLE AS restored_rows
                            FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.restore_statement_end()', t);
        EXECUTE format('ALTER TABLE @extschema@.%I ENABLE ALWAYS TRIGGER restore_statement_begin', t);
        EXECUTE format('ALTER TABLE @extschema@.%I ENABLE ALWAYS TRIGGER restore_statement_end', t);
    END LOOP;
END;
$$;
