-- sales_kpi 0.1.0 -> 0.2.0.  What changed is listed in CHANGELOG.md; the
-- upgrade test (test/upgrade.sh) checks that a database updated with this
-- script has the same catalog as a fresh 0.2.0 install, every row and
-- stored summary intact and the same KPI results.

\echo Use "ALTER EXTENSION sales_kpi UPDATE TO '0.2.0'" to load this file. \quit

-- Instants a KPI reads at or from must be finite, and a series of periods
-- is bounded (a series from -infinity never ended).
-- An instant a KPI reads at or from must be finite: infinity has no period,
-- no age and no pipeline, and a series from -infinity never ends.
CREATE OR REPLACE FUNCTION @extschema@.finite_instant(value timestamptz, argument text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT isfinite(value) THEN
        RAISE EXCEPTION 'argument "%" must be a finite instant, got %', argument, value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN value;
END;
$$;

COMMENT ON FUNCTION @extschema@.finite_instant(timestamptz, text) IS
    'Internal: the value when it is finite (or null), else a 22023 naming the argument.';

-- At most this many periods in a series: 192 years of weeks, 833 of months.
CREATE OR REPLACE FUNCTION @extschema@.max_periods()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 10000 $$;

COMMENT ON FUNCTION @extschema@.max_periods() IS
    'The most periods a series of periods may have (10000); a longer one is refused.';

CREATE OR REPLACE FUNCTION @extschema@.periods(from_at timestamptz, to_at timestamptz, grain text DEFAULT 'month',
                                    OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE ROWS 12
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := @extschema@.reporting_timezone();
    first_start timestamp;
    last_instant timestamp;
    step interval;
BEGIN
    PERFORM @extschema@.finite_instant(from_at, 'from_at'), @extschema@.finite_instant(to_at, 'to_at');
    IF to_at <= from_at THEN
        RETURN;
    END IF;
    -- raises the error for an unknown grain
    first_start := @extschema@.local_period_start(from_at AT TIME ZONE tz, grain);
    last_instant := to_at AT TIME ZONE tz - interval '1 microsecond';
    step := @extschema@.grain_length(grain);
    -- counted in seconds, a month as 30 days: a bound, not the exact count
    IF (extract(epoch FROM last_instant) - extract(epoch FROM first_start)) / extract(epoch FROM step)
       >= @extschema@.max_periods() THEN
        RAISE EXCEPTION 'the series from % to % by % has more than % periods', from_at, to_at, grain,
                @extschema@.max_periods()
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Ask for a shorter time range or a coarser grain.';
    END IF;
    RETURN QUERY
        SELECT s AT TIME ZONE tz, (s + step) AT TIME ZONE tz
          FROM generate_series(first_start, last_instant, step) s;
END;
$$;

COMMENT ON FUNCTION @extschema@.periods(timestamptz, timestamptz, text) IS
    'The periods of the grain that overlap [from_at, to_at), in order; from_at and to_at must be finite, and a series of more than max_periods() periods is refused.';

-- The period a KPI function reports on: the arguments when given, else the
-- fiscal quarter holding as_of.  Refuses an empty or reversed period.
CREATE OR REPLACE FUNCTION @extschema@.resolve_period(requested_start timestamptz, requested_end timestamptz,
                                           as_of timestamptz,
                                           OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'argument "as_of" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.finite_instant(as_of, 'as_of'),
            @extschema@.finite_instant(requested_start, 'period_start'),
            @extschema@.finite_instant(requested_end, 'period_end');
    period_start := coalesce(requested_start, @extschema@.period_start(as_of, 'quarter'));
    period_end := coalesce(requested_end, @extschema@.period_end(period_start, 'quarter'));
    IF period_end <= period_start THEN
        RAISE EXCEPTION 'argument "period_end" (%) must be later than "period_start" (%)', period_end, period_start
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

COMMENT ON FUNCTION @extschema@.resolve_period(timestamptz, timestamptz, timestamptz) IS
    'Internal: the [period_start, period_end) a KPI reports on; the fiscal quarter holding as_of where they are null.';

-- The series of periods a KPI over time reports on: from_at defaults to the
-- start of the period of the grain a year before as_of, to_at to the end of
-- the period holding as_of.
CREATE OR REPLACE FUNCTION @extschema@.resolve_series(from_at timestamptz, to_at timestamptz, grain text,
                                           as_of timestamptz,
                                           OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 12
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF as_of IS NULL OR grain IS NULL THEN
        RAISE EXCEPTION 'arguments "as_of" and "grain" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.finite_instant(as_of, 'as_of'),
            @extschema@.finite_instant(from_at, 'from_at'),
            @extschema@.finite_instant(to_at, 'to_at');
    from_at := coalesce(from_at, @extschema@.period_start(as_of - interval '1 year', grain));
    to_at := coalesce(to_at, @extschema@.period_end(as_of, grain));
    IF to_at <= from_at THEN
        RAISE EXCEPTION 'argument "to_at" (%) must be later than "from_at" (%)', to_at, from_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY SELECT p.period_start, p.period_end FROM @extschema@.periods(from_at, to_at, grain) p;
END;
$$;

COMMENT ON FUNCTION @extschema@.resolve_series(timestamptz, timestamptz, text, timestamptz) IS
    'Internal: the periods of the grain a KPI over time reports on; from a year before as_of to the period holding it where from_at and to_at are null.';

-- Argument checks shared by the KPI functions.  Every argument defaults to
-- a value that passes, so a caller names only the ones it takes; a NULL
-- passed is refused.  Returns true, so that a caller in SQL can keep the
-- check in an expression whose value it reads.
CREATE OR REPLACE FUNCTION @extschema@.check_kpi_args(as_of timestamptz DEFAULT 'epoch',
                                           dimension text DEFAULT 'company',
                                           grain text DEFAULT 'month',
                                           lookback interval DEFAULT '0',
                                           horizon interval DEFAULT '0')
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    interval_names text[] := ARRAY['lookback', 'horizon'];
    intervals interval[] := ARRAY[lookback, horizon];
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'argument "as_of" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.finite_instant(as_of, 'as_of');
    -- raises the shared errors for a null or unknown dimension
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    -- the grains are those local_period_start knows; it raises the error
    PERFORM @extschema@.local_period_start(timestamp '2000-01-01', coalesce(grain, 'null'));
    FOR i IN 1 .. cardinality(intervals) LOOP
        IF intervals[i] IS NULL OR intervals[i] < interval '0' THEN
            RAISE EXCEPTION 'argument "%" must be a non-negative interval, got "%"',
                    interval_names[i], coalesce(intervals[i]::text, 'null')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION @extschema@.check_kpi_args(timestamptz, text, text, interval, interval) IS
    'Internal: argument checks shared by the KPI functions (as_of not null and finite, a known dimension, the grain, non-negative lookback and horizon); true or a 22023 (22004 for a null as_of) naming the argument.';


-- Concurrent writers of one deal serialize: every writer of a deal's history
-- locks the deal rows first, in id order.
-- Lock the given deals' rows, in id order, before their history is read:
-- a concurrent writer of one of them is waited for, and what is read next
-- (by a new statement, so with a new snapshot) includes what it committed.
-- Without this, a statement that waited for another writer's lock went on
-- with the history it had read before the wait and wrote a stage the
-- history no longer said.  Every writer locks in the same order, so
-- statements that touch many deals do not deadlock each other.
CREATE OR REPLACE FUNCTION @extschema@.lock_deals(opportunity_ids bigint[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1
       FROM @extschema@.opportunity o
      WHERE o.opportunity_id = ANY (opportunity_ids)
      ORDER BY o.opportunity_id
        FOR NO KEY UPDATE OF o;
END;
$$;

COMMENT ON FUNCTION @extschema@.lock_deals(bigint[]) IS
    'Internal: locks the rows of the given deals in id order (FOR NO KEY UPDATE), as every writer of their history does first.';

CREATE OR REPLACE FUNCTION @extschema@.stage_event_after_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids bigint[];
    deals bigint[];
    v record;
    n_warned integer := 0;
BEGIN
    SELECT array_agg(stage_event_id), array_agg(DISTINCT opportunity_id)
      INTO ids, deals
      FROM new_events;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM @extschema@.lock_deals(deals);
    PERFORM @extschema@.check_stage_event_pipeline(ids);

    -- gates: only when some pipeline involved has them on
    IF EXISTS (SELECT 1
                 FROM (SELECT DISTINCT o.pipeline_id
                         FROM new_events n
                         JOIN @extschema@.opportunity o ON o.opportunity_id = n.opportunity_id) p
                WHERE @extschema@.stage_gate_mode(p.pipeline_id) <> 'off')
    THEN
        FOR v IN SELECT * FROM @extschema@.stage_gate_violations(ids) LOOP
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

    PERFORM @extschema@.sync_opportunity_stage(deals);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.stage_event_after_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deals bigint[] := ARRAY(SELECT opportunity_id FROM new_events
                            UNION SELECT opportunity_id FROM old_events);
BEGIN
    PERFORM @extschema@.lock_deals(deals);
    PERFORM @extschema@.check_stage_event_pipeline(ARRAY(SELECT stage_event_id FROM new_events));
    PERFORM @extschema@.sync_opportunity_stage(deals);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.stage_event_after_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deals bigint[] := ARRAY(SELECT DISTINCT opportunity_id FROM old_events);
BEGIN
    PERFORM @extschema@.lock_deals(deals);
    PERFORM @extschema@.sync_opportunity_stage(deals);
    RETURN NULL;
END;
$$;

-- The way a CRM moves a deal: records the stage event (the creation event
-- for a deal with no history yet) and, when an amount is given and the
-- event is the deal's newest, the deal's new amount as of the move.
CREATE OR REPLACE FUNCTION @extschema@.move_stage(opportunity_id bigint, stage_id bigint,
                                       at timestamptz DEFAULT now(),
                                       amount numeric DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deal @extschema@.opportunity;
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

    INSERT INTO @extschema@.stage_event (opportunity_id, stage_id, entered_at, amount, rep_id)
    VALUES (deal.opportunity_id, move_stage.stage_id, move_stage.at,
            coalesce(move_stage.amount, deal.amount), deal.owner_id)
    RETURNING stage_event_id INTO new_id;

    IF move_stage.amount IS NOT NULL AND move_stage.amount <> deal.amount
       AND NOT EXISTS (SELECT 1 FROM @extschema@.stage_event e
                        WHERE e.opportunity_id = deal.opportunity_id
                          AND (e.entered_at, e.stage_event_id) > (move_stage.at, new_id))
    THEN
        INSERT INTO @extschema@.opportunity_history
               (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id)
        VALUES (deal.opportunity_id, move_stage.at, move_stage.amount,
                deal.expected_close, deal.forecast_category, deal.owner_id);
        UPDATE @extschema@.opportunity o
           SET amount = move_stage.amount
         WHERE o.opportunity_id = deal.opportunity_id;
    END IF;
    RETURN new_id;
END;
$$;

COMMENT ON FUNCTION @extschema@.move_stage(bigint, bigint, timestamptz, numeric) IS
    'Moves a deal into a stage at a time (default now), optionally with its new amount; returns the new stage_event_id. Stage gates apply.';

-- A deal always says what its newest snapshot says, and when it was taken
-- (snapshot_at).  Changes made through
-- the deal leave their snapshot at now(); history written directly (a
-- loader's inserts, a replaced snapshot, a correction or a deletion) moves
-- the deal to its newest snapshot here.  KPIs rely on this: a deal with no
-- snapshot after an instant is its own row at that instant.
CREATE OR REPLACE FUNCTION @extschema@.opportunity_history_after_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- statement triggers fire for empty statements too: the update below
    -- would fire the deal's update trigger, whose empty insert fires this
    IF NOT EXISTS (SELECT 1 FROM changed_snapshots) THEN
        RETURN NULL;
    END IF;
    PERFORM @extschema@.lock_deals(ARRAY(SELECT DISTINCT opportunity_id FROM changed_snapshots));
    UPDATE @extschema@.opportunity o
       SET amount = n.amount, expected_close = n.expected_close,
           forecast_category = n.forecast_category, owner_id = n.owner_id, snapshot_at = n.changed_at
      FROM (SELECT DISTINCT ON (h.opportunity_id)
                   h.opportunity_id, h.changed_at, h.amount, h.expected_close, h.forecast_category, h.owner_id
              FROM @extschema@.opportunity_history h
             WHERE h.opportunity_id IN (SELECT opportunity_id FROM changed_snapshots)
             ORDER BY h.opportunity_id, h.changed_at DESC) n
     WHERE o.opportunity_id = n.opportunity_id
       AND (o.amount, o.expected_close, o.forecast_category, o.owner_id, o.snapshot_at)
           IS DISTINCT FROM (n.amount, n.expected_close, n.forecast_category, n.owner_id, n.changed_at);
    -- a deal whose last snapshot was deleted keeps its fields, but has no
    -- snapshot time
    UPDATE @extschema@.opportunity o
       SET snapshot_at = NULL
     WHERE o.opportunity_id IN (SELECT opportunity_id FROM changed_snapshots)
       AND o.snapshot_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.opportunity_history h
                        WHERE h.opportunity_id = o.opportunity_id);
    RETURN NULL;
END;
$$;


-- check_consistency(): rows that break a rule the triggers and foreign keys keep.
-- Consistency of the stored data, for DBAs: after a load with triggers off,
-- a restore with --disable-triggers, an upgrade or a crash-recovery drill,
-- check_consistency() lists every row that breaks a rule the triggers and
-- foreign keys keep.  On healthy data it returns no row.

CREATE OR REPLACE FUNCTION @extschema@.check_consistency()
RETURNS TABLE (rule text, table_name text, row_key text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '256MB'
AS $$
    -- the deal against its newest stage event
    WITH newest_event AS (
        SELECT DISTINCT ON (e.opportunity_id)
               e.opportunity_id, e.stage_id, e.entered_at, s.kind
          FROM @extschema@.stage_event e
          LEFT JOIN @extschema@.stage s ON s.stage_id OPERATOR(pg_catalog.=) e.stage_id
         ORDER BY e.opportunity_id, e.entered_at DESC, e.stage_event_id DESC
    ), newest_snapshot AS (
        SELECT DISTINCT ON (h.opportunity_id)
               h.opportunity_id, h.changed_at, h.amount, h.expected_close, h.forecast_category, h.owner_id
          FROM @extschema@.opportunity_history h
         ORDER BY h.opportunity_id, h.changed_at DESC
    )
    SELECT 'stage_out_of_sync', 'opportunity', o.opportunity_id::text,
           format('the row says stage %s, closed_at %s, stage_entered_at %s; the newest stage event says stage %s, closed_at %s, entered at %s',
                  coalesce(o.stage_id::text, 'null'), coalesce(o.closed_at::text, 'null'),
                  coalesce(o.stage_entered_at::text, 'null'), n.stage_id,
                  coalesce(CASE WHEN n.kind OPERATOR(pg_catalog.<>) 'open' THEN n.entered_at END::text, 'null'),
                  n.entered_at)
      FROM @extschema@.opportunity o
      JOIN newest_event n ON n.opportunity_id OPERATOR(pg_catalog.=) o.opportunity_id
     WHERE o.stage_id IS DISTINCT FROM n.stage_id
        OR o.stage_entered_at IS DISTINCT FROM n.entered_at
        OR o.closed_at IS DISTINCT FROM CASE WHEN n.kind OPERATOR(pg_catalog.<>) 'open' THEN n.entered_at END
    UNION ALL
    -- a deal without events: no stage entry time, and closed exactly when its stage is terminal
    SELECT 'stage_out_of_sync', 'opportunity', o.opportunity_id::text,
           format('no stage event, but the row says stage %s (%s), closed_at %s, stage_entered_at %s',
                  coalesce(o.stage_id::text, 'null'), coalesce(s.kind, 'no stage'),
                  coalesce(o.closed_at::text, 'null'), coalesce(o.stage_entered_at::text, 'null'))
      FROM @extschema@.opportunity o
      LEFT JOIN @extschema@.stage s ON s.stage_id OPERATOR(pg_catalog.=) o.stage_id
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.stage_event e
                        WHERE e.opportunity_id OPERATOR(pg_catalog.=) o.opportunity_id)
       AND (o.stage_entered_at IS NOT NULL
            OR (o.closed_at IS NOT NULL) IS DISTINCT FROM (s.kind IS NOT NULL AND s.kind OPERATOR(pg_catalog.<>) 'open'))
    UNION ALL
    -- the deal against its newest snapshot
    SELECT 'snapshot_out_of_sync', 'opportunity', o.opportunity_id::text,
           format('the row says amount %s, expected_close %s, forecast_category %s, owner %s, snapshot_at %s; the newest snapshot (%s) says %s, %s, %s, %s',
                  o.amount, coalesce(o.expected_close::text, 'null'), coalesce(o.forecast_category, 'null'),
                  coalesce(o.owner_id::text, 'null'), coalesce(o.snapshot_at::text, 'null'),
                  h.changed_at, coalesce(h.amount::text, 'null'), coalesce(h.expected_close::text, 'null'),
                  coalesce(h.forecast_category, 'null'), coalesce(h.owner_id::text, 'null'))
      FROM @extschema@.opportunity o
      JOIN newest_snapshot h ON h.opportunity_id OPERATOR(pg_catalog.=) o.opportunity_id
     WHERE (o.amount, o.expected_close, o.forecast_category, o.owner_id, o.snapshot_at)
           IS DISTINCT FROM (h.amount, h.expected_close, h.forecast_category, h.owner_id, h.changed_at)
    UNION ALL
    SELECT 'snapshot_out_of_sync', 'opportunity', o.opportunity_id::text,
           format('no snapshot, but the row says snapshot_at %s', o.snapshot_at)
      FROM @extschema@.opportunity o
     WHERE o.snapshot_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.opportunity_history h
                        WHERE h.opportunity_id OPERATOR(pg_catalog.=) o.opportunity_id)
    UNION ALL
    -- stages and events inside the deal's own pipeline
    SELECT 'stage_outside_pipeline', 'opportunity', o.opportunity_id::text,
           format('stage %s is not a stage of pipeline %s', o.stage_id, o.pipeline_id)
      FROM @extschema@.opportunity o
     WHERE o.stage_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.stage s
                        WHERE s.stage_id OPERATOR(pg_catalog.=) o.stage_id
                          AND s.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id)
    UNION ALL
    SELECT 'stage_outside_pipeline', 'stage_event', e.stage_event_id::text,
           format('stage %s of opportunity %s is not a stage of the deal''s pipeline %s',
                  e.stage_id, e.opportunity_id, o.pipeline_id)
      FROM @extschema@.stage_event e
      JOIN @extschema@.opportunity o ON o.opportunity_id OPERATOR(pg_catalog.=) e.opportunity_id
      LEFT JOIN @extschema@.stage s ON s.stage_id OPERATOR(pg_catalog.=) e.stage_id
     WHERE s.pipeline_id IS DISTINCT FROM o.pipeline_id
    UNION ALL
    -- rows whose parent is gone (possible only with triggers or foreign keys off)
    SELECT 'orphan', x.table_name, x.row_key, x.detail
      FROM (SELECT 'stage_event' AS table_name, e.stage_event_id::text AS row_key,
                   format('opportunity %s does not exist', e.opportunity_id) AS detail
              FROM @extschema@.stage_event e
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opportunity o
                                WHERE o.opportunity_id OPERATOR(pg_catalog.=) e.opportunity_id)
            UNION ALL
            SELECT 'opportunity_history', format('(%s, %s)', h.opportunity_id, h.changed_at),
                   format('opportunity %s does not exist', h.opportunity_id)
              FROM @extschema@.opportunity_history h
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opportunity o
                                WHERE o.opportunity_id OPERATOR(pg_catalog.=) h.opportunity_id)
            UNION ALL
            SELECT 'milestone_event', format('(%s, %s)', m.opportunity_id, m.milestone_id),
                   format('opportunity %s or milestone %s does not exist', m.opportunity_id, m.milestone_id)
              FROM @extschema@.milestone_event m
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opportunity o
                                WHERE o.opportunity_id OPERATOR(pg_catalog.=) m.opportunity_id)
                OR NOT EXISTS (SELECT 1 FROM @extschema@.milestone ms
                                WHERE ms.milestone_id OPERATOR(pg_catalog.=) m.milestone_id)
            UNION ALL
            SELECT 'opportunity_contact', format('(%s, %s)', c.opportunity_id, c.contact_id),
                   format('opportunity %s or contact %s does not exist', c.opportunity_id, c.contact_id)
              FROM @extschema@.opportunity_contact c
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opportunity o
                                WHERE o.opportunity_id OPERATOR(pg_catalog.=) c.opportunity_id)
                OR NOT EXISTS (SELECT 1 FROM @extschema@.contact ct
                                WHERE ct.contact_id OPERATOR(pg_catalog.=) c.contact_id)
            UNION ALL
            SELECT 'activity', a.activity_id::text,
                   format('rep %s or opportunity %s does not exist', a.rep_id, a.opportunity_id)
              FROM @extschema@.activity a
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.rep r WHERE r.rep_id OPERATOR(pg_catalog.=) a.rep_id)
                OR (a.opportunity_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM @extschema@.opportunity o
                                     WHERE o.opportunity_id OPERATOR(pg_catalog.=) a.opportunity_id))
            UNION ALL
            SELECT 'utterance', format('(%s, %s)', u.activity_id, u.seq),
                   format('activity %s does not exist', u.activity_id)
              FROM @extschema@.utterance u
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.activity a
                                WHERE a.activity_id OPERATOR(pg_catalog.=) u.activity_id)
            UNION ALL
            SELECT 'opportunity', o.opportunity_id::text,
                   format('pipeline %s, account %s or owner %s does not exist', o.pipeline_id, o.account_id, o.owner_id)
              FROM @extschema@.opportunity o
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.pipeline p WHERE p.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id)
                OR NOT EXISTS (SELECT 1 FROM @extschema@.account a WHERE a.account_id OPERATOR(pg_catalog.=) o.account_id)
                OR (o.owner_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM @extschema@.rep r WHERE r.rep_id OPERATOR(pg_catalog.=) o.owner_id))
            UNION ALL
            SELECT 'quota', format('(%s, %s)', q.rep_id, q.period_start), format('rep %s does not exist', q.rep_id)
              FROM @extschema@.quota q
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.rep r WHERE r.rep_id OPERATOR(pg_catalog.=) q.rep_id)
            UNION ALL
            SELECT 'forecast_submission', format('(%s, %s, %s, %s)', f.rep_id, f.period_start, f.category, f.submitted_at),
                   format('rep %s does not exist', f.rep_id)
              FROM @extschema@.forecast_submission f
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.rep r WHERE r.rep_id OPERATOR(pg_catalog.=) f.rep_id)
            UNION ALL
            SELECT 'collection', c.collection_id::text, format('opportunity %s does not exist', c.opportunity_id)
              FROM @extschema@.collection c
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opportunity o
                                WHERE o.opportunity_id OPERATOR(pg_catalog.=) c.opportunity_id)) x
$$;

COMMENT ON FUNCTION @extschema@.check_consistency() IS
    'Rows that break a rule the triggers and foreign keys keep: deals that disagree with their newest stage event or snapshot (stage_out_of_sync, snapshot_out_of_sync), stages outside the deal''s pipeline, and rows whose parent is gone (orphan). No row on healthy data.';


-- The aggregates' support functions and the types' I/O functions are no longer
-- executable by PUBLIC: nobody needs to call them by name.
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
                 WHERE t.typnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace) s
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) s.fn
         WHERE p.pronamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END;
$$;

-- Every view runs with the privileges of its caller, so that row-level
-- security and table privileges apply to what a view reads.
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid FROM pg_catalog.pg_class c
              WHERE c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
                AND c.relkind OPERATOR(pg_catalog.=) 'v'
    LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END;
$$;
