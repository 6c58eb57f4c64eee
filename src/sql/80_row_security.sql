-- Row-level security.  A sales database holds commission-relevant numbers,
-- so each person sees the rows of their own part of the organisation:
--
--   rep       a login whose name is in rep.db_role: their own deals with
--             everything recorded about them, their own activities and
--             transcripts, leads, quotas and forecast submissions;
--   manager   a rep with reports (rep.manager_id, any depth): the same for
--             every rep of their reporting tree, themselves included;
--   analyst   a member of the role given to enable_row_security(): all rows;
--   anyone    else: no row.
--
-- The table owner and roles with BYPASSRLS are not filtered: the role that
-- loads the CRM's data should be one of them.  Reference data (pipelines,
-- stages, milestones, price terms, exchange rates) is read by every rep and
-- written by analysts; accounts and contacts are shared by every rep, and
-- only analysts delete them.  Quotas are set by a rep's managers, never by
-- the rep; a rep adds forecast submissions, dated when written, and
-- changes none.  A row a rep writes stays inside their tree: the deal it
-- belongs to and every rep it names (owner, mover, rep) are of the tree.
--
-- Accounts are shared, so a rep may open a deal on any account; the
-- recurring revenue of "accounts they have a deal with" scopes their KPIs
-- but is no secret from them.  Revoke SELECT on recurring_revenue where it
-- must be one.
--
-- Nothing here is SECURITY DEFINER: every KPI function, view and C pass
-- reads as its caller, so a rep's KPIs are computed from that rep's rows
-- only, the company-wide comparisons included.
--
-- Who sees whom is kept in rep_visibility (viewer, rep_id): every rep's
-- login with the reps of its tree.  The policies read it instead of walking
-- rep.manager_id, which would need to read rep through rep's own policy.

CREATE TABLE @extschema@.rep_visibility (
    viewer              name NOT NULL,
    rep_id              bigint NOT NULL,
    -- rep_id reports to viewer, directly or not (not the viewer's own row)
    subordinate         boolean NOT NULL,
    PRIMARY KEY (viewer, rep_id)
);
COMMENT ON TABLE @extschema@.rep_visibility IS
    'Derived from rep (db_role, manager_id): each rep''s login (viewer) with every rep of its reporting tree, itself included. Read by the row-level security policies; rebuilt by a trigger on rep and by refresh_rep_visibility().';

-- Rebuilds rep_visibility from rep.  A reporting line that loops (A reports
-- to B, B to A) gives both logins both trees, and ends.
CREATE FUNCTION @extschema@.refresh_rep_visibility()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM @extschema@.rep_visibility;
    INSERT INTO @extschema@.rep_visibility (viewer, rep_id, subordinate)
    WITH RECURSIVE tree (viewer_id, rep_id) AS (
        SELECT r.rep_id, r.rep_id FROM @extschema@.rep r WHERE r.db_role IS NOT NULL
        UNION
        SELECT t.viewer_id, r.rep_id
          FROM tree t
          JOIN @extschema@.rep r ON r.manager_id OPERATOR(pg_catalog.=) t.rep_id
    )
    SELECT v.db_role, t.rep_id, bool_and(t.rep_id OPERATOR(pg_catalog.<>) t.viewer_id)
      FROM tree t
      JOIN @extschema@.rep v ON v.rep_id OPERATOR(pg_catalog.=) t.viewer_id
     GROUP BY v.db_role, t.rep_id;
$$;
COMMENT ON FUNCTION @extschema@.refresh_rep_visibility() IS
    'Rebuilds rep_visibility from rep.db_role and rep.manager_id (run after loading rep with triggers off).';

CREATE FUNCTION sales_kpi_internal.rep_after_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'rep_after_change', 'rep');
    -- only a change of who logs in as whom, or who reports to whom, matters
    -- (the transition tables exist for an update only)
    IF TG_OP = 'UPDATE' THEN
        IF NOT EXISTS (SELECT 1 FROM new_reps n FULL JOIN old_reps o USING (rep_id)
                        WHERE (n.db_role, n.manager_id) IS DISTINCT FROM (o.db_role, o.manager_id)) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM @extschema@.refresh_rep_visibility();
    RETURN NULL;
END;
$$;
CREATE TRIGGER rep_after_insert
    AFTER INSERT ON @extschema@.rep
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.rep_after_change();
CREATE TRIGGER rep_after_update
    AFTER UPDATE ON @extschema@.rep
    REFERENCING OLD TABLE AS old_reps NEW TABLE AS new_reps
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.rep_after_change();
CREATE TRIGGER rep_after_delete
    AFTER DELETE ON @extschema@.rep
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.rep_after_change();
CREATE TRIGGER rep_after_truncate
    AFTER TRUNCATE ON @extschema@.rep
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.rep_after_change();

-- The policies, table by table: the USING and WITH CHECK expressions of the
-- policies every login is subject to (TO PUBLIC; the analyst role gets one
-- more that passes every row).  An expression reads rep_visibility for the
-- current login once per query (a hashed subplan); a table that belongs to
-- a deal reads the deals the login sees through the deal's own policy.
CREATE FUNCTION @extschema@.row_security_policies()
RETURNS TABLE (table_name text, policy_name text, command text, using_expr text, check_expr text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH fragment AS (SELECT
        -- the reps of the current login's tree, itself included
        '(SELECT v.rep_id FROM @extschema@.rep_visibility v WHERE v.viewer OPERATOR(pg_catalog.=) CURRENT_USER)' AS tree,
        -- the reps below the current login
        '(SELECT v.rep_id FROM @extschema@.rep_visibility v WHERE v.viewer OPERATOR(pg_catalog.=) CURRENT_USER AND v.subordinate)' AS below,
        -- the current login is a rep
        'EXISTS (SELECT 1 FROM @extschema@.rep_visibility v WHERE v.viewer OPERATOR(pg_catalog.=) CURRENT_USER)' AS is_rep,
        -- what the current login sees of the deals, activities and their accounts
        '(SELECT o.opportunity_id FROM @extschema@.opportunity o)' AS deals,
        '(SELECT a.activity_id FROM @extschema@.activity a)' AS activities,
        '(SELECT o.account_id FROM @extschema@.opportunity o)' AS accounts,
        -- a submission is dated when it is written (five minutes either
        -- way for a client's clock), so that none can be backdated
        'submitted_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) ''5 minutes''::pg_catalog.interval)'
        ' AND submitted_at OPERATOR(pg_catalog.<=) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) ''5 minutes''::pg_catalog.interval)' AS just_now
    ), policy(ord, t, pol, cmd, u, c) AS (VALUES
        (1, 'opportunity', 'sales_kpi_scope', 'ALL', 'owner_id IN {tree}', 'owner_id IN {tree}'),
        (2, 'stage_event', 'sales_kpi_scope', 'ALL', 'opportunity_id IN {deals}', 'opportunity_id IN {deals} AND (rep_id IS NULL OR rep_id IN {tree})'),
        (3, 'opportunity_history', 'sales_kpi_scope', 'ALL', 'opportunity_id IN {deals}', 'opportunity_id IN {deals} AND owner_id IN {tree}'),
        (4, 'milestone_event', 'sales_kpi_scope', 'ALL', 'opportunity_id IN {deals}', 'opportunity_id IN {deals}'),
        (5, 'opportunity_contact', 'sales_kpi_scope', 'ALL', 'opportunity_id IN {deals}', 'opportunity_id IN {deals}'),
        (6, 'collection', 'sales_kpi_scope', 'ALL', 'opportunity_id IN {deals}', 'opportunity_id IN {deals}'),
        (7, 'activity', 'sales_kpi_scope', 'ALL', 'rep_id IN {tree}', 'rep_id IN {tree} AND (opportunity_id IS NULL OR opportunity_id IN {deals})'),
        (8, 'utterance', 'sales_kpi_scope', 'ALL', 'activity_id IN {activities}', 'activity_id IN {activities}'),
        (9, 'lead', 'sales_kpi_scope', 'ALL', 'rep_id IN {tree} OR opportunity_id IN {deals}', 'rep_id IN {tree} AND (opportunity_id IS NULL OR opportunity_id IN {deals})'),
        (10, 'quota', 'sales_kpi_scope', 'SELECT', 'rep_id IN {tree}', NULL),
        (11, 'quota', 'sales_kpi_managers', 'ALL', 'rep_id IN {below}', 'rep_id IN {below}'),
        (12, 'forecast_submission', 'sales_kpi_scope', 'SELECT', 'rep_id IN {tree}', NULL),
        (13, 'forecast_submission', 'sales_kpi_submit', 'INSERT', NULL, 'rep_id IN {tree} AND {just_now}'),
        (14, 'rep', 'sales_kpi_scope', 'SELECT', 'rep_id IN {tree}', NULL),
        (15, 'recurring_revenue', 'sales_kpi_scope', 'SELECT', 'account_id IN {accounts}', NULL),
        (16, 'account', 'sales_kpi_scope', 'SELECT', '{is_rep}', NULL),
        (17, 'account', 'sales_kpi_add', 'INSERT', NULL, '{is_rep}'),
        (18, 'account', 'sales_kpi_edit', 'UPDATE', '{is_rep}', '{is_rep}'),
        (19, 'contact', 'sales_kpi_scope', 'SELECT', '{is_rep}', NULL),
        (20, 'contact', 'sales_kpi_add', 'INSERT', NULL, '{is_rep}'),
        (21, 'contact', 'sales_kpi_edit', 'UPDATE', '{is_rep}', '{is_rep}'),
        (22, 'pipeline', 'sales_kpi_scope', 'SELECT', '{is_rep}', NULL),
        (23, 'stage', 'sales_kpi_scope', 'SELECT', '{is_rep}', NULL),
        (24, 'milestone', 'sales_kpi_scope', 'SELECT', '{is_rep}', NULL),
        (25, 'price_term', 'sales_kpi_scope', 'SELECT', '{is_rep}', NULL),
        (26, 'fx_rate', 'sales_kpi_scope', 'SELECT', '{is_rep}', NULL),
        (27, 'rep_visibility', 'sales_kpi_scope', 'SELECT', 'viewer OPERATOR(pg_catalog.=) CURRENT_USER', NULL)
    ), expand(ord, t, pol, cmd, expr, is_check) AS (
        SELECT ord, t, pol, cmd, u, false FROM policy
        UNION ALL
        SELECT ord, t, pol, cmd, c, true FROM policy
    )
    SELECT x.t, x.pol, x.cmd,
           max(CASE WHEN NOT x.is_check THEN e.expr END), max(CASE WHEN x.is_check THEN e.expr END)
      FROM expand x, fragment f,
           LATERAL (SELECT replace(replace(replace(replace(replace(replace(replace(x.expr,
                           '{tree}', f.tree), '{below}', f.below), '{is_rep}', f.is_rep),
                           '{deals}', f.deals), '{activities}', f.activities), '{accounts}', f.accounts),
                           '{just_now}', f.just_now) AS expr) e
     GROUP BY x.ord, x.t, x.pol, x.cmd
     ORDER BY x.ord
$$;
COMMENT ON FUNCTION @extschema@.row_security_policies() IS
    'The row-level security policies enable_row_security() creates for every login, table by table: command and the USING and WITH CHECK expressions.';

-- Whether row-level security is on, and for which analyst role: one row
-- when it is on.  A dump keeps this row, not the policies (pg_dump leaves
-- out the policies of an extension's tables), so the trigger below, which
-- creates or drops the policies whenever the row changes, also re-creates
-- them when a restore loads the row.  A restore into a cluster without the
-- analyst role keeps row security on, without the analyst policy.
CREATE TABLE @extschema@.row_security (
    enabled             boolean PRIMARY KEY DEFAULT true
        CONSTRAINT row_security_enabled_check CHECK (enabled),
    analyst_role        name
);
COMMENT ON TABLE @extschema@.row_security IS
    'One row while row-level security is on, naming the analyst role (null: none). Written by enable_row_security() and disable_row_security(); its trigger applies it.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.row_security', '');
-- only its owner reads or writes it, whatever a DBA grants on all tables
ALTER TABLE @extschema@.row_security ENABLE ROW LEVEL SECURITY;

-- Creates the policies the row asks for, or drops them when there is none.
CREATE FUNCTION sales_kpi_internal.apply_row_security()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    analyst name;
    p record;
    t text;
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'apply_row_security', 'row_security');
    -- drop what an earlier run made
    FOR p IN
        SELECT pol.polname, c.relname
          FROM pg_policy pol
          JOIN pg_class c ON c.oid = pol.polrelid
         WHERE c.relnamespace = '@extschema@'::regnamespace AND pol.polname LIKE 'sales\_kpi\_%'
    LOOP
        EXECUTE format('DROP POLICY %I ON @extschema@.%I', p.polname, p.relname);
    END LOOP;
    FOR t IN
        SELECT c.relname FROM pg_class c
         WHERE c.relnamespace = '@extschema@'::regnamespace AND c.relkind = 'r' AND c.relrowsecurity
           AND c.relname <> 'row_security'
    LOOP
        EXECUTE format('ALTER TABLE @extschema@.%I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
    REVOKE SELECT ON @extschema@.rep_visibility FROM PUBLIC;

    SELECT r.analyst_role INTO analyst FROM @extschema@.row_security r;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF analyst IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = analyst) THEN
        RAISE WARNING 'row-level security is on without an analyst policy: role "%" does not exist', analyst
            USING HINT = 'Create the role and run sales_kpi.enable_row_security() again.';
        analyst := NULL;
    END IF;
    PERFORM @extschema@.refresh_rep_visibility();
    FOR p IN SELECT * FROM @extschema@.row_security_policies() LOOP
        EXECUTE format('CREATE POLICY %I ON @extschema@.%I AS PERMISSIVE FOR %s TO PUBLIC%s%s',
                       p.policy_name, p.table_name, p.command,
                       CASE WHEN p.using_expr IS NOT NULL THEN format(' USING (%s)', p.using_expr) END,
                       CASE WHEN p.check_expr IS NOT NULL THEN format(' WITH CHECK (%s)', p.check_expr) END);
    END LOOP;
    FOR t IN SELECT DISTINCT r.table_name FROM @extschema@.row_security_policies() r ORDER BY 1 LOOP
        IF analyst IS NOT NULL THEN
            EXECUTE format('CREATE POLICY sales_kpi_analyst ON @extschema@.%I AS PERMISSIVE FOR ALL TO %I USING (true) WITH CHECK (true)',
                           t, analyst);
        END IF;
        EXECUTE format('ALTER TABLE @extschema@.%I ENABLE ROW LEVEL SECURITY', t);
    END LOOP;
    -- the policies read it as the querying login; its own policy shows each login its rows
    GRANT SELECT ON @extschema@.rep_visibility TO PUBLIC;
    RETURN NULL;
END;
$$;
CREATE TRIGGER row_security_apply
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.row_security
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.apply_row_security();

-- Turns row-level security on: the policies above for every login, and one
-- that passes every row for members of the analyst role, when given.  Run
-- it as the owner of the tables, again after changing the analyst role.
CREATE FUNCTION @extschema@.enable_row_security(analyst_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM @extschema@.row_security;
    INSERT INTO @extschema@.row_security (analyst_role)
    SELECT r.rolname FROM pg_roles r WHERE r.oid = enable_row_security.analyst_role
    UNION ALL
    SELECT NULL WHERE enable_row_security.analyst_role IS NULL;
$$;
COMMENT ON FUNCTION @extschema@.enable_row_security(regrole) IS
    'Turns row-level security on for every table: a rep (rep.db_role) sees their own rows, a manager their reporting tree, members of analyst_role everything, any other login nothing. Run as the tables'' owner; replaces an earlier run; kept by dumps.';

-- Turns it off again: drops the policies.
CREATE FUNCTION @extschema@.disable_row_security()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM @extschema@.row_security;
$$;
COMMENT ON FUNCTION @extschema@.disable_row_security() IS
    'Turns row-level security off: drops the policies enable_row_security() made. Run as the tables'' owner.';
