-- sales_kpi install script, assembled by make from src/sql/*.sql.
-- Every object is schema-qualified with @extschema@, every operator outside
-- a function body with OPERATOR(pg_catalog.x), and every function body runs
-- with a fixed search_path, so neither the script nor its functions depend
-- on what the installing session's search_path finds.

\echo Use "CREATE EXTENSION sales_kpi" to load this file. \quit

-- The schema must be one that nobody but a superuser could have prepared.
-- CREATE EXTENSION installs into an existing schema of the extension's name
-- without a word, so a role that created it first could own objects in it
-- (operators that CHECK constraints bind to, functions the triggers call)
-- that later run as whoever writes the tables.  A schema made by this
-- CREATE EXTENSION passes, and so does the empty, superuser-owned schema a
-- restore creates before it re-creates the extension.
DO $$
DECLARE
    schema_oid oid := '@extschema@'::pg_catalog.regnamespace;
    owner name;
    owner_is_superuser boolean;
    content text;
    creator name;
BEGIN
    SELECT r.rolname, r.rolsuper INTO owner, owner_is_superuser
      FROM pg_catalog.pg_namespace n
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.oid OPERATOR(pg_catalog.=) schema_oid;
    -- every object in a schema depends on it; the extension itself is not content
    SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) INTO content
      FROM pg_catalog.pg_depend d
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
       AND d.refobjid OPERATOR(pg_catalog.=) schema_oid
       AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_extension'::pg_catalog.regclass
     LIMIT 1;
    SELECT coalesce(r.rolname, 'PUBLIC') INTO creator
      FROM pg_catalog.pg_namespace n,
           pg_catalog.aclexplode(n.nspacl) a
      LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
     WHERE n.oid OPERATOR(pg_catalog.=) schema_oid
       AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
       AND NOT coalesce(r.rolsuper, false)
     LIMIT 1;
    IF NOT owner_is_superuser OR content IS NOT NULL OR creator IS NOT NULL THEN
        RAISE EXCEPTION 'schema @extschema@ exists already and was not made for sales_kpi'
            USING ERRCODE = 'invalid_schema_definition',
                  DETAIL = CASE
                      WHEN NOT owner_is_superuser THEN pg_catalog.format('It is owned by role %s, which is not a superuser.', owner)
                      WHEN content IS NOT NULL THEN pg_catalog.format('It already holds %s.', content)
                      ELSE pg_catalog.format('Role %s may create objects in it.', creator) END,
                  HINT = 'Drop or rename the schema and run CREATE EXTENSION sales_kpi again: it creates the schema itself.';
    END IF;
END;
$$;

-- The engine's helpers and the trigger functions live apart from the API,
-- so that \df sales_kpi.* lists what users call.  The KPIs call the
-- helpers as the calling role, so every role may use the schema (and none
-- but its owner create in it): it holds functions only, which read nothing
-- the caller may not read through sales_kpi.  Made here, it cannot be one
-- prepared by another role (an existing schema of that name makes CREATE
-- EXTENSION fail).
CREATE SCHEMA sales_kpi_internal;
COMMENT ON SCHEMA sales_kpi_internal IS
    'sales_kpi''s internal helpers and trigger functions: not an API, they change between releases.';
-- The installing role's default privileges may grant CREATE on every new
-- schema; a role that could add an overload here would have the KPIs, and
-- whoever runs them, call it.
DO $$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(r.rolname) END
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
          LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE n.nspname OPERATOR(pg_catalog.=) 'sales_kpi_internal'
           AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA sales_kpi_internal FROM %s', grantee);
    END LOOP;
END;
$$;
GRANT USAGE ON SCHEMA sales_kpi_internal TO PUBLIC;

-- The PL/pgSQL trigger functions act only for the tables they were written
-- for (the C ones check the same), so that one attached to another table
-- refuses to run instead of writing the extension's tables.
CREATE FUNCTION sales_kpi_internal.check_trigger_table(relid oid, trigger_function text, VARIADIC tables text[])
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM unnest(tables) AS t(name)
                    WHERE pg_catalog.to_regclass('@extschema@.' || pg_catalog.quote_ident(t.name)) = relid) THEN
        RAISE EXCEPTION '%: fired for table %, which is not the extension''s %',
                trigger_function, relid::regclass, array_to_string(tables, ' or ')
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_trigger_table(oid, text, text[]) IS
    'Internal: raises 39P01 unless a trigger function fires for one of the named tables of the extension.';
