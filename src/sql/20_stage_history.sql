-- Stage history keeps each deal consistent.
--
-- opportunity.stage_id, closed_at and stage_entered_at are derived from the
-- deal's newest stage_event (latest entered_at, ties by stage_event_id):
-- stage_entered_at is that event's entered_at, closed_at too when its stage
-- is won or lost, else null.  Statement-level triggers with transition
-- tables do the work set-wise, and out-of-order (back-dated) inserts and
-- reopened deals come out right because only the newest event counts.
--
-- Cost is linear in the rows written, whatever the tables' sizes: PL/pgSQL
-- keeps the plan of a query made at its first runs, when a table may be
-- empty or a transition table one row, so the triggers never let a cached
-- plan join a transition table.  They collect the ids of the deals written
-- and probe by them (one index probe per deal, whatever the plan), and
-- compare old and new rows with EXCEPT (linear at any size) rather than by
-- a join.  JIT is off for them: compiling would cost more than the work.
-- Their plans are generic (plan_cache_mode): a query given a deal-id array
-- was otherwise planned anew at every move, as the plan for a one-element
-- array looked cheaper than the generic one, and planning cost more than
-- the rest of the move.  The generic plans probe by id at any size.
-- The common case of a move (an event inserted in a pipeline without
-- gates, the sync, the deal's update) is in C (stage_sync.c): in PL/pgSQL
-- its twenty-odd statements cost more than the writes themselves.
--
-- Inserting an opportunity never creates stage events: a restored dump
-- brings its own events, and generated ones would collide with them.  A new
-- deal gets its creation event from move_stage() (or an insert into
-- stage_event); until its first event, the stage given on insert stands.

-- Effective stage-gate mode of a pipeline: its own, else the setting.
CREATE FUNCTION @extschema@.stage_gate_mode(pipeline_id bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(p.gate_mode, @extschema@.default_stage_gate_mode())
      FROM @extschema@.pipeline p
     WHERE p.pipeline_id = stage_gate_mode.pipeline_id
$$;
COMMENT ON FUNCTION @extschema@.stage_gate_mode(bigint) IS
    'Stage-gate mode in force for a pipeline: pipeline.gate_mode, or the setting sales_kpi.stage_gate_mode when that is null.';

-- Lock the given deals' rows, in id order, before their history is read:
-- a concurrent writer of one of them is waited for, and what is read next
-- (by a new statement, so with a new snapshot) includes what it committed.
-- Without this, a statement that waited for another writer's lock went on
-- with the history it had read before the wait and wrote a stage the
-- history no longer said.  Every writer locks in the same order, so
-- statements that touch many deals do not deadlock each other.
CREATE FUNCTION sales_kpi_internal.lock_deals(opportunity_ids bigint[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    PERFORM 1
       FROM @extschema@.opportunity o
      WHERE o.opportunity_id = ANY (opportunity_ids)
      ORDER BY o.opportunity_id
        FOR NO KEY UPDATE OF o;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.lock_deals(bigint[]) IS
    'Internal: locks the rows of the given deals in id order (FOR NO KEY UPDATE), as every writer of their history does first.';

-- After lock_deals, for the deals of rows a statement wrote (they exist: the
-- rows' foreign keys were checked): a deal the writer does not see is one
-- that row security hid from it when a concurrent change of the deal (of its
-- owner) committed while the lock waited.  The deal's fields could not be
-- brought in step with what was written, so the statement is refused as a
-- serialization failure; a retry sees the deal as it now is.  Only under row
-- security can this happen (stage_event_after_insert() calls this too).
CREATE FUNCTION sales_kpi_internal.refuse_unseen_deals(opportunity_ids bigint[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    unseen bigint;
BEGIN
    SELECT d.id INTO unseen
      FROM unnest(opportunity_ids) AS d(id)
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opportunity o WHERE o.opportunity_id = d.id)
     ORDER BY d.id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'could not sync opportunity %: it is no longer visible to the current role', unseen
            USING ERRCODE = 'serialization_failure',
                  DETAIL = 'Another transaction changed the deal while this one waited for it.',
                  HINT = 'Retry the transaction.';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.refuse_unseen_deals(bigint[]) IS
    'Internal: after lock_deals, refuses (40001) a statement that wrote rows of a deal row security no longer lets the writer see.';

-- Set stage_id, closed_at and stage_entered_at of the given deals from their
-- newest event.  Deals with no event left keep their stage, but have no
-- stage_entered_at.  In C (stage_sync.c): one probe of the deal and of its
-- newest event per id, and the deals' update trigger knows the values it
-- writes need no check.
CREATE FUNCTION sales_kpi_internal.sync_opportunity_stage(opportunity_ids bigint[])
RETURNS void
AS 'MODULE_PATHNAME', 'sync_opportunity_stage'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.sync_opportunity_stage(bigint[]) IS
    'Internal: re-derives opportunity.stage_id, closed_at and stage_entered_at from the newest stage_event of each given deal.';

-- A stage event must name a stage of the deal's own pipeline.
CREATE FUNCTION sales_kpi_internal.check_stage_event_pipeline(stage_event_ids bigint[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    bad record;
BEGIN
    SELECT e.opportunity_id, e.stage_id, o.pipeline_id, s.pipeline_id AS stage_pipeline_id
      INTO bad
      FROM unnest(stage_event_ids) AS n(id)
      JOIN @extschema@.stage_event e ON e.stage_event_id = n.id
      JOIN @extschema@.opportunity o ON o.opportunity_id = e.opportunity_id
      JOIN @extschema@.stage s ON s.stage_id = e.stage_id
     WHERE s.pipeline_id <> o.pipeline_id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'stage % belongs to pipeline %, but opportunity % is in pipeline %',
                bad.stage_id, bad.stage_pipeline_id, bad.opportunity_id, bad.pipeline_id
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'stage_event_pipeline_check',
                  TABLE = 'stage_event', SCHEMA = '@extschema@';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_stage_event_pipeline(bigint[]) IS
    'Internal: raises an error when one of the given stage events names a stage outside its deal''s pipeline.';

-- Stage gates.  A live move (a new event later than every event the deal
-- had before the statement) that goes forward past an open stage whose
-- required milestones are not all complete by the move is reported (warn) or
-- refused (enforce).  Moving forward means to a later open stage (every
-- stage from the current one up to the target is passed, so skipping a stage
-- passes it too) or to won (every open stage from the current one on);
-- regressions, losses and reopenings are never gated.  Loading a deal's
-- first events and back-dated inserts are history, not moves, and are not
-- gated: this is also what lets a dump of a pipeline in enforce mode restore.
CREATE FUNCTION sales_kpi_internal.stage_gate_violations(new_event_ids bigint[])
RETURNS TABLE (stage_event_id bigint, opportunity_id bigint, pipeline_id bigint,
               gate_mode text, from_stage text, to_stage text, entered_at timestamptz,
               missing_milestones text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH new_id AS (
        SELECT DISTINCT id FROM unnest(new_event_ids) AS u(id)
    ), history AS (
        -- the whole history of each deal that got new events
        SELECT e.stage_event_id, e.opportunity_id, e.stage_id, e.entered_at,
               n.id IS NOT NULL AS is_new,
               lag(e.stage_id) OVER w AS from_stage_id,
               bool_or(n.id IS NULL) OVER (PARTITION BY e.opportunity_id) AS had_events,
               bool_or(n.id IS NULL) OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
                   AS older_event_follows
          FROM @extschema@.stage_event e
          LEFT JOIN new_id n ON n.id = e.stage_event_id
         WHERE e.opportunity_id IN (SELECT s.opportunity_id
                                      FROM @extschema@.stage_event s
                                      JOIN new_id n2 ON n2.id = s.stage_event_id)
        WINDOW w AS (PARTITION BY e.opportunity_id ORDER BY e.entered_at, e.stage_event_id)
    ), live_move AS (
        -- new events later than everything the deal had before
        SELECT h.stage_event_id, h.opportunity_id, h.stage_id, h.entered_at, h.from_stage_id
          FROM history h
         WHERE h.is_new AND h.had_events AND NOT coalesce(h.older_event_follows, false)
    ), forward AS (
        SELECT m.*, f.pipeline_id, f.name AS from_name, t.name AS to_name,
               f.position AS from_position,
               CASE WHEN t.kind = 'won' THEN NULL ELSE t.position END AS to_position,
               @extschema@.stage_gate_mode(f.pipeline_id) AS mode
          FROM live_move m
          JOIN @extschema@.stage f ON f.stage_id = m.from_stage_id
          JOIN @extschema@.stage t ON t.stage_id = m.stage_id
         WHERE f.kind = 'open'
           AND (t.kind = 'won' OR (t.kind = 'open' AND t.position > f.position))
    )
    SELECT fw.stage_event_id, fw.opportunity_id, fw.pipeline_id, fw.mode,
           fw.from_name, fw.to_name, fw.entered_at,
           string_agg(format('%s: %s', ps.name, ms.name), ', ' ORDER BY ps.position, ms.position)
      FROM forward fw
      JOIN @extschema@.stage ps
        ON ps.pipeline_id = fw.pipeline_id AND ps.kind = 'open'
       AND ps.position >= fw.from_position
       AND (fw.to_position IS NULL OR ps.position < fw.to_position)
      JOIN @extschema@.milestone ms ON ms.stage_id = ps.stage_id AND ms.required
     WHERE fw.mode <> 'off'
       AND NOT EXISTS (SELECT 1
                         FROM @extschema@.milestone_event me
                        WHERE me.opportunity_id = fw.opportunity_id
                          AND me.milestone_id = ms.milestone_id
                          AND me.completed_at <= fw.entered_at)
     GROUP BY fw.stage_event_id, fw.opportunity_id, fw.pipeline_id, fw.mode,
              fw.from_name, fw.to_name, fw.entered_at
     ORDER BY fw.stage_event_id
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_gate_violations(bigint[]) IS
    'Internal: live forward moves among the given stage events that leave required milestones incomplete, in pipelines whose gate mode is not off.';

-- A stage event dated in the future is a typo or a bad import, not a
-- plan: one would make the deal's current stage one it has not reached.
-- Clocks and time zones differ, so up to this much ahead is accepted;
-- beyond it a write is refused, and data_quality_findings reports any such
-- row (future_event) that got in with the triggers off.
CREATE FUNCTION @extschema@.future_tolerance()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT interval '1 day' $$;
COMMENT ON FUNCTION @extschema@.future_tolerance() IS
    'How far ahead of now a stage event may be dated (1 day): later ones are refused when written and reported by data_quality_findings as future_event.';

-- The error for a stage event dated beyond future_tolerance().  The
-- triggers skip the check while a dump loads (check_function_bodies off):
-- a restore takes what the database held.
CREATE FUNCTION sales_kpi_internal.refuse_future_event(stage_event_id bigint, opportunity_id bigint,
                                                entered_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT isfinite(entered_at) THEN
        RAISE EXCEPTION 'stage event % of opportunity % is dated %: a stage is entered at a finite instant',
                stage_event_id, opportunity_id, entered_at
            USING ERRCODE = 'check_violation', CONSTRAINT = 'stage_event_future_check',
                  TABLE = 'stage_event', SCHEMA = '@extschema@', COLUMN = 'entered_at';
    END IF;
    RAISE EXCEPTION 'stage event % of opportunity % is dated %, more than % in the future',
            stage_event_id, opportunity_id, entered_at, @extschema@.future_tolerance()
        USING ERRCODE = 'check_violation', CONSTRAINT = 'stage_event_future_check',
              TABLE = 'stage_event', SCHEMA = '@extschema@', COLUMN = 'entered_at',
              HINT = 'A stage is entered when it happens; plan future steps with opportunity.expected_close.';
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.refuse_future_event(bigint, bigint, timestamptz) IS
    'Internal: raises the error for a stage event dated more than future_tolerance() ahead.';

-- The trigger for every case: future-dated events (refused), a stage of
-- another pipeline (refused), stage gates.  The common case, a move in a
-- pipeline without gates, is done by stage_event_after_insert() in C
-- (stage_sync.c), which hands every other statement to this one.
CREATE FUNCTION sales_kpi_internal.stage_event_after_insert_general()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    ids bigint[];
    deals bigint[];
    v record;
    n_warned integer := 0;
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'stage_event_after_insert_general', 'stage_event');
    SELECT array_agg(stage_event_id), array_agg(DISTINCT opportunity_id)
      INTO ids, deals
      FROM new_events;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT e.stage_event_id, e.opportunity_id, e.entered_at INTO v
      FROM new_events e
     WHERE (e.entered_at > now() + @extschema@.future_tolerance() OR NOT isfinite(e.entered_at))
       -- (skipped while a dump loads; a writer under row security never skips it)
       AND (current_setting('check_function_bodies')::boolean OR row_security_active('@extschema@.stage_event'))
     ORDER BY e.stage_event_id
     LIMIT 1;
    IF FOUND THEN
        PERFORM sales_kpi_internal.refuse_future_event(v.stage_event_id, v.opportunity_id, v.entered_at);
    END IF;
    PERFORM sales_kpi_internal.lock_deals(deals);
    IF row_security_active('@extschema@.opportunity') THEN
        PERFORM sales_kpi_internal.refuse_unseen_deals(deals);
    END IF;
    PERFORM sales_kpi_internal.check_stage_event_pipeline(ids);

    -- gates: only when some pipeline involved has them on
    -- (stage_gate_mode() written out: an SQL function with settings is
    -- planned at every call)
    IF EXISTS (SELECT 1
                 FROM @extschema@.opportunity o
                 JOIN @extschema@.pipeline p ON p.pipeline_id = o.pipeline_id
                WHERE o.opportunity_id = ANY (deals)
                  AND coalesce(p.gate_mode, @extschema@.default_stage_gate_mode()) <> 'off')
    THEN
        FOR v IN SELECT * FROM sales_kpi_internal.stage_gate_violations(ids) LOOP
            IF v.gate_mode = 'enforce' THEN
                RAISE EXCEPTION 'stage gate: opportunity % cannot move from "%" to "%" with required milestones incomplete',
                        v.opportunity_id, v.from_stage, v.to_stage
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'stage_gate',
                          TABLE = 'stage_event', SCHEMA = '@extschema@',
                          DETAIL = format('Missing at %s: %s.', v.entered_at, v.missing_milestones),
                          HINT = 'Record the milestones in sales_kpi.milestone_event first, or set the pipeline''s gate_mode to warn or off.';
            END IF;
            n_warned := n_warned + 1;
            IF n_warned <= 10 THEN
                RAISE WARNING 'stage gate: opportunity % moved from "%" to "%" with required milestones incomplete',
                        v.opportunity_id, v.from_stage, v.to_stage
                    USING DETAIL = format('Missing at %s: %s.', v.entered_at, v.missing_milestones);
            END IF;
        END LOOP;
        IF n_warned > 10 THEN
            RAISE WARNING 'stage gate: % more moves with required milestones incomplete', n_warned - 10;
        END IF;
    END IF;

    PERFORM sales_kpi_internal.sync_opportunity_stage(deals);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_event_after_insert_general() IS
    'Internal: what stage_event_after_insert() does, for every case (future-dated events, stages of another pipeline, stage gates); called by it.';

-- Lock the inserted events' deals, check their pipelines and sync them: in
-- C, as a move runs it (see stage_sync.c).
CREATE FUNCTION sales_kpi_internal.stage_event_after_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'stage_event_after_insert'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.stage_event_after_insert() IS
    'Trigger: keeps the deals of inserted stage events in step with their newest event (the common case in C; every other case in stage_event_after_insert_general()).';

CREATE FUNCTION sales_kpi_internal.stage_event_after_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    deals bigint[] := ARRAY(SELECT opportunity_id FROM new_events
                            UNION SELECT opportunity_id FROM old_events);
    v record;
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'stage_event_after_update', 'stage_event');
    -- only the events whose date the update changed
    SELECT e.stage_event_id, e.opportunity_id, e.entered_at INTO v
      FROM (SELECT n.stage_event_id, n.opportunity_id, n.entered_at FROM new_events n
            EXCEPT
            SELECT o.stage_event_id, o.opportunity_id, o.entered_at FROM old_events o) e
     WHERE (e.entered_at > now() + @extschema@.future_tolerance() OR NOT isfinite(e.entered_at))
       -- (skipped while a dump loads; a writer under row security never skips it)
       AND (current_setting('check_function_bodies')::boolean OR row_security_active('@extschema@.stage_event'))
     ORDER BY e.stage_event_id
     LIMIT 1;
    IF FOUND THEN
        PERFORM sales_kpi_internal.refuse_future_event(v.stage_event_id, v.opportunity_id, v.entered_at);
    END IF;
    PERFORM sales_kpi_internal.lock_deals(deals);
    IF row_security_active('@extschema@.opportunity') THEN
        -- (the deals the events now belong to; one they left may be gone)
        PERFORM sales_kpi_internal.refuse_unseen_deals(ARRAY(SELECT DISTINCT opportunity_id FROM new_events));
    END IF;
    PERFORM sales_kpi_internal.check_stage_event_pipeline(ARRAY(SELECT stage_event_id FROM new_events));
    PERFORM sales_kpi_internal.sync_opportunity_stage(deals);
    RETURN NULL;
END;
$$;

CREATE FUNCTION sales_kpi_internal.stage_event_after_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    deals bigint[] := ARRAY(SELECT DISTINCT opportunity_id FROM old_events);
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'stage_event_after_delete', 'stage_event');
    PERFORM sales_kpi_internal.lock_deals(deals);
    PERFORM sales_kpi_internal.sync_opportunity_stage(deals);
    RETURN NULL;
END;
$$;

CREATE TRIGGER stage_event_after_insert
    AFTER INSERT ON @extschema@.stage_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.stage_event_after_insert();
CREATE TRIGGER stage_event_after_update
    AFTER UPDATE ON @extschema@.stage_event
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.stage_event_after_update();
CREATE TRIGGER stage_event_after_delete
    AFTER DELETE ON @extschema@.stage_event
    REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.stage_event_after_delete();

-- The way a CRM moves a deal: records the stage event (the creation event
-- for a deal with no history yet) and, when an amount is given, a snapshot
-- of the deal with that amount at the move's instant.  The deal's fields
-- say what its newest snapshot says, so a move dated before a newer
-- snapshot writes history without changing them.
CREATE FUNCTION @extschema@.move_stage(opportunity_id bigint, stage_id bigint,
                                       at timestamptz DEFAULT now(),
                                       amount numeric DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    deal @extschema@.opportunity;
    stood record;
    in_history boolean := false;
    new_id bigint;
BEGIN
    IF move_stage.opportunity_id IS NULL THEN
        RAISE EXCEPTION 'opportunity_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF move_stage.stage_id IS NULL THEN
        RAISE EXCEPTION 'stage_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF move_stage.at IS NULL THEN
        RAISE EXCEPTION 'at must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF move_stage.at IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'at must be finite, got %', move_stage.at USING ERRCODE = 'invalid_parameter_value';
    ELSIF move_stage.at > now() + @extschema@.future_tolerance() THEN
        RAISE EXCEPTION 'at must not be more than % in the future, got %', @extschema@.future_tolerance(), move_stage.at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A stage is entered when it happens; plan future steps with opportunity.expected_close.';
    ELSIF move_stage.amount < 0 THEN
        RAISE EXCEPTION 'amount must not be negative, got %', move_stage.amount
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    -- lock the deal first, as every writer of its history does (see
    -- lock_deals); NO KEY UPDATE, as the update below takes, so that rows
    -- merely referring to the deal (activities, events) do not wait
    SELECT o.* INTO deal
      FROM @extschema@.opportunity o
     WHERE o.opportunity_id = move_stage.opportunity_id
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'opportunity % does not exist', move_stage.opportunity_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.stage s WHERE s.stage_id = move_stage.stage_id) THEN
        RAISE EXCEPTION 'stage % does not exist', move_stage.stage_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    -- the deal as its history says it stood at the move: a move dated in
    -- the past takes the amount, owner and dates of then, not of now.  The
    -- deal's row says what its newest snapshot says, so the history is read
    -- only for a move dated before that snapshot.
    IF deal.snapshot_at > move_stage.at THEN
        SELECT h.amount, h.expected_close, h.forecast_category, h.owner_id
          INTO stood
          FROM @extschema@.opportunity_history h
         WHERE h.opportunity_id = deal.opportunity_id
           AND h.changed_at <= move_stage.at
         ORDER BY h.changed_at DESC
         LIMIT 1;
        in_history := FOUND;
    END IF;
    IF NOT in_history THEN
        SELECT deal.amount, deal.expected_close, deal.forecast_category, deal.owner_id INTO stood;
    END IF;

    INSERT INTO @extschema@.stage_event (opportunity_id, stage_id, entered_at, amount, rep_id)
    VALUES (deal.opportunity_id, move_stage.stage_id, move_stage.at,
            coalesce(move_stage.amount, stood.amount), stood.owner_id)
    RETURNING stage_event_id INTO new_id;

    -- a new amount is a snapshot at the move's own instant; the deal's
    -- fields follow its newest snapshot (the snapshot trigger sets them), so
    -- a move dated before a newer snapshot leaves them alone
    IF move_stage.amount IS DISTINCT FROM stood.amount AND move_stage.amount IS NOT NULL THEN
        INSERT INTO @extschema@.opportunity_history
               (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id)
        VALUES (deal.opportunity_id, move_stage.at, move_stage.amount,
                stood.expected_close, stood.forecast_category, stood.owner_id);
    END IF;
    RETURN new_id;
END;
$$;
COMMENT ON FUNCTION @extschema@.move_stage(bigint, bigint, timestamptz, numeric) IS
    'Moves a deal into a stage at a time (default now), optionally with its new amount; returns the new stage_event_id. Stage gates apply.';
