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
