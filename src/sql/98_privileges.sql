-- Privileges.  The extension grants nothing on schema sales_kpi: nobody but
-- a superuser reaches it until the DBA grants USAGE on it (see the README's
-- security section for the grants each kind of user needs; every role may
-- use sales_kpi_internal, see 00_header.sql).  Functions keep
-- PostgreSQL's default EXECUTE for PUBLIC, so that a role with USAGE can call
-- the KPIs, aggregates and accessors, and the functions these call as that
-- role, except the functions nobody needs to call by name: the transition,
-- inverse, combine and final functions of the aggregates (an aggregate runs
-- them with its owner's privileges), the input and output functions of the
-- types (a cast or COPY runs them without a privilege check) and the
-- trigger functions (a trigger fires without one; without EXECUTE, no other
-- role can attach them to a table of its own).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT DISTINCT s.fn::regprocedure
          FROM (SELECT pg_catalog.unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                               a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn,
                                               a.aggmfinalfn])::oid AS fn
                  FROM pg_catalog.pg_aggregate a
                  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) a.aggfnoid
                 WHERE p.pronamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
                UNION
                SELECT pg_catalog.unnest(ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend])::oid
                  FROM pg_catalog.pg_type t
                 WHERE t.typnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
                UNION
                SELECT p.oid
                  FROM pg_catalog.pg_proc p
                 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'sales_kpi_internal'::pg_catalog.regnamespace
                   AND p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.trigger'::pg_catalog.regtype) s
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) s.fn
         WHERE p.pronamespace OPERATOR(pg_catalog.=) ANY (ARRAY['@extschema@'::pg_catalog.regnamespace,
                                                               'sales_kpi_internal'::pg_catalog.regnamespace])
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END;
$$;
