-- Writes to opportunity: the stage fields must agree with the stage
-- history, and every change of a forecast field leaves a snapshot in
-- opportunity_history.
--
-- Snapshots are keyed by (opportunity_id, changed_at).  A deal's creation
-- snapshot is taken at created_at; later changes at now() (so several
-- changes in one transaction make one snapshot).  A change is recorded only
-- when the newest snapshot does not already say it, so a loader may insert
-- history rows first and then set the deal to its current values.  A row
-- inserted for an instant that already has one replaces it.
--
-- A deal inserted with snapshot_at set brings its own history: a restore
-- (the dumped row says when its newest snapshot was taken) or a loader that
-- writes the snapshots itself.  It gets no creation snapshot, and its
-- snapshots set its fields when they arrive.  So a restore loads the
-- history without replacing a snapshot per deal, each of which would run
-- the triggers once more.

-- Refuse stage fields that contradict the deal's stage history, or, for a
-- deal that has none yet, the kind of the stage it names.
CREATE FUNCTION sales_kpi_internal.check_opportunity_stage(opportunity_ids bigint[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    bad record;
BEGIN
    SELECT o.opportunity_id, o.stage_id, o.closed_at, o.stage_entered_at, o.pipeline_id,
           s.kind, n.stage_id AS event_stage_id, n.closed_at AS event_closed_at,
           n.entered_at AS event_entered_at, n.pipeline_id AS event_pipeline_id
      INTO bad
      FROM @extschema@.opportunity o
      LEFT JOIN @extschema@.stage s ON s.stage_id = o.stage_id
      LEFT JOIN LATERAL (
            SELECT e.stage_id, es.pipeline_id, e.entered_at,
                   CASE WHEN es.kind <> 'open' THEN e.entered_at END AS closed_at
              FROM @extschema@.stage_event e
              JOIN @extschema@.stage es ON es.stage_id = e.stage_id
             WHERE e.opportunity_id = o.opportunity_id
             ORDER BY e.entered_at DESC, e.stage_event_id DESC
             LIMIT 1) n ON true
     WHERE o.opportunity_id IN (SELECT unnest(opportunity_ids))
       AND CASE
             WHEN n.stage_id IS NOT NULL THEN
                  o.pipeline_id <> n.pipeline_id
                  OR o.stage_id IS DISTINCT FROM n.stage_id
                  OR o.closed_at IS DISTINCT FROM n.closed_at
                  OR o.stage_entered_at IS DISTINCT FROM n.entered_at
             WHEN o.stage_id IS NULL THEN o.closed_at IS NOT NULL
             ELSE (s.kind = 'open') <> (o.closed_at IS NULL)
           END
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF bad.event_stage_id IS NULL THEN
        RAISE EXCEPTION 'opportunity %: closed_at must be set exactly when the stage is won or lost', bad.opportunity_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'opportunity_closed_at_check',
                  TABLE = 'opportunity', SCHEMA = '@extschema@',
                  DETAIL = format('stage_id is %s (%s), closed_at is %s.',
                                  coalesce(bad.stage_id::text, 'null'), coalesce(bad.kind, 'no stage'),
                                  coalesce(bad.closed_at::text, 'null'));
    ELSIF bad.pipeline_id <> bad.event_pipeline_id THEN
        RAISE EXCEPTION 'opportunity % cannot change pipeline: its stage history is in pipeline %',
                bad.opportunity_id, bad.event_pipeline_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'opportunity_stage_history_check',
                  TABLE = 'opportunity', SCHEMA = '@extschema@';
    ELSE
        RAISE EXCEPTION 'opportunity %: stage_id, closed_at and stage_entered_at are maintained from stage_event', bad.opportunity_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'opportunity_stage_history_check',
                  TABLE = 'opportunity', SCHEMA = '@extschema@',
                  DETAIL = format('The newest stage event says stage_id %s, closed_at %s, entered at %s; the row says stage_id %s, closed_at %s, stage_entered_at %s.',
                                  bad.event_stage_id, coalesce(bad.event_closed_at::text, 'null'), bad.event_entered_at,
                                  coalesce(bad.stage_id::text, 'null'), coalesce(bad.closed_at::text, 'null'),
                                  coalesce(bad.stage_entered_at::text, 'null')),
                  HINT = 'Move a deal with sales_kpi.move_stage() or by inserting into sales_kpi.stage_event.';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_opportunity_stage(bigint[]) IS
    'Internal: raises an error when a deal''s stage_id/closed_at/stage_entered_at contradict its newest stage event (or, without events, its stage''s kind).';

CREATE FUNCTION sales_kpi_internal.opportunity_after_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'opportunity_after_insert', 'opportunity');
    PERFORM sales_kpi_internal.check_opportunity_stage(
        ARRAY(SELECT opportunity_id FROM new_deals
               WHERE stage_id IS NOT NULL OR closed_at IS NOT NULL));
    INSERT INTO @extschema@.opportunity_history
           (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id)
    SELECT opportunity_id, created_at, amount, expected_close, forecast_category, owner_id
      FROM new_deals
     WHERE snapshot_at IS NULL
        ON CONFLICT (opportunity_id, changed_at) DO NOTHING;
    RETURN NULL;
END;
$$;

-- The checks and snapshots of an update of deals.  An update that changes
-- none of the fields they depend on, or only the stage fields to what the
-- stage history says (the sync's own update), needs none of it:
-- opportunity_after_update() in C (stage_sync.c) compares each row with
-- its old version and calls this only for the other updates.
CREATE FUNCTION sales_kpi_internal.opportunity_after_update_general()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    bad record;
    moved_ids bigint[];
    moved_old_ids bigint[];
    moved_from timestamptz[];
    moved_to timestamptz[];
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'opportunity_after_update_general', 'opportunity');
    -- What changed is found with EXCEPT (new rows that no old row equals in
    -- those columns), never by joining the two transition tables: a join
    -- planned at a one-row update and cached would be a nested loop, and
    -- quadratic at the next bulk update.  A set operation is linear at any
    -- size, whatever plan is cached.

    -- snapshot_at is the time of the newest snapshot, set here only
    SELECT c.opportunity_id, c.snapshot_at, h.changed_at INTO bad
      FROM (SELECT n.opportunity_id, n.snapshot_at FROM new_deals n
            EXCEPT
            SELECT o.opportunity_id, o.snapshot_at FROM old_deals o) c
      LEFT JOIN LATERAL (SELECT max(hi.changed_at) AS changed_at
                           FROM @extschema@.opportunity_history hi
                          WHERE hi.opportunity_id = c.opportunity_id) h ON true
     WHERE c.snapshot_at IS DISTINCT FROM h.changed_at
     ORDER BY c.opportunity_id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'opportunity %: snapshot_at is maintained from opportunity_history', bad.opportunity_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'opportunity_snapshot_check',
                  TABLE = 'opportunity', SCHEMA = '@extschema@',
                  DETAIL = format('The newest snapshot was taken at %s; the row says %s.',
                                  coalesce(bad.changed_at::text, 'null'), coalesce(bad.snapshot_at::text, 'null'));
    END IF;
    PERFORM sales_kpi_internal.check_opportunity_stage(
        ARRAY(SELECT c.opportunity_id
                FROM (SELECT n.opportunity_id, n.stage_id, n.closed_at, n.stage_entered_at, n.pipeline_id
                        FROM new_deals n
                      EXCEPT
                      SELECT o.opportunity_id, o.stage_id, o.closed_at, o.stage_entered_at, o.pipeline_id
                        FROM old_deals o) c));

    -- a changed created_at carries the creation snapshot along: the deals
    -- whose created_at changed, with the new and the old value (both sets
    -- hold the same deals, so sorted by id they pair up)
    SELECT array_agg(c.opportunity_id ORDER BY c.opportunity_id), array_agg(c.created_at ORDER BY c.opportunity_id)
      INTO moved_ids, moved_to
      FROM (SELECT n.opportunity_id, n.created_at FROM new_deals n
            EXCEPT
            SELECT o.opportunity_id, o.created_at FROM old_deals o) c;
    IF moved_ids IS NOT NULL THEN
        SELECT array_agg(c.opportunity_id ORDER BY c.opportunity_id), array_agg(c.created_at ORDER BY c.opportunity_id)
          INTO moved_old_ids, moved_from
          FROM (SELECT o.opportunity_id, o.created_at FROM old_deals o
                EXCEPT
                SELECT n.opportunity_id, n.created_at FROM new_deals n) c;
        IF moved_old_ids IS DISTINCT FROM moved_ids THEN
            RAISE EXCEPTION 'opportunity_id of a deal cannot change'
                USING ERRCODE = 'feature_not_supported',
                      TABLE = 'opportunity', SCHEMA = '@extschema@',
                      HINT = 'Its history refers to it: insert a new deal instead.';
        END IF;
        UPDATE @extschema@.opportunity_history h
           SET changed_at = m.created_to
          FROM unnest(moved_ids, moved_from, moved_to) AS m(opportunity_id, created_from, created_to)
         WHERE h.opportunity_id = m.opportunity_id
           AND h.changed_at = m.created_from
           AND NOT EXISTS (SELECT 1 FROM @extschema@.opportunity_history x
                            WHERE x.opportunity_id = m.opportunity_id
                              AND x.changed_at = m.created_to);
    END IF;

    -- a change of a forecast field leaves a snapshot, unless the newest
    -- snapshot already says it
    INSERT INTO @extschema@.opportunity_history
           (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id)
    SELECT c.opportunity_id, now(), c.amount, c.expected_close, c.forecast_category, c.owner_id
      FROM (SELECT n.opportunity_id, n.amount, n.expected_close, n.forecast_category, n.owner_id
              FROM new_deals n
            EXCEPT
            SELECT o.opportunity_id, o.amount, o.expected_close, o.forecast_category, o.owner_id
              FROM old_deals o) c
     WHERE NOT EXISTS (
            SELECT 1
              FROM (SELECT h.amount, h.expected_close, h.forecast_category, h.owner_id
                      FROM @extschema@.opportunity_history h
                     WHERE h.opportunity_id = c.opportunity_id
                     ORDER BY h.changed_at DESC
                     LIMIT 1) newest
             WHERE (newest.amount, newest.expected_close, newest.forecast_category, newest.owner_id)
                   IS NOT DISTINCT FROM (c.amount, c.expected_close, c.forecast_category, c.owner_id));
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.opportunity_after_update_general() IS
    'Internal: the checks and snapshots of an update of deals; called by opportunity_after_update() for an update that changes a field they depend on.';

CREATE FUNCTION sales_kpi_internal.opportunity_after_update()
RETURNS trigger
AS 'MODULE_PATHNAME', 'opportunity_after_update'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.opportunity_after_update() IS
    'Trigger: checks an update of deals and takes its snapshots, through opportunity_after_update_general() unless the update changes no field they depend on.';

-- A snapshot for an instant that already has one replaces it.  In C: it
-- runs for every history row written, and probes the primary key directly,
-- at the same cost whatever the table's size (see history_replace.c).
CREATE FUNCTION sales_kpi_internal.opportunity_history_before_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'opportunity_history_before_insert'
LANGUAGE C;

-- A deal always says what its newest snapshot says, and when it was taken
-- (snapshot_at).  Changes made through
-- the deal leave their snapshot at now(); history written directly (a
-- loader's inserts, a replaced snapshot, a correction or a deletion) moves
-- the deal to its newest snapshot here.  KPIs rely on this: a deal with no
-- snapshot after an instant is its own row at that instant.
CREATE FUNCTION sales_kpi_internal.opportunity_history_after_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    deals bigint[];
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'opportunity_history_after_change', 'opportunity_history');
    -- statement triggers fire for empty statements too: the update below
    -- would fire the deal's update trigger, whose empty insert fires this
    IF NOT EXISTS (SELECT 1 FROM changed_snapshots) THEN
        RETURN NULL;
    END IF;
    deals := ARRAY(SELECT DISTINCT opportunity_id FROM changed_snapshots);
    PERFORM sales_kpi_internal.lock_deals(deals);
    -- (a deletion may be its deal's own, by cascade)
    IF TG_OP <> 'DELETE' AND row_security_active('@extschema@.opportunity') THEN
        PERFORM sales_kpi_internal.refuse_unseen_deals(deals);
    END IF;
    -- by the deals' ids (one probe each), not by joining the transition
    -- table, so that no plan depends on its size
    UPDATE @extschema@.opportunity o
       SET amount = n.amount, expected_close = n.expected_close,
           forecast_category = n.forecast_category, owner_id = n.owner_id, snapshot_at = n.changed_at
      FROM unnest(deals) AS d(id)
      CROSS JOIN LATERAL (
            SELECT h.changed_at, h.amount, h.expected_close, h.forecast_category, h.owner_id
              FROM @extschema@.opportunity_history h
             WHERE h.opportunity_id = d.id
             ORDER BY h.changed_at DESC
             LIMIT 1) n
     WHERE o.opportunity_id = d.id
       AND (o.amount, o.expected_close, o.forecast_category, o.owner_id, o.snapshot_at)
           IS DISTINCT FROM (n.amount, n.expected_close, n.forecast_category, n.owner_id, n.changed_at);
    -- a deal whose last snapshot was deleted keeps its fields, but has no
    -- snapshot time
    UPDATE @extschema@.opportunity o
       SET snapshot_at = NULL
      FROM unnest(deals) AS d(id)
     WHERE o.opportunity_id = d.id
       AND o.snapshot_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.opportunity_history h
                        WHERE h.opportunity_id = o.opportunity_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER opportunity_after_insert
    AFTER INSERT ON @extschema@.opportunity
    REFERENCING NEW TABLE AS new_deals
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.opportunity_after_insert();
CREATE TRIGGER opportunity_after_update
    AFTER UPDATE ON @extschema@.opportunity
    REFERENCING OLD TABLE AS old_deals NEW TABLE AS new_deals
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.opportunity_after_update();
CREATE TRIGGER opportunity_history_before_insert
    BEFORE INSERT ON @extschema@.opportunity_history
    FOR EACH ROW EXECUTE FUNCTION sales_kpi_internal.opportunity_history_before_insert();
CREATE TRIGGER opportunity_history_after_insert
    AFTER INSERT ON @extschema@.opportunity_history
    REFERENCING NEW TABLE AS changed_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.opportunity_history_after_change();
CREATE TRIGGER opportunity_history_after_update
    AFTER UPDATE ON @extschema@.opportunity_history
    REFERENCING NEW TABLE AS changed_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.opportunity_history_after_change();
CREATE TRIGGER opportunity_history_after_delete
    AFTER DELETE ON @extschema@.opportunity_history
    REFERENCING OLD TABLE AS changed_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.opportunity_history_after_change();
