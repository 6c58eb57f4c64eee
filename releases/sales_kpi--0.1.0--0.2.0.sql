-- sales_kpi 0.1.0 -> 0.2.0.  What changed is listed in CHANGELOG.md; the
-- upgrade test (test/upgrade.sh) checks that a database updated with this
-- script has the same catalog as a fresh 0.2.0 install, every row and
-- stored summary intact and the same KPI results.

\echo Use "ALTER EXTENSION sales_kpi UPDATE TO '0.2.0'" to load this file. \quit

-- The engine's helpers and the trigger functions move to a schema of their
-- own (see 00_header.sql); triggers follow their functions by OID.
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
ALTER FUNCTION @extschema@.check_health_rep_args(dimension text, as_of timestamp with time zone, grain text, from_at timestamp with time zone, to_at timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.check_kpi_args(as_of timestamp with time zone, dimension text, grain text, lookback interval, horizon interval) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.check_opportunity_stage(opportunity_ids bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.check_stage_event_pipeline(stage_event_ids bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.closed_by_owner(p_start timestamp with time zone, p_end timestamp with time zone, p_as_of timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.deal_id_midpoint() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.forecast_accuracy_bookings(lo timestamp with time zone, hi timestamp with time zone, as_of timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.forecast_accuracy_rows(p_from timestamp with time zone, p_to timestamp with time zone, p_grain text, p_dimension text, p_as_of timestamp with time zone, p_cutoff interval) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.funnel_check_args(as_of timestamp with time zone, dimension text, variant text, grain text, weeks integer, horizon interval) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.funnel_stage_ranks() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.gate_move_violations(as_of timestamp with time zone, from_at timestamp with time zone, to_at timestamp with time zone, gate_from bigint[], gate_to bigint[], gate_milestone bigint[], gate_label text[], first_id bigint, last_id bigint) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.gate_violation_rows(from_at timestamp with time zone, to_at timestamp with time zone, dim text, as_of timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.grain_length(grain text) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.local_period_start(local timestamp without time zone, grain text) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.opportunity_after_insert() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.opportunity_after_update() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.opportunity_history_after_change() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.opportunity_history_before_insert() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.outcome_dimension(dimension text, extra text[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.pipeline_flow_args(from_at timestamp with time zone, to_at timestamp with time zone, mode text, dimension text, close_before date, OUT from_at_r timestamp with time zone, OUT to_at_r timestamp with time zone, OUT close_before_r date) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.pipeline_flow_rows(p_from_at timestamp with time zone, p_to_at timestamp with time zone, p_mode text, p_dimension text, p_team text, p_close_before date, p_totals boolean) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.pipeline_flow_states(from_at timestamp with time zone, to_at timestamp with time zone, team text) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.pipeline_value_check_args(as_of timestamp with time zone, dimension text, weighting text, lookback interval, min_sample integer) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.pipeline_value_period_parts(period_start timestamp with time zone, period_end timestamp with time zone, dimension text, as_of timestamp with time zone, lookback interval, min_sample integer, with_milestone boolean, with_historical boolean) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.rep_dimension(dimension text, reason text) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.rep_timeline_activity(lo timestamp with time zone, hi timestamp with time zone, as_of timestamp with time zone, starts timestamp with time zone[], dim text) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.rep_timeline_closed(lo timestamp with time zone, hi timestamp with time zone, as_of timestamp with time zone, starts timestamp with time zone[], dim text) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.rep_timeline_rows(from_at timestamp with time zone, to_at timestamp with time zone, grain text, dim text, as_of timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.resolve_period(requested_start timestamp with time zone, requested_end timestamp with time zone, as_of timestamp with time zone, OUT period_start timestamp with time zone, OUT period_end timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.resolve_series(from_at timestamp with time zone, to_at timestamp with time zone, grain text, as_of timestamp with time zone, OUT period_start timestamp with time zone, OUT period_end timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_event_after_delete() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_event_after_insert() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_event_after_update() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_event_walk(as_of timestamp with time zone, from_at timestamp with time zone, to_at timestamp with time zone, pair_from bigint[], pair_to bigint[], suspects boolean, first_id bigint, last_id bigint) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_gate_violations(new_event_ids bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_history_check(as_of timestamp with time zone, pair_from bigint[], pair_to bigint[], terminal_stages bigint[], first_id bigint, last_id bigint) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_ordinal() SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_stay_totals(as_of timestamp with time zone, opportunity_ids bigint[], stages bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_stays(as_of timestamp with time zone, opportunity_ids bigint[], stages bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_time_deals(as_of timestamp with time zone, opportunity_ids bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_time_durations_rows(at_time timestamp with time zone, dim text, ids bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_time_norms_rows(at_time timestamp with time zone, dim text, lb interval) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_time_open_deals(at_time timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_time_stalled_rows(at_time timestamp with time zone, dim text, lb interval) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.stage_time_won_deals(lo timestamp with time zone, hi timestamp with time zone) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.sync_opportunity_stage(opportunity_ids bigint[]) SET SCHEMA sales_kpi_internal;
ALTER FUNCTION @extschema@.trailing_months(as_of timestamp with time zone, n integer) SET SCHEMA sales_kpi_internal;

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

-- Instants a KPI reads at or from must be finite, and a series of periods
-- is bounded (a series from -infinity never ended).
-- An instant a KPI reads at or from must be finite: infinity has no period,
-- no age and no pipeline, and a series from -infinity never ends.
CREATE OR REPLACE FUNCTION sales_kpi_internal.finite_instant(value timestamptz, argument text)
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

COMMENT ON FUNCTION sales_kpi_internal.finite_instant(timestamptz, text) IS
    'Internal: the value when it is finite (or null), else a 22023 naming the argument.';

-- An instant a KPI cannot do without (as_of, at): NULL is refused too.
CREATE FUNCTION sales_kpi_internal.required_instant(value timestamptz, argument text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be null', argument USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN sales_kpi_internal.finite_instant(value, argument);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.required_instant(timestamptz, text) IS
    'Internal: the value when it is finite, else a 22004 (null) or 22023 (infinite) naming the argument.';

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
    PERFORM sales_kpi_internal.finite_instant(from_at, 'from_at'), sales_kpi_internal.finite_instant(to_at, 'to_at');
    IF to_at <= from_at THEN
        RETURN;
    END IF;
    -- raises the error for an unknown grain
    first_start := sales_kpi_internal.local_period_start(from_at AT TIME ZONE tz, grain);
    last_instant := to_at AT TIME ZONE tz - interval '1 microsecond';
    step := sales_kpi_internal.grain_length(grain);
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
CREATE OR REPLACE FUNCTION sales_kpi_internal.resolve_period(requested_start timestamptz, requested_end timestamptz,
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
    PERFORM sales_kpi_internal.finite_instant(as_of, 'as_of'),
            sales_kpi_internal.finite_instant(requested_start, 'period_start'),
            sales_kpi_internal.finite_instant(requested_end, 'period_end');
    period_start := coalesce(requested_start, @extschema@.period_start(as_of, 'quarter'));
    period_end := coalesce(requested_end, @extschema@.period_end(period_start, 'quarter'));
    IF period_end <= period_start THEN
        RAISE EXCEPTION 'argument "period_end" (%) must be later than "period_start" (%)', period_end, period_start
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.resolve_period(timestamptz, timestamptz, timestamptz) IS
    'Internal: the [period_start, period_end) a KPI reports on; the fiscal quarter holding as_of where they are null.';

-- The series of periods a KPI over time reports on: from_at defaults to the
-- start of the period of the grain a year before as_of, to_at to the end of
-- the period holding as_of.
CREATE OR REPLACE FUNCTION sales_kpi_internal.resolve_series(from_at timestamptz, to_at timestamptz, grain text,
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
    PERFORM sales_kpi_internal.finite_instant(as_of, 'as_of'),
            sales_kpi_internal.finite_instant(from_at, 'from_at'),
            sales_kpi_internal.finite_instant(to_at, 'to_at');
    from_at := coalesce(from_at, @extschema@.period_start(as_of - interval '1 year', grain));
    to_at := coalesce(to_at, @extschema@.period_end(as_of, grain));
    IF to_at <= from_at THEN
        RAISE EXCEPTION 'argument "to_at" (%) must be later than "from_at" (%)', to_at, from_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY SELECT p.period_start, p.period_end FROM @extschema@.periods(from_at, to_at, grain) p;
END;
$$;

COMMENT ON FUNCTION sales_kpi_internal.resolve_series(timestamptz, timestamptz, text, timestamptz) IS
    'Internal: the periods of the grain a KPI over time reports on; from a year before as_of to the period holding it where from_at and to_at are null.';

-- Argument checks shared by the KPI functions.  Every argument defaults to
-- a value that passes, so a caller names only the ones it takes; a NULL
-- passed is refused.  Returns true, so that a caller in SQL can keep the
-- check in an expression whose value it reads.
CREATE OR REPLACE FUNCTION sales_kpi_internal.check_kpi_args(as_of timestamptz DEFAULT 'epoch',
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
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    -- raises the shared errors for a null or unknown dimension
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    -- the grains are those local_period_start knows; it raises the error
    PERFORM sales_kpi_internal.local_period_start(timestamp '2000-01-01', coalesce(grain, 'null'));
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
COMMENT ON FUNCTION sales_kpi_internal.check_kpi_args(timestamptz, text, text, interval, interval) IS
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
CREATE OR REPLACE FUNCTION sales_kpi_internal.lock_deals(opportunity_ids bigint[])
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

CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_event_after_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'stage_event_after_insert'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.stage_event_after_insert() IS
    'Trigger: keeps the deals of inserted stage events in step with their newest event (the common case in C; every other case in stage_event_after_insert_general()).';

CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_event_after_update()
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

CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_event_after_delete()
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

-- The way a CRM moves a deal: records the stage event (the creation event
-- for a deal with no history yet) and, when an amount is given and the
-- event is the deal's newest, the deal's new amount as of the move.
CREATE OR REPLACE FUNCTION @extschema@.move_stage(opportunity_id bigint, stage_id bigint,
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

COMMENT ON FUNCTION @extschema@.move_stage(bigint, bigint, timestamptz, numeric) IS
    'Moves a deal into a stage at a time (default now), optionally with its new amount; returns the new stage_event_id. Stage gates apply.';

-- A deal always says what its newest snapshot says, and when it was taken
-- (snapshot_at).  Changes made through
-- the deal leave their snapshot at now(); history written directly (a
-- loader's inserts, a replaced snapshot, a correction or a deletion) moves
-- the deal to its newest snapshot here.  KPIs rely on this: a deal with no
-- snapshot after an instant is its own row at that instant.
CREATE OR REPLACE FUNCTION sales_kpi_internal.opportunity_history_after_change()
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
                OR (o.account_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM @extschema@.account a WHERE a.account_id OPERATOR(pg_catalog.=) o.account_id))
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

-- Row-level security: who sees whom (rep_visibility, kept by triggers on
-- rep), the setting a dump keeps (row_security) and the functions that turn
-- it on and off.
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

SELECT @extschema@.refresh_rep_visibility();

-- load_demo: the tables it fills are those a dump keeps, less the
-- price terms and the row-security setting; it rebuilds rep_visibility.
-- Demo data: load_demo() fills every table with three years of sales
-- history that looks like a real CRM's, for examples, tests and benchmarks.
--
-- Reproducible: every random draw is demo_random(seed, key), the key naming
-- the entity and the draw ((domain << 40) + entity * stride + salt), so the
-- same (n_opportunities, seed, until) gives the same rows, ids included,
-- whatever plan the executor picks.  Times are placed relative to until
-- (midnight UTC), never to now() or the session time zone; inside the
-- generator they are UTC timestamps without time zone.
--
-- Set-based: each step is one statement over temporary tables (no per-row
-- loops); most of the time goes into the tables' own indexes, foreign keys
-- and triggers.  It loads the way a restore does, which the triggers are
-- built for: deals go in with their current values (stage, close, amount,
-- owner...), then all stage events in one statement (the statement trigger
-- finds every deal already agreeing with its newest event, and a deal's
-- first events are history, not gated moves), then the whole forecast-field
-- history, whose creation rows replace the snapshots the insert trigger took.
--
-- Key domains: 1 fx, 2 team, 3 rep, 4 account, 5 contact, 6 deal, 7 stage
-- path, 8 history, 9 lead, 10 deal activity, 11 lead activity, 12, 13 and
-- 19 milestone, 14 quota and forecast, 15 recurring revenue, 16 collection,
-- 17 deal contacts, 18 transcript, 20 milestone activity.

CREATE OR REPLACE FUNCTION @extschema@.load_demo(n_opportunities integer DEFAULT 10000,
                                      seed integer DEFAULT 1,
                                      until date DEFAULT current_date,
                                      replace boolean DEFAULT false)
RETURNS TABLE (table_name text, row_count bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the generator sorts and hashes a few million rows in memory; its row
-- estimates are poor (generate_series, CTEs), and compiling every statement
-- would cost more than running it
SET work_mem = '256MB'
SET jit = off
AS $$
DECLARE
    v_end          timestamp;   -- until at midnight UTC: nothing happens after it
    v_start        timestamp;   -- three years earlier: the first deals
    v_first        date;
    v_days         integer;
    v_month        date;        -- first day of until's month
    v_q0           date;        -- start of the fiscal quarter holding v_first
    v_growth       float8 := ln(2.0);  -- pipeline doubles over the three years
    v_n_acc        integer;
    v_n_ae         integer;
    v_n_team       integer;
    v_n_sdr        integer;
    v_base         text := @extschema@.base_currency();
    v_fy_month     integer := @extschema@.fiscal_year_start_month();
    v_phase        integer;
    v_busy         text;
    v_bad          text;
    v_team_bounds  numeric[];
    v_team_total   numeric;
    v_acc_bounds   float8[];
    v_acc_total    float8;
    v_seq          regclass;
    v_bulk         boolean;     -- load without row-by-row triggers (superuser only)
    v_srr          text;        -- session_replication_role to restore
    v_n            bigint;      -- rows of the last insert (progress)
    v_t            timestamptz := clock_timestamp();  -- end of the last phase
    v_con          record;
    v_tables       regclass[];
    v_has          boolean;
    v_col          name;
    v_tab          regclass;
    -- hour-of-day distributions (local time): lower bounds of 24 buckets
    v_h_call       float8[];
    v_h_call_top   float8[];
    v_h_work       float8[];
    v_h_mail       float8[];

    v_first_en text[] := ARRAY['James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael',
        'Linda', 'David', 'Elizabeth', 'William', 'Susan', 'Richard', 'Jessica', 'Joseph', 'Sarah',
        'Thomas', 'Karen', 'Carlos', 'Maria', 'Daniel', 'Emma', 'Lukas', 'Sophie', 'Oliver', 'Amelia',
        'Hiroshi', 'Yuki', 'Priya', 'Arjun', 'Lucas', 'Ana', 'Mateo', 'Camila', 'Noah', 'Olivia',
        'Ethan', 'Chloe', 'Ahmed', 'Fatima'];
    v_last_en text[] := ARRAY['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller',
        'Davis', 'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Wilson', 'Anderson', 'Taylor',
        'Thomas', 'Moore', 'Jackson', 'Martin', 'Lee', 'Thompson', 'White', 'Harris', 'Clark',
        'Lewis', 'Walker', 'Young', 'Allen', 'King', 'Wright', 'Schmidt', 'Müller', 'Dubois',
        'Rossi', 'Tanaka', 'Sato', 'Kim', 'Patel', 'Silva', 'Okafor'];
    v_sur_cn text[] := ARRAY['王', '李', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙',
        '马', '朱', '胡', '郭', '何', '林', '罗', '高'];
    v_given_cn text[] := ARRAY['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳',
        '杰', '娟', '涛', '明', '超', '秀英', '霞', '平', '刚', '桂英', '建华', '晓东'];

    v_industry text[] := ARRAY['Software', 'Manufacturing', 'Financial Services', 'Healthcare',
        'Retail', 'Education', 'Energy', 'Logistics'];
    v_industry_cn text[] := ARRAY['软件', '制造', '金融', '医疗', '零售', '教育', '能源', '物流'];
    v_acc_prefix text[] := ARRAY['Acme', 'Northwind', 'Blue Harbor', 'Summit', 'Redwood',
        'Silverline', 'Brightpath', 'Ironclad', 'Evergreen', 'Lakeside', 'Pioneer', 'Crescent',
        'Granite', 'Horizon', 'Keystone', 'Maple', 'Orion', 'Pinnacle', 'Quantum', 'Riverbend',
        'Sterling', 'Tidewater', 'Vertex', 'Westfield', 'Atlas', 'Beacon', 'Cobalt', 'Falcon',
        'Harbor Point', 'Juniper'];
    -- five words per industry, in v_industry order
    v_acc_word text[] := ARRAY['Software', 'Systems', 'Labs', 'Technologies', 'Digital',
        'Manufacturing', 'Industries', 'Components', 'Machinery', 'Fabrication',
        'Capital', 'Financial', 'Bank', 'Insurance', 'Partners',
        'Health', 'Medical', 'Clinics', 'Pharma', 'Care',
        'Retail', 'Stores', 'Outfitters', 'Market', 'Brands',
        'Academy', 'University', 'Learning', 'Schools', 'Education',
        'Energy', 'Power', 'Solar', 'Utilities', 'Renewables',
        'Logistics', 'Freight', 'Shipping', 'Transport', 'Supply Chain'];
    v_city_cn text[] := ARRAY['上海', '北京', '深圳', '广州', '杭州', '成都', '苏州', '南京', '武汉', '天津'];
    v_word_cn text[] := ARRAY['华信', '恒达', '新元', '中科', '博远', '瑞丰', '天成', '东方', '金桥', '汇通'];
    v_legal_na text[] := ARRAY['', ' Inc.', ' LLC', ' Corp.'];
    v_legal_emea text[] := ARRAY['', ' Ltd', ' GmbH', ' SA', ' BV', ' plc'];
    v_legal_apac text[] := ARRAY['', ' Pty Ltd', ' KK', ' Pte Ltd'];
    v_legal_latam text[] := ARRAY['', ' SA', ' Ltda', ' SA de CV'];
    v_product text[] := ARRAY['Sales Cloud', 'Forecasting', 'Conversation Intelligence',
        'Revenue Analytics', 'Platform', 'Enablement', 'Data Hub'];
    v_competitor text[] := ARRAY['Salesforce', 'HubSpot', 'Microsoft Dynamics', 'Zoho', 'Pipedrive',
        'In-house build', 'Salesforce', 'HubSpot'];
    v_competitor_cn text[] := ARRAY['Salesforce', '销售易', '纷享销客', 'Microsoft Dynamics', '销售易'];
    v_lost_reason text[] := ARRAY['Price', 'No decision', 'Timing', 'Budget', 'Product fit',
        'Went dark', 'Champion left', 'Price', 'No decision', NULL];
    v_source text[] := ARRAY['Inbound', 'Outbound', 'Referral', 'Partner', 'Event', 'Paid Search'];

    -- contact titles, five per role in the order decision_maker, champion,
    -- influencer, user, other (four each in Chinese)
    v_role text[] := ARRAY['decision_maker', 'champion', 'influencer', 'user', 'other'];
    v_title text[] := ARRAY['CEO', 'CFO', 'CIO', 'VP Sales', 'COO',
        'Sales Operations Manager', 'Director of Sales', 'IT Director', 'Head of Revenue Operations', 'Operations Manager',
        'Procurement Manager', 'Solutions Architect', 'Finance Manager', 'Security Officer', 'Legal Counsel',
        'Account Executive', 'Sales Manager', 'Business Analyst', 'Customer Success Manager', 'Team Lead',
        'Executive Assistant', 'Office Manager', 'Intern', 'Consultant', 'Assistant'];
    v_title_cn text[] := ARRAY['总经理', '财务总监', '首席信息官', '销售副总裁',
        '销售运营经理', '销售总监', 'IT总监', '运营经理',
        '采购经理', '解决方案架构师', '财务经理', '法务',
        '销售经理', '业务分析师', '客户经理', '组长',
        '助理', '行政主管', '实习生', '顾问'];

    -- conversation turns; only the *_price lines contain price_term words
    v_rep_q text[] := ARRAY['What does your sales process look like today?',
        'How many reps are on the team right now?',
        'Who else will be involved in the decision?',
        'What happens if nothing changes this quarter?',
        'How do you measure success for this project?',
        'When would you need this up and running?',
        'Can you walk me through how a deal moves from first call to close?',
        'What made you look at this now?',
        'How do you build the forecast at the moment?',
        'Does that match what you are seeing?',
        'What would a good outcome look like for you?',
        'Which reports does your leadership ask for every week?',
        'How are new reps coached today?',
        'What tools have you tried before?'];
    v_rep_s text[] := ARRAY['Thanks for making the time today.',
        'Let me share my screen.',
        'That makes sense.',
        'We hear that a lot from teams your size.',
        'I will send a short summary after the call.',
        'Most of our customers start with one team and grow from there.',
        'Here is how the pipeline view would look for you.',
        'Got it, that is really helpful.',
        'I will bring our solutions engineer to the next meeting.',
        'Let us agree on the next steps.',
        'Our customers usually see the first results within a month.',
        'I can set up a trial workspace this week.'];
    v_rep_price text[] := ARRAY['On pricing, most teams your size start with the professional plan.',
        'I can send you a quote by Friday.',
        'The price depends on the number of seats.',
        'With a two-year term we can offer a discount.',
        'What budget have you set aside for this?',
        'The license fee is billed annually, per seat.',
        'Let me walk you through the pricing options.',
        'Would a quote for fifty users help your internal review?'];
    v_cus text[] := ARRAY['We mostly track deals in spreadsheets right now.',
        'The team is about twenty people.',
        'Our VP wants better visibility into the pipeline.',
        'Honestly, forecasting is painful every quarter.',
        'I need to check with my manager first.',
        'We looked at another vendor last year.',
        'That sounds useful.',
        'Can you send me the slides?',
        'Timing is the main concern for us.',
        'We are also talking to other vendors.',
        'Yes.', 'Right.', 'Okay, makes sense.',
        'Our reps spend too much time on data entry.',
        'Integration with our ERP is a must.',
        'Let me think about it and get back to you.'];
    v_cus_price text[] := ARRAY['What would the price be for a team our size?',
        'Our budget for this year is already allocated.',
        'Is there a discount if we sign this quarter?',
        'Can you send over a quote?'];
    v_other text[] := ARRAY['Sorry, I am joining late.', 'Can everyone hear me?',
        'I have to drop off in five minutes.'];
    v_rep_q_cn text[] := ARRAY['你们现在的销售流程是怎样的？',
        '团队目前有多少销售？',
        '还有哪些人会参与决策？',
        '如果这个季度不做改变，会有什么影响？',
        '你们怎么衡量这个项目是否成功？',
        '希望什么时候上线？',
        '现在是怎么做销售预测的？',
        '这和您看到的情况一致吗？',
        '您理想中的结果是什么样的？',
        '新人现在是怎么培训的？'];
    v_rep_s_cn text[] := ARRAY['感谢您抽出时间。',
        '我来共享一下屏幕。',
        '明白了。',
        '很多同规模的团队都遇到过这个问题。',
        '会后我把纪要发给您。',
        '我们可以先从一个团队开始试点。',
        '这是您的销售漏斗在系统里的样子。',
        '好的，这个信息很有帮助。',
        '下次我请售前工程师一起参加。',
        '我们确认一下下一步。'];
    v_rep_price_cn text[] := ARRAY['关于价格，同规模的团队一般选择专业版。',
        '我周五前把报价发给您。',
        '签两年合同可以有折扣。',
        '您这边今年的预算大概是多少？',
        '费用按账号数按年收取。',
        '我给您介绍一下几种价格方案。'];
    v_cus_cn text[] := ARRAY['我们现在主要用表格管理商机。',
        '团队大概二十个人。',
        '领导希望更清楚地看到销售漏斗。',
        '每个季度做预测都很头疼。',
        '我需要先和领导确认一下。',
        '去年我们看过另一家供应商。',
        '听起来不错。',
        '能把资料发给我吗？',
        '好的。', '对。',
        '时间是我们最关心的问题。',
        '销售花太多时间录数据了。'];
    v_cus_price_cn text[] := ARRAY['这个价格大概是多少？',
        '今年的预算已经分配完了。',
        '这个季度签的话有折扣吗？',
        '多少钱一个账号？'];
    v_other_cn text[] := ARRAY['抱歉，我来晚了。', '大家能听到吗？'];
BEGIN
    -- Arguments first, then the currency table: nothing is touched before
    -- the load is known to be possible.
    IF n_opportunities IS NULL OR n_opportunities NOT BETWEEN 1 AND 10000000 THEN
        RAISE EXCEPTION 'n_opportunities must be between 1 and 10000000, got %',
                coalesce(n_opportunities::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF seed IS NULL THEN
        RAISE EXCEPTION 'seed must not be null, got NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF until IS NULL OR NOT until BETWEEN DATE '1900-01-01' AND DATE '9999-12-31' THEN
        RAISE EXCEPTION 'until must be a date between 1900-01-01 and 9999-12-31, got %',
                coalesce(until::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF replace IS NULL THEN
        RAISE EXCEPTION 'replace must be true or false, got NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Rough value in USD of the currencies the demo uses (first five) and of
    -- the usual base currencies, with the monthly volatility of the walk.
    CREATE TEMP TABLE demo_cur ON COMMIT DROP AS
    SELECT * FROM (VALUES
        ('USD', 1, 1.0, 0.0, -2, true), ('EUR', 2, 1.08, 0.020, -2, true),
        ('GBP', 3, 1.26, 0.018, -2, true), ('CNY', 4, 0.139, 0.008, -3, true),
        ('JPY', 5, 0.0068, 0.025, -4, true), ('CHF', 6, 1.12, 0.018, -2, false),
        ('CAD', 7, 0.73, 0.015, -2, false), ('AUD', 8, 0.66, 0.022, -2, false),
        ('NZD', 9, 0.60, 0.022, -2, false), ('SGD', 10, 0.74, 0.010, -2, false),
        ('HKD', 11, 0.128, 0.002, -3, false), ('INR', 12, 0.012, 0.012, -4, false),
        ('KRW', 13, 0.00074, 0.020, -5, false), ('BRL', 14, 0.19, 0.030, -3, false),
        ('MXN', 15, 0.055, 0.030, -3, false), ('SEK', 16, 0.095, 0.022, -3, false),
        ('NOK', 17, 0.092, 0.022, -3, false), ('DKK', 18, 0.145, 0.020, -3, false),
        ('PLN', 19, 0.25, 0.020, -3, false), ('ZAR', 20, 0.054, 0.030, -3, false),
        ('TWD', 21, 0.031, 0.012, -3, false)
    ) v(code, cid, usd_per, sigma, digits, used);
    IF NOT EXISTS (SELECT 1 FROM demo_cur WHERE code = v_base) THEN
        RAISE EXCEPTION 'load_demo has no exchange rates for base currency %', v_base
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('Set sales_kpi.base_currency to one of %s.',
                                (SELECT string_agg(code, ', ' ORDER BY code) FROM demo_cur));
    END IF;

    -- Every table of user data (those a dump keeps) holds sales data, except
    -- the price terms and the row-security setting; tables derived from them
    -- (rep_visibility) are rebuilt.
    SELECT array_agg(c.oid::regclass ORDER BY c.relname) INTO v_tables
      FROM pg_extension x
     CROSS JOIN LATERAL unnest(x.extconfig) AS k(relid)
      JOIN pg_class c ON c.oid = k.relid
     WHERE x.extname = 'sales_kpi' AND c.relkind IN ('r', 'p')
       AND c.relname NOT IN ('price_term', 'row_security');
    FOREACH v_tab IN ARRAY v_tables LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', v_tab) INTO v_has;
        IF v_has THEN
            v_busy := concat_ws(', ', v_busy, v_tab::text);
        END IF;
    END LOOP;
    IF v_busy IS NOT NULL AND NOT replace THEN
        RAISE EXCEPTION 'sales_kpi tables are not empty; pass replace => true to replace their rows with the demo data'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Rows found in %s.', v_busy),
                  HINT = 'replace => true deletes every row of every sales_kpi table except price_term.';
    END IF;
    -- Truncate even empty tables: it restarts the identities, so ids are the
    -- same on every load, and under wal_level = minimal the rows written into
    -- a table truncated in the same transaction need no WAL.
    EXECUTE format('TRUNCATE %s RESTART IDENTITY', array_to_string(v_tables, ', '));

    -- Bulk mode.  A foreign-key check is a row-by-row look-up of several
    -- microseconds and the load writes millions of referencing rows, so a
    -- superuser's load skips the row-by-row triggers (session_replication_role
    -- = replica, for this transaction only) and checks every foreign key of
    -- the schema set-wise at the end, as ALTER TABLE ... VALIDATE CONSTRAINT
    -- does.  The rows go in the way a restore brings them, so the stage and
    -- history triggers have nothing to add (the checks after the load
    -- confirm it); other roles load through the triggers, with the same rows.
    v_srr := current_setting('session_replication_role');
    v_bulk := (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user);
    IF v_bulk THEN
        PERFORM set_config('session_replication_role', 'replica', true);
    END IF;

    v_end := until::timestamp;
    v_start := v_end - interval '3 years';
    v_first := v_start::date;
    v_days := until - v_first;
    v_month := date_trunc('month', v_end)::date;
    v_q0 := (date_trunc('month', v_start)
             - make_interval(months => (extract(month FROM v_start)::integer - v_fy_month + 12) % 3))::date;
    v_n_acc := greatest(20, round(n_opportunities / 4.0))::integer;
    v_n_ae := greatest(12, round(n_opportunities / 250.0))::integer;
    v_n_team := greatest(1, round(v_n_ae / 6.5))::integer;
    v_n_sdr := greatest(v_n_team, round(v_n_ae / 3.0))::integer;

    SELECT array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 1),
           array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 2),
           array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 3),
           array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 4)
      INTO v_h_call, v_h_call_top, v_h_work, v_h_mail
      FROM (SELECT v.g, u.h,
                   (coalesce(sum(u.w) OVER (PARTITION BY v.g ORDER BY u.h
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                    / sum(u.w) OVER (PARTITION BY v.g))::float8 AS lo
              FROM (VALUES
                -- calls peak 9-11 and 16-18
                (1, ARRAY[0, 0, 0, 0, 0, 0, 0, 1, 4, 10, 12, 9, 4, 5, 7, 7, 8, 7, 3, 1, 0.5, 0, 0, 0]),
                -- top reps call more late in the afternoon
                (2, ARRAY[0, 0, 0, 0, 0, 0, 0, 1, 3, 8, 9, 7, 3, 4, 6, 8, 13, 13, 7, 2, 0.5, 0, 0, 0]),
                -- meetings, demos and the rest keep office hours
                (3, ARRAY[0, 0, 0, 0, 0, 0, 0, 0.5, 3, 8, 9, 8, 3, 5, 8, 8, 6, 3, 1, 0.3, 0, 0, 0, 0]),
                -- email goes out at any hour
                (4, ARRAY[0.2, 0.1, 0, 0, 0, 0, 0.5, 2, 5, 7, 7, 6, 4, 5, 6, 6, 5, 4, 3, 2, 1.5, 1, 0.6, 0.3])
              ) v(g, ws)
              CROSS JOIN LATERAL unnest(v.ws) WITH ORDINALITY u(w, h)) x;

    -- Exchange rates: a monthly walk of each currency's USD value that is
    -- pulled back toward its usual level (log x(m) = 0.92 log x(m-1) + noise,
    -- summed as 0.92^m * sum of 0.92^-i * noise(i)), divided by the base
    -- currency's, from a year before the first deal.
    CREATE TEMP TABLE demo_fx ON COMMIT DROP AS
    WITH walk AS (
        SELECT c.code, c.used, g.m,
               (date_trunc('month', v_start) + make_interval(months => g.m - 12))::date AS month,
               ln(c.usd_per)
                 + power(0.92, g.m)
                   * sum(CASE WHEN g.m = 0 THEN 0
                              ELSE power(0.92, -g.m) * c.sigma
                                   * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, (1::bigint << 40) + c.cid * 4096 + g.m * 2)))
                                   * cos(2 * pi() * @extschema@.demo_random(seed, (1::bigint << 40) + c.cid * 4096 + g.m * 2 + 1)) END)
                         OVER (PARTITION BY c.code ORDER BY g.m) AS lvl
          FROM demo_cur c
         CROSS JOIN generate_series(0, 48) g(m)
         WHERE c.used OR c.code = v_base
    )
    SELECT w.code, w.month,
           CASE WHEN w.code = v_base THEN 1
                ELSE round(exp(w.lvl - b.lvl)::numeric, 5 - floor(log(exp(w.lvl - b.lvl)))::integer) END AS rate
      FROM walk w
      JOIN walk b ON b.code = v_base AND b.m = w.m
     WHERE w.used OR w.code = v_base;

    INSERT INTO @extschema@.fx_rate (currency, valid_from, rate)
    SELECT code, month, rate FROM demo_fx WHERE code <> v_base ORDER BY code, month;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('fx_rate', v_n, v_t);

    -- The sales process: four pipelines, stages with a typical stay in days,
    -- and one to three milestones per open stage.
    CREATE TEMP TABLE demo_stage ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY v.pipeline_id, v.position) AS stage_id, v.*
      FROM (VALUES
        (1, 1, 'Prospecting', 'open', 0.10, 'pipeline', 6),
        (1, 2, 'Discovery', 'open', 0.20, 'pipeline', 10),
        (1, 3, 'Solution Fit', 'open', 0.40, 'best_case', 14),
        (1, 4, 'Proposal', 'open', 0.60, 'best_case', 12),
        (1, 5, 'Negotiation', 'open', 0.80, 'commit', 10),
        (1, 6, 'Contracting', 'open', 0.90, 'commit', 6),
        (1, 7, 'Closed Won', 'won', 1, 'closed', NULL),
        (1, 8, 'Closed Lost', 'lost', 0, 'omitted', NULL),
        (2, 1, 'Scoping', 'open', 0.20, 'pipeline', 7),
        (2, 2, 'Business Case', 'open', 0.45, 'best_case', 10),
        (2, 3, 'Proposal', 'open', 0.70, 'best_case', 9),
        (2, 4, 'Contracting', 'open', 0.90, 'commit', 6),
        (2, 5, 'Closed Won', 'won', 1, 'closed', NULL),
        (2, 6, 'Closed Lost', 'lost', 0, 'omitted', NULL),
        (3, 1, 'Research', 'open', 0.05, 'pipeline', 12),
        (3, 2, 'Qualification', 'open', 0.10, 'pipeline', 14),
        (3, 3, 'Discovery', 'open', 0.20, 'pipeline', 18),
        (3, 4, 'Solution Design', 'open', 0.35, 'best_case', 20),
        (3, 5, 'Executive Alignment', 'open', 0.50, 'best_case', 18),
        (3, 6, 'Proposal', 'open', 0.70, 'commit', 16),
        (3, 7, 'Procurement', 'open', 0.85, 'commit', 22),
        (3, 8, 'Closed Won', 'won', 1, 'closed', NULL),
        (3, 9, 'Closed Lost', 'lost', 0, 'omitted', NULL),
        (4, 1, 'Renewal Due', 'open', 0.60, 'best_case', 21),
        (4, 2, 'Negotiation', 'open', 0.80, 'commit', 14),
        (4, 3, 'Paperwork', 'open', 0.95, 'commit', 7),
        (4, 4, 'Closed Won', 'won', 1, 'closed', NULL),
        (4, 5, 'Closed Lost', 'lost', 0, 'omitted', NULL)
      ) v(pipeline_id, position, name, kind, probability, forecast_category, base_days);

    CREATE TEMP TABLE demo_pipe ON COMMIT DROP AS
    SELECT p.pipeline_id, p.name,
           count(*) FILTER (WHERE s.kind = 'open')::integer AS n_open,
           -- open stages have consecutive ids in position order
           min(s.stage_id) AS first_id,
           max(s.stage_id) FILTER (WHERE s.kind = 'won') AS won_id,
           max(s.stage_id) FILTER (WHERE s.kind = 'lost') AS lost_id,
           array_agg(s.base_days ORDER BY s.position) FILTER (WHERE s.kind = 'open') AS base_days
      FROM (VALUES (1, 'New Business'), (2, 'Expansion'), (3, 'Strategic'), (4, 'Renewal')) p(pipeline_id, name)
      JOIN demo_stage s USING (pipeline_id)
     GROUP BY p.pipeline_id, p.name;

    CREATE TEMP TABLE demo_ms ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY s.stage_id, v.position) AS milestone_id,
           s.stage_id, s.pipeline_id, s.position AS stage_pos, v.position, v.name, v.required, v.akind,
           count(*) OVER (PARTITION BY s.stage_id) AS n_in_stage
      FROM (VALUES
        (1, 1, 1, 'Contact identified', true, 'call'),
        (1, 1, 2, 'First meeting booked', true, 'call'),
        (1, 2, 1, 'Pain confirmed', true, 'meeting'),
        (1, 2, 2, 'Budget discussed', true, 'call'),
        (1, 2, 3, 'Decision process mapped', false, 'meeting'),
        (1, 3, 1, 'Demo delivered', true, 'demo'),
        (1, 3, 2, 'Technical validation', true, 'meeting'),
        (1, 4, 1, 'Proposal sent', true, 'proposal'),
        (1, 4, 2, 'Proposal reviewed with buyer', true, 'meeting'),
        (1, 5, 1, 'Terms agreed', true, 'call'),
        (1, 5, 2, 'Legal review started', false, 'email'),
        (1, 6, 1, 'Contract sent', true, 'email'),
        (2, 1, 1, 'Usage review', true, 'meeting'),
        (2, 2, 1, 'ROI shared', true, 'content'),
        (2, 2, 2, 'Sponsor confirmed', true, 'call'),
        (2, 3, 1, 'Proposal sent', true, 'proposal'),
        (2, 3, 2, 'Discount approved', false, 'other'),
        (2, 4, 1, 'Order form sent', true, 'email'),
        (3, 1, 1, 'Account plan written', true, 'other'),
        (3, 2, 1, 'Executive sponsor identified', true, 'call'),
        (3, 2, 2, 'Qualification scored', false, 'other'),
        (3, 3, 1, 'Pain confirmed', true, 'meeting'),
        (3, 3, 2, 'Stakeholder map', true, 'meeting'),
        (3, 3, 3, 'Budget discussed', true, 'call'),
        (3, 4, 1, 'Architecture workshop', true, 'meeting'),
        (3, 4, 2, 'Demo delivered', true, 'demo'),
        (3, 5, 1, 'Executive meeting', true, 'meeting'),
        (3, 5, 2, 'Mutual action plan', true, 'content'),
        (3, 6, 1, 'Proposal sent', true, 'proposal'),
        (3, 6, 2, 'Business case approved', true, 'meeting'),
        (3, 7, 1, 'Security review passed', true, 'other'),
        (3, 7, 2, 'Contract sent', true, 'email'),
        (3, 7, 3, 'PO received', false, 'email'),
        (4, 1, 1, 'Health check', true, 'meeting'),
        (4, 2, 1, 'Renewal quote sent', true, 'proposal'),
        (4, 2, 2, 'Upsell discussed', false, 'call'),
        (4, 3, 1, 'Order form signed', true, 'email')
      ) v(pipeline_id, stage_pos, position, name, required, akind)
      JOIN demo_stage s ON s.pipeline_id = v.pipeline_id AND s.position = v.stage_pos AND s.kind = 'open';

    INSERT INTO @extschema@.pipeline (pipeline_id, name, qualified_position)
    SELECT pipeline_id, name, 2 FROM demo_pipe ORDER BY pipeline_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('pipeline', v_n, v_t);
    INSERT INTO @extschema@.stage (stage_id, pipeline_id, name, position, kind, probability, forecast_category)
    SELECT stage_id, pipeline_id, name, position, kind, probability, forecast_category
      FROM demo_stage ORDER BY stage_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('stage', v_n, v_t);
    INSERT INTO @extschema@.milestone (milestone_id, stage_id, name, position, required)
    SELECT milestone_id, stage_id, name, position, required FROM demo_ms ORDER BY milestone_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('milestone', v_n, v_t);

    -- Regions: where accounts are and teams sell, the local working hours
    -- (UTC offset), the zones reps work in, and which region's team covers
    -- a region that has none.
    CREATE TEMP TABLE demo_region ON COMMIT DROP AS
    SELECT * FROM (VALUES
        (1, 'North America', 0.00, 0.40, -5, false,
         ARRAY['America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles'], ARRAY[1, 5, 2, 3, 4]),
        (2, 'EMEA', 0.40, 0.70, 1, false,
         ARRAY['Europe/London', 'Europe/Berlin', 'Europe/Paris', 'Europe/Madrid', 'Europe/Amsterdam'], ARRAY[2, 1, 3, 5, 4]),
        (3, 'APAC', 0.70, 0.85, 8, false,
         ARRAY['Asia/Tokyo', 'Asia/Singapore', 'Australia/Sydney', 'Asia/Kolkata'], ARRAY[3, 4, 2, 1, 5]),
        (4, 'Greater China', 0.85, 0.95, 8, true,
         ARRAY['Asia/Shanghai', 'Asia/Hong_Kong', 'Asia/Taipei'], ARRAY[4, 3, 1, 2, 5]),
        (5, 'LATAM', 0.95, 1.00, -3, false,
         ARRAY['America/Sao_Paulo', 'America/Mexico_City', 'America/Bogota'], ARRAY[5, 1, 2, 3, 4])
    ) v(rid, region, lo, hi, utc_offset, chinese, zones, fallback);

    -- Teams of 5-8 AEs, spread over the regions by their weight.
    CREATE TEMP TABLE demo_team ON COMMIT DROP AS
    SELECT t.team_no, r.rid,
           r.region || ' ' || row_number() OVER (PARTITION BY r.rid ORDER BY t.team_no) AS team,
           round((5 + 3 * @extschema@.demo_random(seed, (2::bigint << 40) + t.team_no))::numeric, 3) AS weight
      FROM generate_series(1, v_n_team) t(team_no)
      JOIN demo_region r ON (t.team_no - 0.5) / v_n_team >= r.lo AND (t.team_no - 0.5) / v_n_team < r.hi;
    SELECT array_agg(x.lo ORDER BY x.team_no), sum(x.weight) INTO v_team_bounds, v_team_total
      FROM (SELECT team_no, weight, sum(weight) OVER (ORDER BY team_no) - weight AS lo FROM demo_team) x;

    -- Reps: a head of sales, a manager per team, AEs and SDRs.  Each has a
    -- hidden skill (win rate, cycle, questions asked), an optimism (forecast
    -- bias) and a hustle (activity volume).  The first AE and SDR of every
    -- team were hired before the data starts, so every region always has
    -- someone to own its deals.
    CREATE TEMP TABLE demo_rep ON COMMIT DROP AS
    WITH ae AS (
        SELECT g.n, width_bucket((g.n - 0.5) / v_n_ae * v_team_total, v_team_bounds) AS team_no
          FROM generate_series(1, v_n_ae) g(n)
    ), person AS (
        SELECT 1::bigint AS rep_id, 'manager'::text AS role, NULL::integer AS team_no, true AS veteran
        UNION ALL
        SELECT 1 + team_no, 'manager', team_no, true FROM demo_team
        UNION ALL
        SELECT 1 + v_n_team + n, 'ae', team_no, n = min(n) OVER (PARTITION BY team_no) FROM ae
        UNION ALL
        SELECT 1 + v_n_team + v_n_ae + g.n, 'sdr', (g.n - 1) % v_n_team + 1, g.n <= v_n_team
          FROM generate_series(1, v_n_sdr) g(n)
    ), drawn AS (
        SELECT p.*, (3::bigint << 40) + p.rep_id * 64 AS kr, coalesce(t.rid, 1) AS rid,
               coalesce(t.team, 'Sales Leadership') AS team
          FROM person p
          LEFT JOIN demo_team t USING (team_no)
    )
    SELECT d.rep_id, d.role, d.team_no, d.team, d.rid,
           CASE WHEN d.rep_id = 1 THEN NULL WHEN d.role = 'manager' THEN 1 ELSE 1 + d.team_no END AS manager_id,
           CASE WHEN d.rep_id = 1 THEN v_first - (1500 + floor(1000 * @extschema@.demo_random(seed, d.kr)))::integer
                WHEN d.veteran THEN v_first - (200 + floor(1200 * @extschema@.demo_random(seed, d.kr)))::integer
                WHEN @extschema@.demo_random(seed, d.kr + 1) < 0.65 THEN v_first - (30 + floor(1500 * @extschema@.demo_random(seed, d.kr)))::integer
                ELSE v_first + floor((v_days - 90) * @extschema@.demo_random(seed, d.kr))::integer END AS hired_on,
           -- roughly normal, mean 0, sd 1
           (@extschema@.demo_random(seed, d.kr + 2) + @extschema@.demo_random(seed, d.kr + 3)
            + @extschema@.demo_random(seed, d.kr + 4) + @extschema@.demo_random(seed, d.kr + 5) - 2) * sqrt(3.0) AS skill,
           CASE WHEN @extschema@.demo_random(seed, d.kr + 6) < 0.25 THEN 0.2 + 0.3 * @extschema@.demo_random(seed, d.kr + 7)
                WHEN @extschema@.demo_random(seed, d.kr + 6) < 0.40 THEN -0.08 - 0.15 * @extschema@.demo_random(seed, d.kr + 7)
                ELSE -0.06 + 0.12 * @extschema@.demo_random(seed, d.kr + 7) END AS optimism,
           0.7 + 0.6 * @extschema@.demo_random(seed, d.kr + 8) AS hustle,
           CASE WHEN @extschema@.demo_random(seed, d.kr + 9) >= 0.15
                THEN r.zones[1 + floor(cardinality(r.zones) * @extschema@.demo_random(seed, d.kr + 10))::integer] END AS timezone,
           CASE WHEN r.chinese
                THEN v_sur_cn[1 + floor(cardinality(v_sur_cn) * @extschema@.demo_random(seed, d.kr + 11))::integer]
                     || v_given_cn[1 + floor(cardinality(v_given_cn) * @extschema@.demo_random(seed, d.kr + 12))::integer]
                ELSE v_first_en[1 + floor(cardinality(v_first_en) * @extschema@.demo_random(seed, d.kr + 11))::integer] || ' '
                     || v_last_en[1 + floor(cardinality(v_last_en) * @extschema@.demo_random(seed, d.kr + 12))::integer] END AS name,
           r.zones[1] AS region_zone
      FROM drawn d
      JOIN demo_region r USING (rid);

    INSERT INTO @extschema@.rep (rep_id, name, team, manager_id, role, hired_on, timezone)
    SELECT rep_id, name, team, manager_id, role, hired_on, timezone FROM demo_rep ORDER BY rep_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('rep', v_n, v_t);

    -- Who may own a deal of a region on a date: the AEs (SDRs) of the
    -- covering region in order of hiring, so that those hired by the date
    -- are a prefix: width_bucket(date, hires) is their number.
    CREATE TEMP TABLE demo_cover ON COMMIT DROP AS
    WITH cover AS (
        SELECT r.rid,
               (SELECT f.cr
                  FROM unnest(r.fallback) WITH ORDINALITY f(cr, o)
                 WHERE EXISTS (SELECT 1 FROM demo_team t WHERE t.rid = f.cr)
                 ORDER BY f.o LIMIT 1) AS cr
          FROM demo_region r
    )
    SELECT c.rid, x.role,
           array_agg(x.hired_on ORDER BY x.hired_on, x.rep_id) AS hires,
           array_agg(x.rep_id ORDER BY x.hired_on, x.rep_id) AS reps
      FROM cover c
      JOIN demo_rep x ON x.rid = c.cr AND x.role IN ('ae', 'sdr')
     GROUP BY c.rid, x.role;

    -- Accounts.  Bigger ones buy more often: a deal picks its account with
    -- probability proportional to the weight.
    CREATE TEMP TABLE demo_account ON COMMIT DROP AS
    WITH a AS (
        SELECT g.id AS account_id, (4::bigint << 40) + g.id * 64 AS ka
          FROM generate_series(1, v_n_acc) g(id)
    ), b AS (
        SELECT a.*, width_bucket(@extschema@.demo_random(seed, a.ka), ARRAY[0, 0.40, 0.70, 0.85, 0.95]::float8[]) AS rid,
               CASE WHEN @extschema@.demo_random(seed, a.ka + 1) < 0.5 THEN 'SMB'
                    WHEN @extschema@.demo_random(seed, a.ka + 1) < 0.85 THEN 'Mid-Market'
                    ELSE 'Enterprise' END AS segment,
               1 + floor(8 * power(@extschema@.demo_random(seed, a.ka + 2), 1.25))::integer AS ind
          FROM a
    )
    SELECT b.account_id, b.ka, b.rid, b.segment, v_industry[b.ind] AS industry,
           CASE b.rid WHEN 1 THEN 'USD'
                      WHEN 2 THEN CASE WHEN @extschema@.demo_random(seed, b.ka + 3) < 0.62 THEN 'EUR' ELSE 'GBP' END
                      WHEN 3 THEN CASE WHEN @extschema@.demo_random(seed, b.ka + 3) < 0.45 THEN 'JPY' ELSE 'USD' END
                      WHEN 4 THEN 'CNY'
                      ELSE 'USD' END AS currency,
           CASE WHEN b.rid = 4
                THEN v_city_cn[1 + floor(10 * @extschema@.demo_random(seed, b.ka + 6))::integer]
                     || v_word_cn[1 + floor(10 * @extschema@.demo_random(seed, b.ka + 7))::integer]
                     || v_industry_cn[b.ind]
                     || CASE WHEN @extschema@.demo_random(seed, b.ka + 8) < 0.7 THEN '有限公司' ELSE '集团' END
                ELSE v_acc_prefix[1 + floor(cardinality(v_acc_prefix) * @extschema@.demo_random(seed, b.ka + 6))::integer] || ' '
                     || v_acc_word[(b.ind - 1) * 5 + 1 + floor(5 * @extschema@.demo_random(seed, b.ka + 7))::integer]
                     || CASE b.rid WHEN 1 THEN v_legal_na[1 + floor(4 * @extschema@.demo_random(seed, b.ka + 8))::integer]
                                   WHEN 2 THEN v_legal_emea[1 + floor(6 * @extschema@.demo_random(seed, b.ka + 8))::integer]
                                   WHEN 3 THEN v_legal_apac[1 + floor(4 * @extschema@.demo_random(seed, b.ka + 8))::integer]
                                   ELSE v_legal_latam[1 + floor(4 * @extschema@.demo_random(seed, b.ka + 8))::integer] END
           END AS name,
           @extschema@.demo_random(seed, b.ka + 4) AS u_owner,
           CASE b.segment WHEN 'SMB' THEN 1.0 WHEN 'Mid-Market' THEN 1.6 ELSE 2.8 END
               * (0.3 + 1.4 * @extschema@.demo_random(seed, b.ka + 5)) AS weight,
           2 + floor(3 * @extschema@.demo_random(seed, b.ka + 9))::integer AS n_contact
      FROM b;
    SELECT array_agg(x.lo ORDER BY x.account_id), max(x.lo + x.weight) INTO v_acc_bounds, v_acc_total
      FROM (SELECT account_id, weight,
                   coalesce(sum(weight) OVER (ORDER BY account_id
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS lo
              FROM demo_account) x;

    -- Contacts: two to four per account, usually a decision maker first and
    -- a champion second.
    CREATE TEMP TABLE demo_contact ON COMMIT DROP AS
    WITH f AS (
        SELECT a.account_id, a.rid, a.n_contact,
               sum(a.n_contact) OVER (ORDER BY a.account_id) - a.n_contact AS before
          FROM demo_account a
    ), c AS (
        SELECT f.before + g.k + 1 AS contact_id, f.account_id, f.rid, g.k, f.before + 1 AS first_contact,
               f.n_contact, (5::bigint << 40) + (f.before + g.k + 1) * 16 AS kc
          FROM f
         CROSS JOIN LATERAL generate_series(0, f.n_contact - 1) g(k)
    ), r AS (
        SELECT c.*,
               CASE WHEN c.k = 0 THEN CASE WHEN @extschema@.demo_random(seed, c.kc) < 0.8 THEN 1 ELSE 2 END
                    WHEN c.k = 1 THEN CASE WHEN @extschema@.demo_random(seed, c.kc) < 0.7 THEN 2 ELSE 3 END
                    ELSE (ARRAY[3, 4, 4, 5, 1, 3])[1 + floor(6 * @extschema@.demo_random(seed, c.kc))::integer] END AS role_no
          FROM c
    )
    SELECT r.contact_id, r.account_id, r.first_contact, r.n_contact, v_role[r.role_no] AS role,
           CASE WHEN rg.chinese
                THEN v_sur_cn[1 + floor(cardinality(v_sur_cn) * @extschema@.demo_random(seed, r.kc + 1))::integer]
                     || v_given_cn[1 + floor(cardinality(v_given_cn) * @extschema@.demo_random(seed, r.kc + 2))::integer]
                ELSE v_first_en[1 + floor(cardinality(v_first_en) * @extschema@.demo_random(seed, r.kc + 1))::integer] || ' '
                     || v_last_en[1 + floor(cardinality(v_last_en) * @extschema@.demo_random(seed, r.kc + 2))::integer] END AS name,
           CASE WHEN @extschema@.demo_random(seed, r.kc + 3) < 0.04 THEN NULL
                WHEN rg.chinese THEN v_title_cn[(r.role_no - 1) * 4 + 1 + floor(4 * @extschema@.demo_random(seed, r.kc + 4))::integer]
                ELSE v_title[(r.role_no - 1) * 5 + 1 + floor(5 * @extschema@.demo_random(seed, r.kc + 4))::integer] END AS title
      FROM r
      JOIN demo_region rg USING (rid);

    CREATE TEMP TABLE demo_acc_contact ON COMMIT DROP AS
    SELECT account_id, min(contact_id) AS first_contact, max(n_contact) AS n_contact
      FROM demo_contact GROUP BY account_id;

    -- Deals, the parts that do not depend on their kind: when (more recent,
    -- more deals; few on weekends; local office hours), which account,
    -- owner, source and competitor.  Ids follow creation time.
    CREATE TEMP TABLE demo_deal ON COMMIT DROP AS
    WITH d AS (
        SELECT g.i, (6::bigint << 40) + g.i::bigint * 1024 AS kd,
               width_bucket(v_acc_total * @extschema@.demo_random(seed, (6::bigint << 40) + g.i::bigint * 1024 + 1), v_acc_bounds) AS account_id,
               least(v_days - 1, floor(v_days * ln(1 + @extschema@.demo_random(seed, (6::bigint << 40) + g.i::bigint * 1024)
                                                       * (exp(v_growth) - 1)) / v_growth))::integer AS day
          FROM generate_series(1, n_opportunities) g(i)
    ), e AS (
        SELECT d.*, a.rid, a.segment, a.currency, a.u_owner, r.utc_offset,
               CASE WHEN extract(isodow FROM v_first + d.day) < 6 OR @extschema@.demo_random(seed, d.kd + 2) >= 0.8 THEN d.day
                    WHEN extract(isodow FROM v_first + d.day) = 6
                         THEN CASE WHEN d.day >= 1 THEN d.day - 1 ELSE d.day + 2 END
                    ELSE CASE WHEN d.day + 1 <= v_days - 1 THEN d.day + 1 ELSE d.day - 2 END END AS workday
          FROM d
          JOIN demo_account a USING (account_id)
          JOIN demo_region r USING (rid)
    ), f AS MATERIALIZED (
        SELECT e.*, c.reps, c.hires,
               (v_first + e.workday)::timestamp
                 + interval '1 second' * (round((8 + 10.99 * @extschema@.demo_random(seed, e.kd + 3)) * 3600) - e.utc_offset * 3600) AS created_at
          FROM e
          JOIN demo_cover c ON c.rid = e.rid AND c.role = 'ae'
    ), g AS (
        SELECT f.*,
               1 + floor(width_bucket(f.created_at::date, f.hires)
                         * CASE WHEN @extschema@.demo_random(seed, f.kd + 5) < 0.75 THEN f.u_owner
                                ELSE @extschema@.demo_random(seed, f.kd + 6) END)::integer AS owner_idx
          FROM f
    )
    SELECT row_number() OVER (ORDER BY g.created_at, g.i) AS id, g.i, g.kd, g.account_id, g.rid, g.segment,
           g.currency, g.created_at, g.owner_idx, g.reps[g.owner_idx] AS owner0,
           v_source[width_bucket(@extschema@.demo_random(seed, g.kd + 7), ARRAY[0, 0.30, 0.55, 0.67, 0.80, 0.90]::float8[])] AS source0,
           CASE WHEN @extschema@.demo_random(seed, g.kd + 8) < 0.45 THEN NULL
                WHEN g.rid = 4 THEN v_competitor_cn[1 + floor(cardinality(v_competitor_cn) * @extschema@.demo_random(seed, g.kd + 9))::integer]
                ELSE v_competitor[1 + floor(cardinality(v_competitor) * @extschema@.demo_random(seed, g.kd + 9))::integer] END AS competitor,
           -- an account's first deal is new business; later ones may be
           -- expansions or renewals (if the account has bought by then)
           CASE WHEN row_number() OVER (PARTITION BY g.account_id ORDER BY g.created_at, g.i) = 1
                     OR @extschema@.demo_random(seed, g.kd + 10) >= 0.45 THEN 'new'
                WHEN @extschema@.demo_random(seed, g.kd + 11) < 0.62 THEN 'expansion'
                ELSE 'renewal' END AS kind0
      FROM g;
    ANALYZE demo_deal;

    CREATE TEMP TABLE demo_dk (
        id bigint, i integer, kd bigint, kp bigint, phase integer, account_id integer,
        created_at timestamp, kind text, source text, pipeline_id integer, n_open integer,
        c integer, top integer, outcome text, stall boolean, reopen boolean, outcome2 text,
        scale float8, skip_p float8, reg_p float8, amount0 numeric, ec0 date, lost_reason text,
        from_lead boolean
    ) ON COMMIT DROP;
    CREATE TEMP TABLE demo_path (
        id bigint, ord integer, pos integer, skind text, stage_id bigint, at timestamp
    ) ON COMMIT DROP;
    CREATE TEMP TABLE demo_win (account_id integer, won_at timestamp) ON COMMIT DROP;

    -- Two phases: new business first; then expansions and renewals, which
    -- stay what they are only if their account had won a deal before they
    -- were created (else they are new business too).
    FOR v_phase IN 1..2 LOOP
        INSERT INTO demo_dk
        WITH d AS (
            SELECT d.*, r.skill, d.created_at::date - r.hired_on AS tenure,
                   CASE WHEN d.kind0 = 'new' OR w.won_at < d.created_at THEN d.kind0 ELSE 'new' END AS kind
              FROM demo_deal d
              JOIN demo_rep r ON r.rep_id = d.owner0
              LEFT JOIN demo_win w ON w.account_id = d.account_id
             WHERE CASE WHEN d.kind0 = 'new' THEN 1 ELSE 2 END = v_phase
        ), k AS (
            SELECT d.*,
                   CASE WHEN d.kind = 'new' THEN d.source0 ELSE 'Existing Customer' END AS source,
                   CASE d.kind WHEN 'expansion' THEN 2 WHEN 'renewal' THEN 4
                        ELSE CASE WHEN @extschema@.demo_random(seed, d.kd + 20) < CASE d.segment WHEN 'Enterprise' THEN 0.45
                                                                       WHEN 'Mid-Market' THEN 0.08 ELSE 0 END
                                  THEN 3 ELSE 1 END END AS pipeline_id,
                   CASE d.segment WHEN 'SMB' THEN 0.6 WHEN 'Mid-Market' THEN 1.0 ELSE 1.6 END AS segf
              FROM d
        ), w AS (
            SELECT k.*, p.n_open,
                   least(0.9, greatest(0.03,
                       CASE k.kind
                         WHEN 'renewal' THEN 0.80 + 0.03 * k.skill
                         WHEN 'expansion' THEN 0.50 + 0.06 * k.skill
                         ELSE 0.25 + 0.07 * k.skill
                              + CASE k.segment WHEN 'SMB' THEN 0.03 WHEN 'Enterprise' THEN -0.04 ELSE 0 END
                              + CASE k.source WHEN 'Referral' THEN 0.12 WHEN 'Partner' THEN 0.06
                                              WHEN 'Inbound' THEN 0.02 WHEN 'Outbound' THEN -0.05
                                              WHEN 'Paid Search' THEN -0.06 ELSE 0 END
                              - CASE WHEN k.competitor IS NOT NULL THEN 0.05 ELSE 0 END
                              - CASE WHEN k.pipeline_id = 3 THEN 0.03 ELSE 0 END
                              -- reps in their first half year win less
                              - CASE WHEN k.tenure < 180 THEN 0.06 ELSE 0 END
                       END)) AS p_win,
                   CASE WHEN k.pipeline_id IN (1, 3) AND @extschema@.demo_random(seed, k.kd + 23) < 0.15 THEN 2
                        WHEN k.pipeline_id = 2 AND @extschema@.demo_random(seed, k.kd + 23) < 0.10 THEN 2
                        ELSE 1 END AS c
              FROM k
              JOIN demo_pipe p USING (pipeline_id)
        ), o AS (
            SELECT w.*,
                   CASE WHEN @extschema@.demo_random(seed, w.kd + 24) < w.p_win THEN 'won'
                        WHEN @extschema@.demo_random(seed, w.kd + 25) < 0.07 THEN 'open'   -- never decided: a zombie
                        ELSE 'lost' END AS outcome
              FROM w
        )
        SELECT o.id, o.i, o.kd, (7::bigint << 40) + o.i::bigint * 8192, v_phase, o.account_id, o.created_at,
               o.kind, o.source, o.pipeline_id, o.n_open, o.c,
               -- the highest open stage reached: the last (or, skipping it,
               -- the one before) for wins; losses come early more often,
               -- and earlier still for skilled reps, who disqualify fast
               CASE WHEN o.outcome = 'won'
                    THEN greatest(o.c, o.n_open - CASE WHEN @extschema@.demo_random(seed, o.kd + 27) < 0.12 THEN 1 ELSE 0 END)
                    ELSE least(o.n_open, o.c + floor((o.n_open - o.c + 1)
                                                     * power(@extschema@.demo_random(seed, o.kd + 26),
                                                             least(2.5, greatest(0.7, 1.3 + 0.35 * o.skill)))
                                                    )::integer) END,
               o.outcome,
               @extschema@.demo_random(seed, o.kd + 28) < 0.08,
               o.outcome <> 'open' AND @extschema@.demo_random(seed, o.kd + 30) < 0.028,
               CASE WHEN o.outcome = 'lost'
                    THEN CASE WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.35 THEN 'won'
                              WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.8 THEN 'lost' ELSE 'open' END
                    ELSE CASE WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.7 THEN 'won'
                              WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.9 THEN 'lost' ELSE 'open' END END,
               o.segf * CASE WHEN o.kind = 'expansion' THEN 0.8 ELSE 1 END
                   * exp(-0.18 * o.skill) * (0.75 + 0.5 * @extschema@.demo_random(seed, o.kd + 29)),
               0.07 + CASE WHEN o.skill < -0.5 THEN 0.04 ELSE 0 END,
               0.035 + CASE WHEN o.skill < 0 THEN 0.025 ELSE 0 END,
               -- log-normal amount by segment, in the account's currency
               greatest(power(10::numeric, -cu.digits),
                        round((CASE o.segment WHEN 'SMB' THEN 9000 WHEN 'Mid-Market' THEN 38000 ELSE 140000 END
                               * exp(CASE o.segment WHEN 'SMB' THEN 0.55 WHEN 'Mid-Market' THEN 0.6 ELSE 0.7 END
                                     * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, o.kd + 21)))
                                     * cos(2 * pi() * @extschema@.demo_random(seed, o.kd + 22)))
                               * CASE o.pipeline_id WHEN 3 THEN 2.2 WHEN 2 THEN 0.35 WHEN 4 THEN 0.9 ELSE 1 END
                               / cu.usd_per)::numeric, cu.digits)),
               -- the close date the rep first puts in, usually optimistic
               o.created_at::date + 7 + round(CASE o.pipeline_id WHEN 1 THEN 55 WHEN 2 THEN 35 WHEN 3 THEN 120 ELSE 40 END
                                              * o.segf * (0.45 + 0.6 * @extschema@.demo_random(seed, o.kd + 34)))::integer,
               CASE WHEN o.competitor IS NOT NULL AND @extschema@.demo_random(seed, o.kd + 32) < 0.45 THEN 'Lost to competitor'
                    ELSE v_lost_reason[1 + floor(cardinality(v_lost_reason) * @extschema@.demo_random(seed, o.kd + 33))::integer] END,
               o.kind = 'new' AND @extschema@.demo_random(seed, o.kd + 12) < CASE o.source0 WHEN 'Inbound' THEN 0.8 WHEN 'Paid Search' THEN 0.85
                                                                  WHEN 'Event' THEN 0.75 WHEN 'Outbound' THEN 0.45
                                                                  WHEN 'Referral' THEN 0.35 ELSE 0.25 END
          FROM o
          JOIN demo_cur cu ON cu.code = o.currency;

        -- The stage path.  Forward moves of one stage, sometimes two (a
        -- skip), from the creation stage up to the top stage; now and then
        -- a regression (back one or two stages, then forward again); then
        -- won or lost, and rarely a reopening.  Each step stays a
        -- log-normal time around the stage's norm (slower in big
        -- segments, faster for skilled reps, long for stalled deals).
        -- Steps after until are cut: those deals are still open.
        INSERT INTO demo_path (id, ord, pos, skind, stage_id, at)
        WITH mv AS (
            SELECT k.id, k.kp, k.top, g.j,
                   k.c + sum(CASE WHEN g.j = 0 THEN 0
                                  WHEN @extschema@.demo_random(seed, k.kp + g.j * 32) < k.skip_p THEN 2
                                  ELSE 1 END) OVER (PARTITION BY k.id ORDER BY g.j) AS raw
              FROM demo_dk k
             CROSS JOIN LATERAL generate_series(0, k.top - k.c) g(j)
             WHERE k.phase = v_phase
        ), fwd AS (
            SELECT x.id, x.kp, x.j, least(x.raw, x.top) AS pos
              FROM (SELECT mv.*, lag(mv.raw) OVER (PARTITION BY mv.id ORDER BY mv.j) AS prev FROM mv) x
             WHERE x.j = 0 OR x.prev < x.top
        ), step AS (
            SELECT f.id, f.j * 4 AS ord, f.pos, 'open' AS skind FROM fwd f
            UNION ALL
            SELECT f.id, f.j * 4 + b.sub,
                   CASE WHEN b.sub = 2 THEN f.pos
                        WHEN f.pos >= 3 AND @extschema@.demo_random(seed, f.kp + f.j * 32 + 2) < 0.25 THEN f.pos - 2
                        ELSE f.pos - 1 END,
                   'open'
              FROM fwd f
              JOIN demo_dk k USING (id)
             CROSS JOIN (VALUES (1), (2)) b(sub)
             WHERE f.j >= 1 AND f.pos >= 2 AND @extschema@.demo_random(seed, f.kp + f.j * 32 + 1) < k.reg_p
            UNION ALL
            SELECT k.id, 1000, NULL, k.outcome FROM demo_dk k WHERE k.phase = v_phase AND k.outcome <> 'open'
            UNION ALL
            SELECT k.id, 1001, CASE WHEN k.outcome = 'won' THEN k.n_open ELSE k.top END, 'open'
              FROM demo_dk k WHERE k.phase = v_phase AND k.reopen
            UNION ALL
            SELECT k.id, 1002, NULL, k.outcome2
              FROM demo_dk k WHERE k.phase = v_phase AND k.reopen AND k.outcome2 <> 'open'
        ), timed AS (
            SELECT s.id, s.ord, s.pos, s.skind, k.created_at,
                   CASE s.skind WHEN 'open' THEN pp.first_id + s.pos - 1
                                WHEN 'won' THEN pp.won_id ELSE pp.lost_id END AS stage_id,
                   greatest(3600, round(86400 *
                     CASE WHEN s.skind <> 'open' THEN 7 + 50 * @extschema@.demo_random(seed, k.kp + s.ord * 8 + 3)  -- until reopened
                          ELSE pp.base_days[s.pos] * k.scale
                               * exp(0.7 * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, k.kp + s.ord * 8 + 3)))
                                         * cos(2 * pi() * @extschema@.demo_random(seed, k.kp + s.ord * 8 + 4)))
                               * CASE WHEN s.ord % 4 <> 0 THEN 0.5 ELSE 1 END
                               * CASE WHEN lead(s.skind) OVER w = 'lost' THEN 1.8 ELSE 1 END
                               * CASE WHEN k.stall AND lead(s.ord) OVER w = 1000 THEN 6 ELSE 1 END
                     END))::bigint AS stay_s
              FROM step s
              JOIN demo_dk k USING (id)
              JOIN demo_pipe pp ON pp.pipeline_id = k.pipeline_id
            WINDOW w AS (PARTITION BY s.id ORDER BY s.ord)
        ), placed AS (
            SELECT t.id, t.ord, t.pos, t.skind, t.stage_id,
                   t.created_at + interval '1 second'
                       * coalesce(sum(t.stay_s) OVER (PARTITION BY t.id ORDER BY t.ord
                                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS at
              FROM timed t
        )
        SELECT id, ord, pos, skind, stage_id, at FROM placed WHERE at < v_end;

        IF v_phase = 1 THEN
            INSERT INTO demo_win
            SELECT k.account_id, min(p.at)
              FROM demo_path p JOIN demo_dk k USING (id)
             WHERE p.skind = 'won'
             GROUP BY k.account_id;
            ANALYZE demo_win;
        END IF;
    END LOOP;

    -- Everything known about a deal, with its state at until.
    CREATE TEMP TABLE demo_opp ON COMMIT DROP AS
    SELECT d.id, d.i, d.kd, d.account_id, d.rid, d.segment, d.currency, cu.digits, d.created_at,
           d.owner0, d.owner_idx, d.competitor, k.kind, k.source, k.pipeline_id, k.n_open, k.amount0,
           k.ec0, k.outcome, k.from_lead, f.skind AS final_kind, coalesce(r.timezone, r.region_zone) AS tz,
           ac.first_contact, ac.n_contact,
           CASE WHEN f.skind <> 'open' THEN f.at END AS closed_at,
           CASE WHEN f.skind = 'lost' THEN k.lost_reason END AS lost_reason,
           a.name || ' - '
             || CASE k.kind WHEN 'new' THEN v_product[1 + floor(cardinality(v_product) * @extschema@.demo_random(seed, d.kd + 35))::integer]
                            WHEN 'expansion' THEN v_product[1 + floor(cardinality(v_product) * @extschema@.demo_random(seed, d.kd + 35))::integer]
                                                  || ' expansion'
                            ELSE 'Renewal ' || extract(year FROM k.ec0) END AS name,
           v_product[1 + floor(cardinality(v_product) * @extschema@.demo_random(seed, d.kd + 35))::integer] AS product
      FROM demo_deal d
      JOIN demo_dk k USING (id)
      JOIN demo_cur cu ON cu.code = d.currency
      JOIN demo_account a ON a.account_id = d.account_id
      JOIN demo_rep r ON r.rep_id = d.owner0
      JOIN demo_acc_contact ac ON ac.account_id = d.account_id
      JOIN (SELECT DISTINCT ON (p.id) p.id, p.skind, p.at FROM demo_path p ORDER BY p.id, p.ord DESC) f USING (id);
    ANALYZE demo_opp;

    -- Forecast-field history: a few changes spread over each deal's open
    -- life (close date pushed or pulled in, amount up or down, one owner
    -- change at most, a forecast category override), and for most closed
    -- deals a last snapshot at the close that sets the close date to the
    -- real one.  Values chain: a push moves the close date from the later
    -- of the current one and the day of the change, so with A the running
    -- sum of the moves, ec = A + max(ec0, max over pushes of (day - A
    -- before the push)).
    CREATE TEMP TABLE demo_hist ON COMMIT DROP AS
    WITH b AS (
        SELECT o.id, (8::bigint << 40) + o.i::bigint * 64 AS kh, o.created_at, o.closed_at,
               coalesce(o.closed_at, v_end) AS end_at, o.amount0, o.digits,
               o.ec0 - DATE '2000-01-01' AS ec0, o.owner0, o.owner_idx, o.rid,
               CASE WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.45 THEN 0 WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.72 THEN 1
                    WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.87 THEN 2 WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.95 THEN 3
                    ELSE 4 + floor(2 * @extschema@.demo_random(seed, o.kd + 41))::integer END AS n_chg
          FROM demo_opp o
    ), c AS (
        -- one change per stratum of the life, so they come in order
        SELECT b.*, g.k,
               b.created_at + interval '1 second'
                   * floor(3600 + (extract(epoch FROM b.end_at - b.created_at)::float8 - 3600)
                                  * (g.k - 1 + @extschema@.demo_random(seed, b.kh + g.k * 8)) / b.n_chg) AS at,
               CASE WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.40 THEN 'push'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.50 THEN 'pull'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.65 THEN 'up'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.80 THEN 'down'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.90 THEN 'owner'
                    ELSE 'forecast' END AS typ0
          FROM b
         CROSS JOIN LATERAL generate_series(1, b.n_chg) g(k)
         WHERE b.end_at - b.created_at > interval '2 hours'
        UNION ALL
        SELECT b.*, 7, b.closed_at, 'close'
          FROM b
         WHERE b.closed_at IS NOT NULL AND @extschema@.demo_random(seed, b.kh + 7 * 8) < 0.7
    ), c2 AS (
        -- the first owner change only, and only with someone to hand over to
        SELECT c.*, width_bucket(c.at::date, cv.hires) AS n_elig, cv.reps,
               count(*) FILTER (WHERE c.typ0 = 'owner') OVER (PARTITION BY c.id ORDER BY c.k) AS owner_rank
          FROM c
          JOIN demo_cover cv ON cv.rid = c.rid AND cv.role = 'ae'
    ), c3 AS (
        SELECT c2.*,
               CASE WHEN t.typ = 'push' THEN 14 + floor(50 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 3))::integer
                    WHEN t.typ = 'pull' THEN -(7 + floor(21 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 3))::integer)
                    ELSE 0 END AS a,
               CASE WHEN t.typ = 'push' THEN c2.at::date - DATE '2000-01-01' END AS d,
               CASE WHEN t.typ = 'up' THEN ln(1.1 + 0.4 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 4))
                    WHEN t.typ = 'down' THEN ln(0.6 + 0.35 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 4))
                    ELSE 0 END AS lm,
               CASE WHEN t.typ = 'owner'
                    THEN c2.reps[(c2.owner_idx + floor((c2.n_elig - 1) * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 2))::integer)
                                 % c2.n_elig + 1] END AS new_owner,
               CASE WHEN t.typ = 'forecast'
                    THEN CASE WHEN @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 5) < 0.5 THEN 'commit'
                              WHEN @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 5) < 0.8 THEN 'best_case' END END AS fc,
               t.typ
          FROM c2
         CROSS JOIN LATERAL (SELECT CASE WHEN c2.typ0 = 'owner' AND (c2.owner_rank > 1 OR c2.n_elig < 2)
                                         THEN 'push' ELSE c2.typ0 END AS typ) t
    ), c4 AS (
        SELECT c3.id, c3.k, c3.at, c3.typ, c3.fc, c3.amount0, c3.digits, c3.ec0, c3.owner0, c3.closed_at,
               c3.a, c3.d,
               sum(c3.a) OVER w AS acc,
               sum(c3.lm) OVER w AS lm,
               max(c3.new_owner) OVER w AS owner1,
               count(*) FILTER (WHERE c3.typ IN ('forecast', 'close')) OVER w AS fc_group
          FROM c3
        WINDOW w AS (PARTITION BY c3.id ORDER BY c3.k)
    ), c5 AS (
        SELECT c4.*, max(c4.d - (c4.acc - c4.a)) OVER (PARTITION BY c4.id ORDER BY c4.k) AS floor_d
          FROM c4
    )
    SELECT DISTINCT ON (x.id, x.changed_at) x.*
      FROM (SELECT c5.id, c5.k, c5.at AS changed_at,
                   CASE WHEN c5.lm = 0 THEN c5.amount0
                        ELSE greatest(power(10::numeric, -c5.digits),
                                      round((c5.amount0::float8 * exp(c5.lm))::numeric, c5.digits)) END AS amount,
                   CASE WHEN c5.typ = 'close' THEN c5.closed_at::date
                        ELSE DATE '2000-01-01' + (c5.acc + greatest(c5.ec0, c5.floor_d))::integer END AS expected_close,
                   first_value(c5.fc) OVER (PARTITION BY c5.id, c5.fc_group ORDER BY c5.k) AS forecast_category,
                   coalesce(c5.owner1, c5.owner0) AS owner_id
              FROM c5
            UNION ALL
            SELECT o.id, 0, o.created_at, o.amount0, o.ec0, NULL, o.owner0 FROM demo_opp o) x
     ORDER BY x.id, x.changed_at, x.k DESC;
    CREATE INDEX ON demo_hist (id, changed_at);
    ANALYZE demo_hist;

    -- The deal's values at until, and when its owner changed.
    CREATE TEMP TABLE demo_last ON COMMIT DROP AS
    SELECT DISTINCT ON (h.id) h.* FROM demo_hist h ORDER BY h.id, h.changed_at DESC;
    CREATE TEMP TABLE demo_owner ON COMMIT DROP AS
    SELECT DISTINCT ON (h.id) h.id, h.changed_at AS chg_at, h.owner_id AS owner1
      FROM demo_hist h JOIN demo_opp o USING (id)
     WHERE h.owner_id <> o.owner0
     ORDER BY h.id, h.changed_at;

    -- Leads: one behind most new deals (converted when the deal was
    -- created), and as many again that were disqualified, qualified and
    -- left, or never worked.
    CREATE TEMP TABLE demo_lead ON COMMIT DROP AS
    WITH conv AS (
        SELECT o.i AS n, 1 AS src, (9::bigint << 40) + o.i::bigint * 16 AS kl, o.id AS opp_id, o.account_id,
               o.rid, o.source,
               o.created_at - interval '1 second'
                   * floor(86400 * (0.2 + 30 * power(@extschema@.demo_random(seed, (9::bigint << 40) + o.i::bigint * 16), 2))) AS created_at,
               o.created_at AS converted_at
          FROM demo_opp o
         WHERE o.from_lead
    ), conv2 AS (
        SELECT c.*,
               CASE WHEN @extschema@.demo_random(seed, c.kl + 1) < 0.95
                    THEN c.created_at + (c.converted_at - c.created_at) * (0.3 + 0.6 * @extschema@.demo_random(seed, c.kl + 2)) END AS qualified_at,
               NULL::timestamp AS disqualified_at
          FROM conv c
    ), other AS (
        SELECT g.n, 2 AS src, (9::bigint << 40) + (n_opportunities + g.n)::bigint * 16 AS kl
          FROM generate_series(1, greatest(0, round(1.6 * n_opportunities)::integer
                                              - (SELECT count(*) FROM conv)::integer)) g(n)
    ), other2 AS (
        SELECT o.*, a.account_id,
               coalesce(a.rid, width_bucket(@extschema@.demo_random(seed, o.kl + 1), ARRAY[0, 0.40, 0.70, 0.85, 0.95]::float8[])) AS rid,
               v_source[width_bucket(@extschema@.demo_random(seed, o.kl + 2), ARRAY[0, 0.34, 0.54, 0.60, 0.68, 0.82]::float8[])] AS source,
               v_start - interval '30 days'
                 + interval '1 second' * floor(extract(epoch FROM v_end - v_start + interval '30 days')::float8
                                               * ln(1 + @extschema@.demo_random(seed, o.kl + 4) * (exp(v_growth) - 1)) / v_growth) AS created_at
          FROM other o
          LEFT JOIN demo_account a ON @extschema@.demo_random(seed, o.kl + 3) < 0.4
                                  AND a.account_id = 1 + floor(v_n_acc * @extschema@.demo_random(seed, o.kl + 5))::integer
    ), other3 AS (
        SELECT o.n, o.src, o.kl, NULL::bigint AS opp_id, o.account_id, o.rid, o.source, o.created_at,
               NULL::timestamp AS converted_at,
               CASE WHEN @extschema@.demo_random(seed, o.kl + 6) >= 0.48 AND @extschema@.demo_random(seed, o.kl + 6) < 0.73
                      OR (@extschema@.demo_random(seed, o.kl + 6) < 0.48 AND @extschema@.demo_random(seed, o.kl + 7) < 0.25)
                    THEN o.created_at + interval '1 second' * floor(86400 * (0.5 + 15 * power(@extschema@.demo_random(seed, o.kl + 8), 2))) END
                   AS qualified_at,
               CASE WHEN @extschema@.demo_random(seed, o.kl + 6) < 0.48
                    THEN o.created_at + interval '1 second' * floor(86400 * (1 + 40 * power(@extschema@.demo_random(seed, o.kl + 9), 2))) END
                   AS disqualified_at
          FROM other2 o
    ), all_leads AS (
        SELECT n, src, kl, opp_id, account_id, rid, source, created_at, converted_at,
               qualified_at, disqualified_at FROM conv2
        UNION ALL
        SELECT n, src, kl, opp_id, account_id, rid, source, created_at, converted_at,
               CASE WHEN qualified_at < v_end AND qualified_at < coalesce(disqualified_at, 'infinity') THEN qualified_at END,
               CASE WHEN disqualified_at < v_end THEN disqualified_at END
          FROM other3
    )
    SELECT row_number() OVER (ORDER BY l.created_at, l.src, l.n) AS lead_id, l.*,
           CASE WHEN @extschema@.demo_random(seed, l.kl + 10) < 0.82 AND width_bucket(l.created_at::date, cv.hires) > 0
                THEN cv.reps[1 + floor(width_bucket(l.created_at::date, cv.hires)
                                       * @extschema@.demo_random(seed, l.kl + 11))::integer] END AS rep_id,
           -- the SDR works a lead until it is decided, or three weeks
           least(coalesce(least(l.qualified_at, l.disqualified_at, l.converted_at), l.created_at + interval '21 days'),
                 v_end) AS worked_until,
           ac.first_contact, ac.n_contact
      FROM all_leads l
      JOIN demo_cover cv ON cv.rid = l.rid AND cv.role = 'sdr'
      LEFT JOIN demo_acc_contact ac USING (account_id);

    v_t := sales_kpi_internal.demo_progress('deals generated, with their history, accounts and people', (SELECT count(*) FROM demo_opp), v_t);

    -- Now the tables, parents first.
    INSERT INTO @extschema@.account (account_id, name, industry, segment, region, created_at)
    SELECT a.account_id, a.name, a.industry, a.segment, r.region,
           coalesce(least(f.first_deal, l.first_lead)
                      - interval '1 second' * floor(86400 * (1 + 240 * @extschema@.demo_random(seed, a.ka + 20))),
                    v_start - interval '1 year'
                      + interval '1 second' * floor(extract(epoch FROM v_end - v_start + interval '1 year')::float8
                                                    * @extschema@.demo_random(seed, a.ka + 21)))
             AT TIME ZONE 'UTC'
      FROM demo_account a
      JOIN demo_region r USING (rid)
      LEFT JOIN (SELECT account_id, min(created_at) AS first_deal FROM demo_opp GROUP BY account_id) f USING (account_id)
      LEFT JOIN (SELECT account_id, min(created_at) AS first_lead FROM demo_lead GROUP BY account_id) l USING (account_id)
     ORDER BY a.account_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('account', v_n, v_t);

    INSERT INTO @extschema@.contact (contact_id, account_id, name, title, role)
    SELECT contact_id, account_id, name, title, role FROM demo_contact ORDER BY contact_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('contact', v_n, v_t);

    INSERT INTO @extschema@.opportunity
           (opportunity_id, pipeline_id, account_id, owner_id, name, kind, amount, currency, source,
            competitor, created_at, expected_close, closed_at, stage_id, lost_reason, forecast_category,
            stage_entered_at, snapshot_at, product)
    SELECT o.id, o.pipeline_id, o.account_id, l.owner_id, o.name, o.kind, l.amount, o.currency, o.source,
           o.competitor, o.created_at AT TIME ZONE 'UTC', l.expected_close,
           CASE WHEN f.skind <> 'open' THEN f.at AT TIME ZONE 'UTC' END, f.stage_id,
           o.lost_reason, l.forecast_category, f.at AT TIME ZONE 'UTC', l.changed_at AT TIME ZONE 'UTC',
           o.product
      FROM demo_opp o
      JOIN demo_last l USING (id)
      JOIN (SELECT DISTINCT ON (p.id) p.id, p.stage_id, p.skind, p.at
              FROM demo_path p ORDER BY p.id, p.ord DESC) f USING (id)
     ORDER BY o.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('opportunity', v_n, v_t);

    -- All stage events in one statement; each carries the deal's amount
    -- and owner at that moment.  Ids follow time; rows go in deal by deal
    -- (local foreign key look-ups and index inserts).
    INSERT INTO @extschema@.stage_event (stage_event_id, opportunity_id, stage_id, entered_at, amount, rep_id)
    SELECT row_number() OVER (ORDER BY p.at, p.id, p.ord), p.id, p.stage_id,
           p.at AT TIME ZONE 'UTC', h.amount, h.owner_id
      FROM demo_path p
     CROSS JOIN LATERAL (SELECT h.amount, h.owner_id
                           FROM demo_hist h
                          WHERE h.id = p.id AND h.changed_at <= p.at
                          ORDER BY h.changed_at DESC
                          LIMIT 1) h
     ORDER BY p.id, p.ord;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('stage_event', v_n, v_t);

    INSERT INTO @extschema@.opportunity_history
           (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id)
    SELECT h.id, h.changed_at AT TIME ZONE 'UTC', h.amount, h.expected_close, h.forecast_category, h.owner_id
      FROM demo_hist h
     ORDER BY h.id, h.changed_at;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('opportunity_history', v_n, v_t);

    SELECT format('opportunity %s: %s', o.opportunity_id,
                  CASE WHEN e.stage_id IS DISTINCT FROM o.stage_id THEN 'stage differs from its newest event'
                       ELSE 'forecast fields differ from the newest history row' END)
      INTO v_bad
      FROM @extschema@.opportunity o
      LEFT JOIN (SELECT DISTINCT ON (opportunity_id) opportunity_id, stage_id, entered_at
                   FROM @extschema@.stage_event
                  ORDER BY opportunity_id, entered_at DESC, stage_event_id DESC) e USING (opportunity_id)
      LEFT JOIN (SELECT DISTINCT ON (opportunity_id) *
                   FROM @extschema@.opportunity_history
                  ORDER BY opportunity_id, changed_at DESC) h USING (opportunity_id)
     WHERE (e.stage_id, e.entered_at) IS DISTINCT FROM (o.stage_id, o.stage_entered_at)
        OR (h.amount, h.expected_close, h.forecast_category, h.owner_id, h.changed_at)
           IS DISTINCT FROM (o.amount, o.expected_close, o.forecast_category, o.owner_id, o.snapshot_at)
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'load_demo produced an inconsistent deal: %', v_bad
            USING ERRCODE = 'internal_error';
    END IF;

    INSERT INTO @extschema@.lead (lead_id, created_at, source, rep_id, account_id, qualified_at,
                                  disqualified_at, converted_at, opportunity_id)
    SELECT lead_id, created_at AT TIME ZONE 'UTC', source, rep_id, account_id, qualified_at AT TIME ZONE 'UTC',
           disqualified_at AT TIME ZONE 'UTC', converted_at AT TIME ZONE 'UTC', opp_id
      FROM demo_lead
     ORDER BY lead_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('lead', v_n, v_t);

    -- One to four people of the account per deal; won deals more often
    -- involve the first contact, usually the decision maker.
    INSERT INTO @extschema@.opportunity_contact (opportunity_id, contact_id, role)
    SELECT x.id, c.contact_id, CASE WHEN @extschema@.demo_random(seed, x.ko + 3 + g.t) >= 0.1 THEN c.role END
      FROM (SELECT o.id, o.final_kind, o.n_contact, o.first_contact, (17::bigint << 40) + o.i::bigint * 16 AS ko
              FROM demo_opp o) x
     CROSS JOIN LATERAL (SELECT 1 + floor(least(x.n_contact, 4) * @extschema@.demo_random(seed, x.ko))::integer AS n,
                                CASE WHEN x.final_kind = 'won' AND @extschema@.demo_random(seed, x.ko + 1) < 0.6 THEN 0
                                     ELSE floor(x.n_contact * @extschema@.demo_random(seed, x.ko + 2))::integer END AS s) p
     CROSS JOIN LATERAL generate_series(0, p.n - 1) g(t)
      JOIN demo_contact c ON c.contact_id = x.first_contact + (p.s + g.t) % x.n_contact
     ORDER BY 1, 2;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('opportunity_contact', v_n, v_t);

    -- Milestones: reached during the stay in their stage, most required
    -- ones before moving forward, fewer before a regression or a loss,
    -- some of a skipped stage's, and in the current stage more the longer
    -- the deal has sat there.  Completion times keep the owner's office
    -- hours when they fit the stay.
    CREATE TEMP TABLE demo_me ON COMMIT DROP AS
    WITH stay AS (
        SELECT p.id, p.ord, p.pos, p.at, lead(p.at) OVER w AS left_at, lead(p.skind) OVER w AS next_kind,
               lead(p.pos) OVER w AS next_pos
          FROM demo_path p
        WINDOW w AS (PARTITION BY p.id ORDER BY p.ord)
    ), s AS (
        SELECT st.*, o.i, o.pipeline_id, o.final_kind, o.tz,
               CASE WHEN st.next_kind = 'won' THEN o.n_open + 1 ELSE st.next_pos END AS next_eff
          FROM stay st
          JOIN demo_opp o USING (id)
         WHERE st.pos IS NOT NULL
    ), cand AS (
        SELECT s.id, s.i, s.ord, s.at, coalesce(s.left_at, v_end) AS left_at, s.final_kind, s.tz, m.milestone_id,
               m.required, m.position, m.n_in_stage, m.akind,
               CASE WHEN s.left_at IS NULL THEN 'current' WHEN s.next_kind = 'lost' THEN 'lost'
                    WHEN s.next_eff > s.pos THEN 'forward' ELSE 'back' END AS how
          FROM s
          JOIN demo_ms m ON m.pipeline_id = s.pipeline_id AND m.stage_pos = s.pos
        UNION ALL
        SELECT s.id, s.i, s.ord, s.at, s.left_at, s.final_kind, s.tz, m.milestone_id, m.required, m.position,
               m.n_in_stage, m.akind, 'skipped'
          FROM s
          JOIN demo_ms m ON m.pipeline_id = s.pipeline_id AND m.stage_pos > s.pos AND m.stage_pos < s.next_eff
         WHERE s.left_at IS NOT NULL
    ), keyed AS (
        SELECT c.*, c.i::bigint * 65536 + c.ord * 64 + c.milestone_id AS km FROM cand c
    ), done AS MATERIALIZED (
        SELECT c.*,
               c.at + (c.left_at - c.at) * ((c.position - 0.95 + 0.9 * @extschema@.demo_random(seed, (13::bigint << 40) + c.km))
                                            / c.n_in_stage) AS t0
          FROM keyed c
         WHERE @extschema@.demo_random(seed, (12::bigint << 40) + c.km)
               < CASE c.how
                   WHEN 'forward' THEN CASE WHEN NOT c.required THEN 0.45 WHEN c.final_kind = 'won' THEN 0.95 ELSE 0.85 END
                   WHEN 'skipped' THEN CASE WHEN c.required THEN 0.35 ELSE 0.15 END
                   WHEN 'current' THEN CASE WHEN c.required THEN 0.85 ELSE 0.4 END
                                       * least(1, extract(epoch FROM c.left_at - c.at)::float8 / (14 * 86400))
                   ELSE CASE WHEN c.required THEN 0.5 ELSE 0.25 END END
    ), snapped AS MATERIALIZED (
        SELECT w.id, w.milestone_id, w.akind, w.at, w.left_at, w.t0,
               (((w.t0 AT TIME ZONE 'UTC') AT TIME ZONE w.tz)::date
                  + interval '1 second' * floor(3600 * (9 + 8 * @extschema@.demo_random(seed, (19::bigint << 40) + w.km))))
                 AT TIME ZONE w.tz AT TIME ZONE 'UTC' AS t1
          FROM done w
    )
    SELECT row_number() OVER (ORDER BY x.id, x.milestone_id) AS me_no, x.*
      FROM (SELECT DISTINCT ON (s.id, s.milestone_id) s.id, s.milestone_id, s.akind,
                   date_trunc('second', CASE WHEN s.t1 >= s.at AND s.t1 < s.left_at THEN s.t1 ELSE s.t0 END)
                       AS completed_at
              FROM snapped s
             ORDER BY s.id, s.milestone_id, completed_at) x;

    INSERT INTO @extschema@.milestone_event (opportunity_id, milestone_id, completed_at)
    SELECT id, milestone_id, completed_at AT TIME ZONE 'UTC' FROM demo_me ORDER BY id, milestone_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('milestone_event', v_n, v_t);

    -- Activities: everyday touches over each deal's life (more for busy
    -- reps, won deals and long cycles), the step that reached some of the
    -- milestones, and SDR calls and emails on leads.  Times follow the rep's
    -- local working pattern (the hour drawn in the rep's zone, most weekend
    -- work moved to Friday or Monday); calls connect about a third of the
    -- time, more often in the morning and late afternoon.
    INSERT INTO @extschema@.activity (activity_id, rep_id, opportunity_id, account_id, contact_id, kind,
                                      occurred_at, duration_s, connected, milestone_id)
    WITH deal_touch AS (
        SELECT 1 AS src, o.id AS ent, g.k, (10::bigint << 40) + o.i::bigint * 1024 + g.k * 16 AS ka,
               o.id AS opp_id, o.account_id, o.created_at AS lo,
               least(coalesce(o.closed_at + interval '2 days', v_end), v_end) AS hi,
               NULL::bigint AS milestone_id, NULL::text AS akind, o.owner0 AS rep_id, o.first_contact, o.n_contact
          FROM demo_opp o
          JOIN demo_rep r ON r.rep_id = o.owner0
         CROSS JOIN LATERAL generate_series(1, least(60, 1 + floor(
                 @extschema@.demo_random(seed, o.kd + 50) * r.hustle * CASE o.final_kind WHEN 'won' THEN 1.3 WHEN 'lost' THEN 0.9 ELSE 1 END
                 * (0.18 + 0.35 * power(extract(epoch FROM coalesce(o.closed_at, v_end) - o.created_at)::float8 / 86400,
                                       0.6))
               )::integer)) g(k)
    ), touch AS (
        SELECT t.src, t.ent, t.k, t.ka, t.opp_id, t.account_id, t.lo, t.hi, t.milestone_id, t.akind,
               t.lo + (t.hi - t.lo) * @extschema@.demo_random(seed, t.ka) AS t0, t.rep_id, t.first_contact, t.n_contact
          FROM deal_touch t
        UNION ALL
        SELECT 2, m.id, m.milestone_id::integer, (20::bigint << 40) + m.me_no * 16, m.id, o.account_id,
               m.completed_at, m.completed_at, m.milestone_id, m.akind, m.completed_at, o.owner0,
               o.first_contact, o.n_contact
          FROM demo_me m
          JOIN demo_opp o USING (id)
         WHERE @extschema@.demo_random(seed, (20::bigint << 40) + m.me_no * 16 + 15) < 0.35
        UNION ALL
        SELECT 3, l.lead_id, g.k, (11::bigint << 40) + l.lead_id * 64 + g.k * 16, NULL, l.account_id,
               l.created_at, l.worked_until, NULL, NULL,
               l.created_at + (l.worked_until - l.created_at) * @extschema@.demo_random(seed, (11::bigint << 40) + l.lead_id * 64 + g.k * 16),
               l.rep_id, l.first_contact, l.n_contact
          FROM demo_lead l
         CROSS JOIN LATERAL generate_series(1, floor(3 * @extschema@.demo_random(seed, (11::bigint << 40) + l.lead_id * 64))::integer) g(k)
         WHERE l.rep_id IS NOT NULL
    ), kinded AS MATERIALIZED (
        SELECT t.src, t.ent, t.k, t.ka, t.opp_id, t.account_id, t.lo, t.hi, t.milestone_id, x.rep_id,
               t.first_contact, t.n_contact, t.t0,
               r.skill, coalesce(r.timezone, r.region_zone) AS tz, r.skill >= 0.8 AS top,
               coalesce(t.akind,
                        CASE WHEN t.src = 3 THEN CASE WHEN @extschema@.demo_random(seed, t.ka + 1) < 0.7 THEN 'call' ELSE 'email' END
                             ELSE (ARRAY['call', 'email', 'meeting', 'demo', 'proposal', 'content', 'other'])
                                  [width_bucket(@extschema@.demo_random(seed, t.ka + 1), ARRAY[0, 0.55, 0.75, 0.84, 0.88, 0.90, 0.96]::float8[])]
                        END) AS kind
          FROM touch t
          -- the deal's owner at the time
          LEFT JOIN demo_owner oc ON oc.id = t.opp_id
         CROSS JOIN LATERAL (SELECT CASE WHEN oc.chg_at <= t.t0 THEN oc.owner1 ELSE t.rep_id END AS rep_id) x
          JOIN demo_rep r ON r.rep_id = x.rep_id
    ), localized AS MATERIALIZED (
        SELECT k.*, ((k.t0 AT TIME ZONE 'UTC') AT TIME ZONE k.tz) AS lt0,
               width_bucket(@extschema@.demo_random(seed, k.ka + 2),
                            CASE WHEN k.kind = 'call' AND k.top THEN v_h_call_top
                                 WHEN k.kind = 'call' THEN v_h_call
                                 WHEN k.kind IN ('email', 'content') THEN v_h_mail
                                 ELSE v_h_work END) - 1 AS hour
          FROM kinded k
    ), moved AS MATERIALIZED (
        -- the local time at the drawn hour, most weekend work moved to a
        -- weekday of the same week, and back to UTC
        SELECT l.*, w.lt1, w.lt1 AT TIME ZONE l.tz AT TIME ZONE 'UTC' AS t1
          FROM localized l
         CROSS JOIN LATERAL (
               SELECT (l.lt0::date
                       - CASE WHEN extract(isodow FROM l.lt0) < 6 OR @extschema@.demo_random(seed, l.ka + 3) >= 0.85 THEN 0
                              ELSE extract(isodow FROM l.lt0)::integer - 5 + floor(5 * @extschema@.demo_random(seed, l.ka + 4))::integer END)
                      + interval '1 second' * (l.hour * 3600 + floor(3600 * @extschema@.demo_random(seed, l.ka + 5))) AS lt1) w
    ), timed AS MATERIALIZED (
        -- the working-hours time when it falls in the deal's (lead's) life,
        -- else the plain one; milestone steps keep the milestone's time
        SELECT m.*, date_trunc('second', CASE WHEN c.fits THEN m.t1 ELSE m.t0 END) AS occurred_at,
               CASE WHEN c.fits THEN m.lt1 ELSE m.lt0 END AS lt
          FROM moved m
         CROSS JOIN LATERAL (SELECT m.src <> 2 AND m.t1 >= m.lo AND m.t1 < m.hi AS fits) c
    ), done AS (
        SELECT t.*, row_number() OVER (ORDER BY t.occurred_at, t.src, t.ent, t.k) AS activity_id,
               CASE WHEN t.kind <> 'call' THEN NULL
                    WHEN t.src = 2 THEN true
                    ELSE @extschema@.demo_random(seed, t.ka + 8) < least(0.8, 0.27 * exp(0.12 * t.skill)
                                                * CASE WHEN extract(hour FROM t.lt) IN (8, 9, 10, 16, 17) THEN 1.25
                                                       ELSE 0.85 END
                                                * CASE WHEN extract(isodow FROM t.lt) >= 6 THEN 0.6 ELSE 1 END
                                                * CASE WHEN t.src = 3 THEN 0.75 ELSE 1 END) END AS connected
          FROM timed t
    )
    -- ids follow time; rows go in deal by deal, which keeps the foreign
    -- key look-ups and the per-deal index local
    SELECT d.activity_id, d.rep_id, d.opp_id, d.account_id,
           CASE WHEN d.first_contact IS NOT NULL AND @extschema@.demo_random(seed, d.ka + 6) < 0.85
                THEN d.first_contact + floor(d.n_contact * @extschema@.demo_random(seed, d.ka + 7))::integer END,
           d.kind, d.occurred_at AT TIME ZONE 'UTC',
           CASE d.kind
             WHEN 'call' THEN CASE WHEN d.connected
                                   THEN least(5400, round(30 + 240 * exp(0.8 * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, d.ka + 9)))
                                                                          * cos(2 * pi() * @extschema@.demo_random(seed, d.ka + 10)))))::integer
                                   ELSE floor(5 + 50 * @extschema@.demo_random(seed, d.ka + 9))::integer END
             WHEN 'meeting' THEN 900 * (2 + floor(3 * @extschema@.demo_random(seed, d.ka + 9))::integer)
             WHEN 'demo' THEN 2700 + floor(2700 * @extschema@.demo_random(seed, d.ka + 9))::integer
           END,
           d.connected, d.milestone_id
      FROM done d
     ORDER BY d.opp_id, d.occurred_at, d.activity_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('activity', v_n, v_t);

    -- Transcripts of about one connected call in ten: alternating turns
    -- with some monologues, small pauses and a few overlaps, stretched to
    -- the call's length.  Skilled reps talk less, ask more and pause
    -- longer; price comes up at some point of most calls, early in calls of
    -- deals that were lost.  Chinese for Greater China accounts.
    INSERT INTO @extschema@.utterance (activity_id, seq, speaker, start_ms, end_ms, text)
    WITH calls AS (
        SELECT a.activity_id, (18::bigint << 40) + a.activity_id * 512 AS ku, r.skill,
               coalesce(ac.rid = 4, false) AS cn, o.final_kind, a.duration_s * 1000.0 AS dur_ms
          FROM @extschema@.activity a
          JOIN demo_rep r ON r.rep_id = a.rep_id
          LEFT JOIN demo_account ac ON ac.account_id = a.account_id
          LEFT JOIN demo_opp o ON o.id = a.opportunity_id
         WHERE a.kind = 'call' AND a.connected AND a.duration_s >= 120
           AND @extschema@.demo_random(seed, (18::bigint << 40) + a.activity_id * 512) < 0.10
    ), shape AS (
        -- 10 to 40 turns, more in longer calls
        SELECT c.*, least(40, greatest(10, round(c.dur_ms / 12000 * (0.6 + 0.8 * @extschema@.demo_random(seed, c.ku + 1)))))::integer AS n_turn,
               CASE WHEN @extschema@.demo_random(seed, c.ku + 2) < 0.25 THEN NULL
                    ELSE CASE WHEN c.final_kind = 'lost' THEN power(@extschema@.demo_random(seed, c.ku + 3), 1.8)
                              ELSE power(@extschema@.demo_random(seed, c.ku + 3), 0.8) END END AS price_share,
               least(0.65, greatest(0.08, 0.3 + 0.12 * c.skill)) AS q_rate
          FROM calls c
    ), turn AS (
        SELECT s.*, g.t, s.ku + g.t * 8 AS kt,
               sum(CASE WHEN g.t > 1 AND @extschema@.demo_random(seed, s.ku + g.t * 8) < 0.72 THEN 1 ELSE 0 END)
                   OVER (PARTITION BY s.activity_id ORDER BY g.t) AS switches
          FROM shape s
         CROSS JOIN LATERAL generate_series(1, s.n_turn) g(t)
    ), spoken AS (
        SELECT t.*, x.speaker,
               CASE x.speaker
                 WHEN 'rep' THEN 6500 * exp(-0.3 * t.skill) * (0.25 + 1.5 * @extschema@.demo_random(seed, t.kt + 2))
                                 * CASE WHEN @extschema@.demo_random(seed, t.kt + 3) < 0.08 THEN 3 ELSE 1 END
                 WHEN 'customer' THEN 7000 * (0.2 + 1.6 * @extschema@.demo_random(seed, t.kt + 2))
                 ELSE 2500 * (0.5 + @extschema@.demo_random(seed, t.kt + 2)) END AS len
          FROM turn t
         CROSS JOIN LATERAL (SELECT CASE WHEN t.t > 2 AND @extschema@.demo_random(seed, t.kt + 1) < 0.02 THEN 'other'
                                         WHEN t.switches % 2 = 0 THEN 'rep'
                                         ELSE 'customer' END AS speaker) x
    ), gapped AS (
        SELECT s.*,
               CASE WHEN s.t = 1 THEN 200 + 1500 * @extschema@.demo_random(seed, s.kt + 4)
                    WHEN @extschema@.demo_random(seed, s.kt + 4) < 0.08   -- talking over the previous turn
                         THEN -0.3 * @extschema@.demo_random(seed, s.kt + 5) * lag(s.len) OVER w
                    ELSE 150 + 1500 * power(@extschema@.demo_random(seed, s.kt + 5), 2)
                         + CASE WHEN s.speaker = 'rep' THEN 250 * greatest(0, s.skill + 1) ELSE 0 END END AS gap
          FROM spoken s
        WINDOW w AS (PARTITION BY s.activity_id ORDER BY s.t)
    ), placed AS (
        SELECT g.*, sum(g.gap + g.len) OVER w AS raw_end
          FROM gapped g
        WINDOW w AS (PARTITION BY g.activity_id ORDER BY g.t)
    ), scaled AS (
        SELECT p.*, p.dur_ms / max(p.raw_end) OVER (PARTITION BY p.activity_id) AS scale
          FROM placed p
    )
    SELECT s.activity_id, s.t, s.speaker,
           round(s.scale * (s.raw_end - s.len))::integer,
           round(s.scale * s.raw_end)::integer,
           CASE s.speaker
             WHEN 'rep' THEN
               CASE WHEN s.t = 1 + floor(s.price_share * s.n_turn)
                      OR (s.price_share IS NOT NULL AND s.t > 1 + floor(s.price_share * s.n_turn) AND @extschema@.demo_random(seed, s.kt + 6) < 0.1)
                    THEN CASE WHEN s.cn
                              THEN v_rep_price_cn[1 + floor(cardinality(v_rep_price_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_rep_price[1 + floor(cardinality(v_rep_price) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                    WHEN @extschema@.demo_random(seed, s.kt + 6) < s.q_rate
                    THEN CASE WHEN s.cn
                              THEN CASE WHEN @extschema@.demo_random(seed, s.kt + 5) < 0.1   -- typed with a Latin question mark
                                        THEN pg_catalog.replace(
                                                 v_rep_q_cn[1 + floor(cardinality(v_rep_q_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer],
                                                 '？', '?')
                                        ELSE v_rep_q_cn[1 + floor(cardinality(v_rep_q_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                              ELSE v_rep_q[1 + floor(cardinality(v_rep_q) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                    ELSE CASE WHEN s.cn THEN v_rep_s_cn[1 + floor(cardinality(v_rep_s_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_rep_s[1 + floor(cardinality(v_rep_s) * @extschema@.demo_random(seed, s.kt + 7))::integer] END END
             WHEN 'customer' THEN
               CASE WHEN @extschema@.demo_random(seed, s.kt + 6) < 0.08
                    THEN CASE WHEN s.cn
                              THEN v_cus_price_cn[1 + floor(cardinality(v_cus_price_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_cus_price[1 + floor(cardinality(v_cus_price) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                    ELSE CASE WHEN s.cn THEN v_cus_cn[1 + floor(cardinality(v_cus_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_cus[1 + floor(cardinality(v_cus) * @extschema@.demo_random(seed, s.kt + 7))::integer] END END
             ELSE CASE WHEN s.cn THEN v_other_cn[1 + floor(cardinality(v_other_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                       ELSE v_other[1 + floor(cardinality(v_other) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
           END
      FROM scaled s
     ORDER BY s.activity_id, s.t;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('utterance', v_n, v_t);

    -- Won deals in the base currency at the close month's rate, credited
    -- to the owner at the win.
    CREATE TEMP TABLE demo_won ON COMMIT DROP AS
    SELECT o.id, o.i, o.account_id, o.kind, o.currency, o.digits, o.closed_at, l.amount, l.owner_id,
           l.amount * fx.rate AS amount_base
      FROM demo_opp o
      JOIN demo_last l USING (id)
      JOIN demo_fx fx ON fx.code = o.currency AND fx.month = date_trunc('month', o.closed_at)::date
     WHERE o.final_kind = 'won';

    -- Quotas per AE and fiscal quarter: what an AE of the company booked
    -- in the quarter, plus a stretch (the running quarter takes the last
    -- complete one's, grown a little); new hires ramp up.
    INSERT INTO @extschema@.quota (rep_id, period_start, period_end, amount)
    WITH q AS (
        SELECT g.q, (v_q0 + make_interval(months => 3 * g.q))::date AS qs,
               (v_q0 + make_interval(months => 3 * g.q + 3))::date AS qe
          FROM generate_series(0, 13) g(q)
         WHERE v_q0 + make_interval(months => 3 * g.q) < until
    ), cap AS (
        SELECT q.q, q.qe,
               coalesce((SELECT sum(w.amount_base) FROM demo_won w WHERE w.closed_at >= q.qs AND w.closed_at < q.qe), 0)::float8
               / greatest(1, (SELECT count(*) FROM demo_rep r WHERE r.role = 'ae' AND r.hired_on < q.qe)) AS cap
          FROM q
    ), cap2 AS (
        SELECT c.q, CASE WHEN c.qe > until THEN 1.05 * lag(c.cap) OVER (ORDER BY c.q) ELSE c.cap END AS cap
          FROM cap c
    )
    SELECT x.rep_id, x.qs, x.qe, round(x.amt::numeric, 1 - floor(log(x.amt))::integer)
      FROM (SELECT r.rep_id, q.qs, q.qe,
                   greatest(1, 1.25 * coalesce(c.cap, 0)
                               * (0.9 + 0.2 * @extschema@.demo_random(seed, (14::bigint << 40) + r.rep_id * 1024 + q.q * 32 + 31))
                               * CASE WHEN r.hired_on > q.qs THEN 0.3
                                      WHEN r.hired_on > q.qs - 91 THEN 0.5
                                      WHEN r.hired_on > q.qs - 182 THEN 0.75
                                      ELSE 1 END) AS amt
              FROM demo_rep r
              JOIN q ON r.hired_on < q.qe
              JOIN cap2 c USING (q)
             WHERE r.role = 'ae') x
     ORDER BY x.rep_id, x.qs;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('quota', v_n, v_t);

    -- Forecast submissions: a week before the quarter and every two weeks
    -- in it, commit and best case.  The rep's view of the quarter's outcome
    -- gets sharper as it goes, but their optimism stays.
    INSERT INTO @extschema@.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount)
    WITH actual AS (
        SELECT q.rep_id, q.period_start, q.period_end, q.amount AS quota,
               (q.period_start - v_q0) / 89 AS qi,
               coalesce(sum(w.amount_base), 0)::float8
                 / CASE WHEN q.period_end > until
                        THEN greatest(0.3, (until - q.period_start)::float8 / (q.period_end - q.period_start))
                        ELSE 1 END AS outcome
          FROM @extschema@.quota q
          LEFT JOIN demo_won w ON w.owner_id = q.rep_id
                              AND w.closed_at >= q.period_start AND w.closed_at < q.period_end
         GROUP BY q.rep_id, q.period_start, q.period_end, q.amount
    ), sub AS (
        SELECT a.*, s.n, r.optimism, least(1, greatest(0, s.day / 91.0)) AS progress,
               (14::bigint << 40) + a.rep_id * 1024 + a.qi * 32 + s.n * 2 AS ks,
               ((a.period_start + s.day)
                  + interval '1 second'
                    * floor(3600 * (15.5 + 3 * @extschema@.demo_random(seed, (14::bigint << 40) + a.rep_id * 1024 + a.qi * 32 + s.n * 2 + 1))))
                 AT TIME ZONE coalesce(r.timezone, r.region_zone) AT TIME ZONE 'UTC' AS submitted
          FROM actual a
          JOIN demo_rep r USING (rep_id)
         CROSS JOIN (VALUES (0, -6), (1, 3), (2, 17), (3, 31), (4, 45), (5, 59), (6, 73), (7, 84)) s(n, day)
         WHERE a.period_start + s.day >= r.hired_on
    ), said AS (
        SELECT s.*,
               greatest(0, CASE WHEN s.outcome > 0 THEN s.outcome ELSE s.quota::float8 * 0.3 * (1 - s.progress) END
                           * (1 + s.optimism * (1 - 0.5 * s.progress)
                                + 0.5 * (1 - s.progress) * (@extschema@.demo_random(seed, s.ks) - 0.5))) AS commit_amt
          FROM sub s
         WHERE s.submitted < v_end AND @extschema@.demo_random(seed, s.ks + 1 + (1::bigint << 39)) >= 0.08   -- some weeks are missed
    )
    SELECT s.rep_id, s.period_start, s.period_end, s.submitted AT TIME ZONE 'UTC', c.category,
           CASE WHEN c.amt < 1 THEN 0 ELSE round(c.amt::numeric, 2 - floor(log(c.amt))::integer) END
      FROM said s
     CROSS JOIN LATERAL (VALUES ('commit', s.commit_amt),
                                ('best_case', s.commit_amt * (1.12 + 0.3 * @extschema@.demo_random(seed, s.ks + (1::bigint << 38)))
                                              + s.quota::float8 * 0.05 * (1 - s.progress))) c(category, amt)
     ORDER BY 1, 2, 4, 5;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('forecast_submission', v_n, v_t);

    -- Recurring revenue of the accounts that bought: a twelfth of each new
    -- or expansion deal from the month after the win, drifting with small
    -- expansions and contractions; accounts churn (after a lost renewal, or
    -- at random), some come back.  Churned months are missing or zero.
    INSERT INTO @extschema@.recurring_revenue (account_id, month, mrr)
    WITH delta AS (
        SELECT w.account_id, (date_trunc('month', w.closed_at) + interval '1 month')::date AS month,
               sum(w.amount_base / 12) AS delta
          FROM demo_won w
         WHERE w.kind <> 'renewal'
         GROUP BY 1, 2
    ), acct AS (
        SELECT d.account_id, min(d.month) AS first_month, (15::bigint << 40) + d.account_id * 1024 AS kr,
               min(lr.month) AS lost_renewal
          FROM delta d
          LEFT JOIN (SELECT o.account_id, date_trunc('month', o.closed_at)::date AS month
                       FROM demo_opp o
                      WHERE o.kind = 'renewal' AND o.final_kind = 'lost') lr USING (account_id)
         GROUP BY d.account_id
    ), churn AS (
        SELECT a.*,
               coalesce(a.lost_renewal,
                        CASE WHEN @extschema@.demo_random(seed, a.kr + 1000) < 0.12
                             THEN (a.first_month
                                   + make_interval(months => 3 + floor(30 * @extschema@.demo_random(seed, a.kr + 1001))::integer))::date
                        END) AS churned
          FROM acct a
    ), churn2 AS (
        SELECT c.*,
               CASE WHEN @extschema@.demo_random(seed, c.kr + 1002) < 0.3
                    THEN (c.churned + make_interval(months => 2 + floor(8 * @extschema@.demo_random(seed, c.kr + 1003))::integer))::date
               END AS back,
               @extschema@.demo_random(seed, c.kr + 1004) < 0.6 AS gone_means_missing
          FROM churn c
    ), grid AS (
        SELECT c.*, g.m::date AS month, row_number() OVER (PARTITION BY c.account_id ORDER BY g.m) AS mi
          FROM churn2 c
         CROSS JOIN LATERAL generate_series(c.first_month::timestamp, v_month::timestamp, interval '1 month') g(m)
    ), run AS (
        SELECT g.*,
               sum(coalesce(d.delta, 0)) OVER w AS base,
               sum(CASE WHEN @extschema@.demo_random(seed, g.kr + g.mi * 2) < 0.035 THEN -0.25
                        WHEN @extschema@.demo_random(seed, g.kr + g.mi * 2) < 0.085 THEN 0.07 ELSE 0 END) OVER w AS drift
          FROM grid g
          LEFT JOIN delta d USING (account_id, month)
        WINDOW w AS (PARTITION BY g.account_id ORDER BY g.month)
    )
    SELECT r.account_id, r.month,
           CASE WHEN r.month >= r.churned AND r.month < coalesce(r.back, 'infinity') THEN 0
                ELSE round(r.base * exp(r.drift)::numeric, 2) END
      FROM run r
     WHERE r.month >= v_month - interval '35 months'
       AND NOT (r.gone_means_missing AND r.month >= r.churned AND r.month < coalesce(r.back, 'infinity'))
     ORDER BY 1, 2;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('recurring_revenue', v_n, v_t);

    -- Invoices of won deals: one, two, three or four installments in the
    -- deal's currency; most paid around the due date, some late, some in
    -- part, some not at all; nothing is paid on or after until.
    INSERT INTO @extschema@.collection (collection_id, opportunity_id, due_on, amount_due, currency, paid_on, amount_paid)
    WITH inst AS (
        SELECT w.*, (16::bigint << 40) + w.i::bigint * 64 AS kc,
               CASE WHEN @extschema@.demo_random(seed, (16::bigint << 40) + w.i::bigint * 64) < 0.5 THEN 1
                    WHEN @extschema@.demo_random(seed, (16::bigint << 40) + w.i::bigint * 64) < 0.65 THEN 2
                    WHEN @extschema@.demo_random(seed, (16::bigint << 40) + w.i::bigint * 64) < 0.9 THEN 4
                    ELSE 3 END AS n_inst
          FROM demo_won w
    ), due AS (
        SELECT i.id, i.currency, g.k, i.kc + g.k * 8 AS kk,
               i.closed_at::date + 30 + (g.k - 1) * (360 / i.n_inst) AS due_on,
               CASE WHEN g.k < i.n_inst THEN round(i.amount / i.n_inst, 2)
                    ELSE i.amount - round(i.amount / i.n_inst, 2) * (i.n_inst - 1) END AS amount_due
          FROM inst i
         CROSS JOIN LATERAL generate_series(1, i.n_inst) g(k)
    ), paid AS (
        SELECT d.*,
               CASE WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.80
                    THEN d.due_on + CASE WHEN @extschema@.demo_random(seed, d.kk + 2) < 0.15
                                         THEN 30 + floor(90 * @extschema@.demo_random(seed, d.kk + 3))::integer
                                         ELSE -10 + floor(25 * power(@extschema@.demo_random(seed, d.kk + 3), 2))::integer END
                    WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.87
                    THEN d.due_on + 10 + floor(50 * @extschema@.demo_random(seed, d.kk + 3))::integer
               END AS paid_on,
               CASE WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.80 THEN d.amount_due
                    WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.87
                    THEN round(d.amount_due * (0.3 + 0.5 * @extschema@.demo_random(seed, d.kk + 4))::numeric, 2)
                    ELSE 0 END AS amount_paid
          FROM due d
    )
    SELECT row_number() OVER (ORDER BY p.due_on, p.id, p.k), p.id, p.due_on, p.amount_due, p.currency,
           CASE WHEN p.paid_on < until THEN p.paid_on END,
           CASE WHEN p.paid_on < until THEN p.amount_paid ELSE 0 END
      FROM paid p
     ORDER BY p.due_on, p.id, p.k;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('collection', v_n, v_t);

    IF v_bulk THEN
        PERFORM set_config('session_replication_role', v_srr, true);
        FOR v_con IN
            SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
                   string_agg(format('x.%I IS NOT NULL', ca.attname), ' AND ' ORDER BY k.i) AS not_null,
                   string_agg(format('p.%I = x.%I', pa.attname, ca.attname), ' AND ' ORDER BY k.i) AS matches
              FROM pg_constraint c
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(ck, pk, i)
              JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.ck
              JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk
             WHERE c.contype = 'f' AND c.conrelid = ANY (v_tables)
             GROUP BY c.oid, c.conname, c.conrelid, c.confrelid
        LOOP
            -- MATCH SIMPLE: a row with a null key column references nothing
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s x WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s))',
                           v_con.child, v_con.not_null, v_con.parent, v_con.matches)
               INTO v_has;
            IF v_has THEN
                RAISE EXCEPTION 'load_demo produced rows that violate foreign key %', v_con.conname
                    USING ERRCODE = 'internal_error';
            END IF;
        END LOOP;
    END IF;

    -- a bulk load skipped the trigger that keeps who sees whom
    PERFORM @extschema@.refresh_rep_visibility();
    v_t := sales_kpi_internal.demo_progress('foreign keys checked, rep_visibility rebuilt', NULL, v_t);

    -- Later inserts by hand must not collide with the generated ids.
    FOR v_tab, v_col IN
        SELECT a.attrelid::regclass, a.attname
          FROM pg_attribute a
         WHERE a.attrelid = ANY (v_tables) AND a.attidentity <> ''
    LOOP
        v_seq := pg_get_serial_sequence(v_tab::text, v_col)::regclass;
        EXECUTE format('SELECT setval(%L, coalesce(max(%I), 1), max(%I) IS NOT NULL) FROM %s',
                       v_seq, v_col, v_col, v_tab);
    END LOOP;

    DROP TABLE demo_cur, demo_fx, demo_stage, demo_pipe, demo_ms, demo_region, demo_team, demo_rep,
               demo_cover, demo_account, demo_contact, demo_deal, demo_dk, demo_path, demo_win, demo_opp,
               demo_hist, demo_last, demo_owner, demo_lead, demo_me, demo_won, demo_acc_contact;

    -- the tables filled (the CRM import's own, emptied, are left out)
    FOREACH v_tab IN ARRAY v_tables LOOP
        SELECT c.relname INTO table_name FROM pg_class c WHERE c.oid = v_tab;
        CONTINUE WHEN table_name IN ('stage_mapping', 'import_run', 'import_error');
        EXECUTE format('SELECT count(*) FROM %s', v_tab) INTO row_count;
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION @extschema@.load_demo(integer, integer, date, boolean) IS
    'Fills every sales_kpi table with three years (up to until) of realistic, messy demo data built around '
    'n_opportunities deals; the same arguments give the same rows. Refuses non-empty tables unless replace is '
    'true, which first truncates them (price_term is kept). Returns the row count per table.';


-- The computed win probabilities (milestone and historical weighting) are
-- rounded to 6 decimals, so that the exact weighted sums of amounts converted
-- at rates of many decimals stay within 38 digits.
-- The deals open at as_of with their probability under each weighting.
-- The milestone and historical parts are computed only when asked for
-- (their CTEs are gated by with_milestone / with_historical); otherwise
-- their columns are null.
-- pipeline_value_open_deals reads the breakdown in the same pass: it takes
-- the dimension and returns the breakdown key and value.
DROP FUNCTION @extschema@.pipeline_value_open_deals(timestamptz, interval, integer, boolean, boolean, bigint);
CREATE FUNCTION sales_kpi_internal.pipeline_value_open_deals(as_of timestamptz, lookback interval, min_sample integer,
                                                      with_milestone boolean, with_historical boolean,
                                                      sample_ids bigint DEFAULT 50000,
                                                      dimension text DEFAULT 'company',
                                                      close_from timestamptz DEFAULT NULL,
                                                      close_to timestamptz DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, stage_id bigint, owner_id bigint,
               amount numeric, expected_close date, forecast_category text,
               time_in_stage_days double precision, stage_probability numeric,
               milestones_done integer, milestones_required integer, milestone_probability numeric,
               historical_deals bigint, historical_won bigint, historical_probability numeric,
               dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    -- the won and the open stages, as constants for the per-deal probes
    won_stages bigint[] := ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'won');
    open_stages bigint[] := ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'open');
BEGIN
    -- the stage weighting alone is the open-deal pass itself
    IF NOT with_milestone AND NOT with_historical THEN
        RETURN QUERY
        SELECT od.opportunity_id, od.pipeline_id, od.stage_id, od.owner_id, od.amount, od.expected_close,
               od.forecast_category, date_part('epoch', as_of - od.entered_stage_at) / 86400,
               od.stage_probability, NULL::integer, NULL::integer, NULL::numeric, NULL::bigint, NULL::bigint,
               NULL::numeric, od.dimension_key, od.dimension_value
          FROM sales_kpi_internal.open_deal_rows(as_of, dimension, close_from, close_to) od;
        RETURN;
    END IF;
    -- plpgsql with custom plans: the query is planned with the actual
    -- as_of and flags, so the parts not asked for are planned away
    RETURN QUERY
    WITH open_deal AS MATERIALIZED (
        -- amount: in the base currency at the rate of the as_of date (in
        -- the reporting time zone)
        SELECT od.opportunity_id, od.pipeline_id, od.stage_id, od.owner_id, od.amount,
               od.expected_close, od.forecast_category,
               date_part('epoch', as_of - od.entered_stage_at) / 86400 AS in_stage,
               od.stage_position AS position, od.stage_probability AS probability,
               od.dimension_key, od.dimension_value AS value
          FROM sales_kpi_internal.open_deal_rows(as_of, dimension, close_from, close_to) od
    ),
    -- milestone weighting: the next probability of each open stage
    next_stage AS (
        SELECT s.stage_id,
               coalesce((SELECT n.probability FROM @extschema@.stage n
                          WHERE n.pipeline_id = s.pipeline_id AND n.kind = 'open' AND n.position > s.position
                          ORDER BY n.position LIMIT 1),
                        (SELECT max(w.probability) FROM @extschema@.stage w
                          WHERE w.pipeline_id = s.pipeline_id AND w.kind = 'won'),
                        1) AS next_probability,
               (SELECT count(*) FROM @extschema@.milestone m
                 WHERE m.stage_id = s.stage_id AND m.required)::integer AS required
          FROM @extschema@.stage s
         WHERE with_milestone AND s.kind = 'open'
    ),
    -- the required milestones done by as_of: one index probe per open deal
    -- for all the required milestones of its stage
    required_milestone AS (
        SELECT m.stage_id, array_agg(m.milestone_id) AS ids
          FROM @extschema@.milestone m
         WHERE with_milestone AND m.required
         GROUP BY m.stage_id
    ),
    milestone_done AS (
        SELECT d.opportunity_id, c.done
          FROM open_deal d
          JOIN required_milestone r ON r.stage_id = d.stage_id
          CROSS JOIN LATERAL (
                SELECT count(*)::integer AS done
                  FROM @extschema@.milestone_event me
                 WHERE me.opportunity_id = d.opportunity_id AND me.milestone_id = ANY (r.ids)
                   AND me.completed_at <= as_of) c
    ),
    -- historical weighting: deals closed in [as_of - lookback, as_of) as the
    -- history stood at as_of.  A deal whose newest event is a close in the
    -- window has no event after as_of; a deal with events after as_of is
    -- rebuilt from its newest event not after as_of.  To bound the cost on
    -- big tables, only every k-th deal id is looked at, k = ceil(highest
    -- deal id / sample_ids): at most about sample_ids deals are probed.
    step AS MATERIALIZED (
        SELECT greatest(1, ceil(coalesce(max(o.opportunity_id), 0) / sample_ids::numeric))::bigint AS k
          FROM @extschema@.opportunity o
         WHERE with_historical
    ),
    sample_deal AS (
        SELECT o.opportunity_id, s.kind = 'won' AS won
          FROM @extschema@.opportunity o
          JOIN @extschema@.stage s ON s.stage_id = o.stage_id
         WHERE with_historical AND (SELECT step.k FROM step) = 1
           AND o.closed_at >= as_of - lookback AND o.closed_at < as_of
        UNION ALL
        SELECT o.opportunity_id, o.won
          FROM generate_series((SELECT step.k FROM step),
                               (SELECT max(x.opportunity_id) FROM @extschema@.opportunity x),
                               (SELECT step.k FROM step)) g(id)
          -- a probe per sampled id (OFFSET 0), not a hash of every deal
          -- closed in the window
          CROSS JOIN LATERAL (
                SELECT o.opportunity_id, o.stage_id = ANY (won_stages) AS won
                  FROM @extschema@.opportunity o
                 WHERE o.opportunity_id = g.id
                   AND o.closed_at >= as_of - lookback AND o.closed_at < as_of
                OFFSET 0) o
         WHERE with_historical AND (SELECT step.k FROM step) > 1
        UNION ALL
        SELECT m.opportunity_id, s.kind = 'won'
          FROM (SELECT DISTINCT ev.opportunity_id FROM @extschema@.stage_event ev
                 WHERE with_historical AND ev.entered_at > as_of) m
          CROSS JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = m.opportunity_id AND ev.entered_at <= as_of
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id AND s.kind IN ('won', 'lost')
         WHERE e.entered_at >= as_of - lookback AND e.entered_at < as_of
           AND m.opportunity_id % (SELECT step.k FROM step) = 0
    ),
    -- each sample deal's longest stay per open stage, in whole days; a stay
    -- runs from entering a stage to the next event.  Each deal's events are
    -- read in order through its index and windowed there: nothing sorts the
    -- events of all the deals.
    longest AS (
        SELECT st.stage_id, st.won, floor(date_part('epoch', max(st.stay)) / 86400)::integer AS days
          FROM (SELECT sd.opportunity_id, sd.won, e.stage_id, e.stay
                  FROM sample_deal sd
                  CROSS JOIN LATERAL (
                        SELECT ev.stage_id,
                               lead(ev.entered_at) OVER (ORDER BY ev.entered_at, ev.stage_event_id)
                                   - ev.entered_at AS stay
                          FROM @extschema@.stage_event ev
                         WHERE ev.opportunity_id = sd.opportunity_id AND ev.entered_at <= as_of) e) st
         WHERE st.stay IS NOT NULL AND st.stage_id = ANY (open_stages)
         GROUP BY st.opportunity_id, st.stage_id, st.won
    ),
    -- per stage and whole day d: sample deals that stayed >= d days, and
    -- how many of them won (running sums from the longest stays down)
    band AS (
        SELECT x.stage_id, x.days,
               sum(x.n) OVER w AS n_ge, sum(x.won) OVER w AS won_ge
          FROM (SELECT l.stage_id, l.days, count(*) AS n, count(*) FILTER (WHERE l.won) AS won
                  FROM longest l GROUP BY l.stage_id, l.days
                UNION ALL
                SELECT DISTINCT d.stage_id, floor(d.in_stage)::integer, 0, 0
                  FROM open_deal d WHERE with_historical) x
        WINDOW w AS (PARTITION BY x.stage_id ORDER BY x.days DESC)
    ),
    historical AS (
        SELECT b.stage_id, b.days, max(b.n_ge)::bigint AS n_ge, max(b.won_ge)::bigint AS won_ge
          FROM band b GROUP BY b.stage_id, b.days
    )
    SELECT d.opportunity_id, d.pipeline_id, d.stage_id, d.owner_id, d.amount, d.expected_close,
           d.forecast_category, d.in_stage, d.probability,
           CASE WHEN with_milestone THEN coalesce(md.done, 0) END,
           ns.required,
           -- the computed probabilities are rounded to 6 decimals: a division
           -- gives 20, which with a base amount of 10 decimals (a rate of 8)
           -- leaves the exact weighted sums no room for their integer digits
           CASE WHEN NOT with_milestone THEN NULL
                WHEN ns.required > 0
                THEN trim_scale(round(d.probability
                                      + (ns.next_probability - d.probability) * coalesce(md.done, 0) / ns.required,
                                      6))
                ELSE d.probability END,
           CASE WHEN with_historical THEN coalesce(h.n_ge, 0) END,
           CASE WHEN with_historical THEN coalesce(h.won_ge, 0) END,
           CASE WHEN NOT with_historical THEN NULL
                WHEN h.n_ge >= min_sample THEN trim_scale(round(h.won_ge::numeric / h.n_ge, 6))
                ELSE d.probability END,
           d.dimension_key, d.value
      FROM open_deal d
      LEFT JOIN next_stage ns ON ns.stage_id = d.stage_id
      LEFT JOIN milestone_done md ON md.opportunity_id = d.opportunity_id
      LEFT JOIN historical h ON h.stage_id = d.stage_id AND h.days = floor(d.in_stage)::integer;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_value_open_deals(timestamptz, interval, integer, boolean, boolean, bigint, text, timestamptz, timestamptz) IS
    'Internal: the deals open at as_of (with close_from or close_to, those expected to close in [close_from, close_to)) with their stage, milestone and historical win probabilities (the latter two only when asked for) and their breakdown key and value for a dimension (the rep: the owner at as_of).';

-- Linear write paths: no trigger query joins a transition table by a plan
-- cached for another size (old and new rows are compared with EXCEPT, deals
-- are probed by id), JIT is off for the triggers, and a deal inserted with
-- snapshot_at set (a restore) brings its own history instead of a creation
-- snapshot that its dumped one would replace.
COMMENT ON COLUMN @extschema@.opportunity.snapshot_at IS
    'When the newest opportunity_history snapshot was taken, null without one (maintained): the row says what that snapshot says, so the deal stood as its row at any instant since. A deal inserted with it set gets no creation snapshot: it brings its own history (a restore).';

CREATE OR REPLACE FUNCTION sales_kpi_internal.opportunity_after_insert()
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

CREATE OR REPLACE FUNCTION sales_kpi_internal.opportunity_after_update()
RETURNS trigger
AS 'MODULE_PATHNAME', 'opportunity_after_update'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.opportunity_after_update() IS
    'Trigger: checks an update of deals and takes its snapshots, through opportunity_after_update_general() unless the update changes no field they depend on.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.opportunity_history_before_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'opportunity_history_before_insert'
LANGUAGE C;

-- Clear errors for absurd arguments: infinite flow instants, unknown teams.
CREATE FUNCTION sales_kpi_internal.check_team(team text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF team IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.rep r WHERE r.team = check_team.team) THEN
        RAISE EXCEPTION 'argument "team": no rep is in team "%"', team
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A team is a value of sales_kpi.rep.team.';
    END IF;
    RETURN team;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_team(text) IS
    'Internal: the team when it is null or some rep''s team, else a 22023 naming the argument.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.pipeline_flow_args(from_at timestamptz, to_at timestamptz, mode text,
                                               dimension text, close_before date,
                                               OUT from_at_r timestamptz, OUT to_at_r timestamptz,
                                               OUT close_before_r date)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    to_at_r := sales_kpi_internal.finite_instant(coalesce(to_at, now()), 'to_at');
    from_at_r := sales_kpi_internal.finite_instant(coalesce(from_at, @extschema@.period_start(to_at_r, 'quarter')),
                                            'from_at');
    IF from_at_r > to_at_r THEN
        RAISE EXCEPTION 'argument "to_at" (%) must not be earlier than "from_at" (%)', to_at_r, from_at_r
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF mode IS NULL OR mode NOT IN ('primary', 'all') THEN
        RAISE EXCEPTION 'argument "mode" must be primary or all, got "%"', coalesce(mode, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- raises for an unknown dimension
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    close_before_r := coalesce(close_before,
                               (@extschema@.period_end(from_at_r, 'quarter')
                                AT TIME ZONE @extschema@.reporting_timezone())::date);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_flow_args(timestamptz, timestamptz, text, text, date) IS
    'Internal: validates the arguments of the pipeline flow functions and fills in their defaults.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.pipeline_flow_rows(p_from_at timestamptz, p_to_at timestamptz, p_mode text,
                                               p_dimension text, p_team text, p_close_before date,
                                               p_totals boolean)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, category text, deals bigint, deal_change bigint, amount numeric,
               stage_kind_start text, stage_position_start integer, amount_start numeric,
               expected_close_start date, owner_id_start bigint,
               stage_kind_end text, stage_position_end integer, amount_end numeric,
               expected_close_end date, owner_id_end bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    a record;
    v_day date;
    v_primary boolean;
BEGIN
    a := sales_kpi_internal.pipeline_flow_args(p_from_at, p_to_at, p_mode, p_dimension, p_close_before);
    PERFORM sales_kpi_internal.check_team(p_team);
    v_primary := p_mode = 'primary';
    v_day := (a.to_at_r AT TIME ZONE @extschema@.reporting_timezone())::date;
    RETURN QUERY
    WITH st AS (
        SELECT s.*,
               coalesce(@extschema@.to_base(s.amount_s, s.currency, v_day), 0) AS base_s,
               coalesce(@extschema@.to_base(s.amount_e, s.currency, v_day), 0) AS base_e,
               @extschema@.dimension_value(p_dimension, dd.pipeline, rs.name, rs.team,
                   dd.source, dd.industry, dd.segment, dd.region, dd.competitor, dd.kind, dd.product) AS dv_s,
               @extschema@.dimension_value(p_dimension, dd.pipeline, re.name, re.team,
                   dd.source, dd.industry, dd.segment, dd.region, dd.competitor, dd.kind, dd.product) AS dv_e,
               s.exists_s AND s.stage_kind_s = 'open'
                 AND (s.expected_close_s IS NULL OR s.expected_close_s < a.close_before_r) AS win_s,
               s.exists_e AND s.stage_kind_e = 'open'
                 AND (s.expected_close_e IS NULL OR s.expected_close_e < a.close_before_r) AS win_e,
               p_team IS NULL OR rs.team IS NOT DISTINCT FROM p_team AS team_s,
               p_team IS NULL OR re.team IS NOT DISTINCT FROM p_team AS team_e
          FROM sales_kpi_internal.pipeline_flow_states(a.from_at_r, a.to_at_r, p_team) s
          -- the deal's attributes only for a breakdown by one of them
          LEFT JOIN @extschema@.deal_dimensions dd
                 ON p_dimension NOT IN ('company', 'rep', 'team') AND dd.opportunity_id = s.opportunity_id
          LEFT JOIN @extschema@.rep rs ON rs.rep_id = s.owner_id_s
          LEFT JOIN @extschema@.rep re ON re.rep_id = s.owner_id_e
    ), cl AS (
        SELECT st.*,
               st.win_s AND st.team_s AS in_s,
               st.win_e AND st.team_e AS in_e,
               st.base_e - st.base_s AS delta,
               CASE WHEN st.stage_kind_s = 'open' AND st.stage_kind_e = 'open'
                    THEN sign(st.stage_position_e - st.stage_position_s) ELSE 0 END AS stage_move
          FROM st
    ), sides AS (
        SELECT cl.*,
               cl.in_s AND cl.in_e AND cl.dv_s = cl.dv_e AS stays,
               cl.in_s AND NOT (cl.in_e AND cl.dv_s = cl.dv_e) AS exits,
               cl.in_e AND NOT (cl.in_s AND cl.dv_s = cl.dv_e) AS enters,
               CASE WHEN cl.stage_kind_e = 'won' THEN 'won'
                    WHEN cl.stage_kind_e = 'lost' THEN 'lost'
                    WHEN NOT cl.win_e THEN 'pushed'
                    ELSE 'moved_out' END AS exit_cat,
               CASE WHEN NOT cl.exists_s THEN 'created'
                    WHEN cl.stage_kind_s <> 'open' THEN 'reopened'
                    WHEN NOT cl.win_s THEN 'pulled_in'
                    ELSE 'moved_in' END AS entry_cat
          FROM cl
         WHERE cl.in_s OR cl.in_e
    ), flows AS (
        -- primary: one row per deal and side, the whole change in it
        SELECT x.dv_e AS dv, x.opportunity_id,
               CASE WHEN x.delta > 0 THEN 'amount_up' WHEN x.delta < 0 THEN 'amount_down'
                    WHEN x.stage_move > 0 THEN 'advanced' WHEN x.stage_move < 0 THEN 'regressed'
                    ELSE 'unchanged' END AS category,
               0 AS deal_change, x.delta AS amount
          FROM sides x WHERE v_primary AND x.stays
        UNION ALL
        SELECT x.dv_s, x.opportunity_id, x.exit_cat, -1, -x.base_s
          FROM sides x WHERE v_primary AND x.exits
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, x.entry_cat, 1, x.base_e
          FROM sides x WHERE v_primary AND x.enters
        -- all: every change, the amount change apart from the entry or exit.
        -- The amount change is booked on the exit side when there is one
        -- (a deal moving between values changed before it left), else on
        -- the entry side; a created deal enters with its end amount.
        UNION ALL
        SELECT CASE WHEN x.exits OR x.stays THEN x.dv_s ELSE x.dv_e END, x.opportunity_id,
               CASE WHEN x.delta > 0 THEN 'amount_up' ELSE 'amount_down' END, 0, x.delta
          FROM sides x
         WHERE NOT v_primary AND x.delta <> 0 AND x.exists_s
        UNION ALL
        SELECT CASE WHEN x.exits OR x.stays THEN x.dv_s ELSE x.dv_e END, x.opportunity_id,
               CASE WHEN x.stage_move > 0 THEN 'advanced' ELSE 'regressed' END, 0, 0
          FROM sides x
         WHERE NOT v_primary AND x.stage_move <> 0
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, 'unchanged', 0, 0
          FROM sides x WHERE NOT v_primary AND x.stays AND x.delta = 0 AND x.stage_move = 0
        UNION ALL
        SELECT x.dv_s, x.opportunity_id, x.exit_cat, -1, -x.base_e
          FROM sides x WHERE NOT v_primary AND x.exits
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, x.entry_cat, 1,
               CASE WHEN x.exits OR NOT x.exists_s THEN x.base_e ELSE x.base_s END
          FROM sides x WHERE NOT v_primary AND x.enters
        -- the pipeline at both instants, for the reconciliation
        UNION ALL
        SELECT x.dv_s, x.opportunity_id, 'start', NULL, x.base_s FROM sides x WHERE x.in_s
        UNION ALL
        SELECT x.dv_e, x.opportunity_id, 'end', NULL, x.base_e FROM sides x WHERE x.in_e
    )
    -- deal by deal
    SELECT p_dimension, f.dv, a.from_at_r, a.to_at_r,
           f.opportunity_id, f.category, NULL::bigint, f.deal_change::bigint, f.amount,
           x.stage_kind_s, x.stage_position_s, CASE WHEN x.exists_s THEN x.base_s END,
           x.expected_close_s, x.owner_id_s,
           x.stage_kind_e, x.stage_position_e, x.base_e, x.expected_close_e, x.owner_id_e
      FROM flows f
      JOIN sides x ON x.opportunity_id = f.opportunity_id
     WHERE NOT p_totals
    UNION ALL
    -- or the totals per dimension value and category
    SELECT p_dimension, f.dv, a.from_at_r, a.to_at_r,
           NULL, f.category, count(*), sum(f.deal_change), sum(f.amount),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM flows f
     WHERE p_totals
     GROUP BY f.dv, f.category;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_flow_rows(timestamptz, timestamptz, text, text, text, date, boolean) IS
    'Internal: the rows of pipeline_flow_deals, or with p_totals the totals per dimension value and category for pipeline_flow.';



-- load_demo prints its progress, a NOTICE per phase.
CREATE FUNCTION sales_kpi_internal.demo_progress(phase text, row_count bigint, since timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
BEGIN
    RAISE NOTICE '%', format('load_demo: %s%s in %s s', phase,
        CASE WHEN row_count IS NOT NULL THEN format(': %s rows', to_char(row_count, 'FM999,999,999,990')) ELSE '' END,
        to_char(extract(epoch FROM now_ - since), 'FM999990.0'));
    RETURN now_;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.demo_progress(text, bigint, timestamptz) IS
    'Internal: prints one progress line of load_demo (phase, rows, seconds since the previous phase) and returns the time.';

-- Imported rows keep their CRM identity; deals may lack an account and
-- name their product.
ALTER TABLE @extschema@.opportunity ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE @extschema@.opportunity ADD COLUMN product text;
ALTER TABLE @extschema@.rep
    ADD COLUMN crm_source text,
    ADD COLUMN external_id text,
    ADD CONSTRAINT rep_external_check CHECK ((crm_source IS NULL) OPERATOR(pg_catalog.=) (external_id IS NULL));
CREATE UNIQUE INDEX rep_external_idx ON @extschema@.rep (crm_source, external_id);
COMMENT ON COLUMN @extschema@.rep.crm_source IS 'The CRM the row was imported from (null for rows written here); with external_id, unique.';
COMMENT ON COLUMN @extschema@.rep.external_id IS 'The row''s id in crm_source: an import rerun updates the row with the same pair.';
ALTER TABLE @extschema@.account
    ADD COLUMN crm_source text,
    ADD COLUMN external_id text,
    ADD CONSTRAINT account_external_check CHECK ((crm_source IS NULL) OPERATOR(pg_catalog.=) (external_id IS NULL));
CREATE UNIQUE INDEX account_external_idx ON @extschema@.account (crm_source, external_id);
COMMENT ON COLUMN @extschema@.account.crm_source IS 'The CRM the row was imported from (null for rows written here); with external_id, unique.';
COMMENT ON COLUMN @extschema@.account.external_id IS 'The row''s id in crm_source: an import rerun updates the row with the same pair.';
ALTER TABLE @extschema@.contact
    ADD COLUMN crm_source text,
    ADD COLUMN external_id text,
    ADD CONSTRAINT contact_external_check CHECK ((crm_source IS NULL) OPERATOR(pg_catalog.=) (external_id IS NULL));
CREATE UNIQUE INDEX contact_external_idx ON @extschema@.contact (crm_source, external_id);
COMMENT ON COLUMN @extschema@.contact.crm_source IS 'The CRM the row was imported from (null for rows written here); with external_id, unique.';
COMMENT ON COLUMN @extschema@.contact.external_id IS 'The row''s id in crm_source: an import rerun updates the row with the same pair.';
ALTER TABLE @extschema@.opportunity
    ADD COLUMN crm_source text,
    ADD COLUMN external_id text,
    ADD CONSTRAINT opportunity_external_check CHECK ((crm_source IS NULL) OPERATOR(pg_catalog.=) (external_id IS NULL));
CREATE UNIQUE INDEX opportunity_external_idx ON @extschema@.opportunity (crm_source, external_id);
COMMENT ON COLUMN @extschema@.opportunity.crm_source IS 'The CRM the row was imported from (null for rows written here); with external_id, unique.';
COMMENT ON COLUMN @extschema@.opportunity.external_id IS 'The row''s id in crm_source: an import rerun updates the row with the same pair.';
ALTER TABLE @extschema@.lead
    ADD COLUMN crm_source text,
    ADD COLUMN external_id text,
    ADD CONSTRAINT lead_external_check CHECK ((crm_source IS NULL) OPERATOR(pg_catalog.=) (external_id IS NULL));
CREATE UNIQUE INDEX lead_external_idx ON @extschema@.lead (crm_source, external_id);
COMMENT ON COLUMN @extschema@.lead.crm_source IS 'The CRM the row was imported from (null for rows written here); with external_id, unique.';
COMMENT ON COLUMN @extschema@.lead.external_id IS 'The row''s id in crm_source: an import rerun updates the row with the same pair.';
ALTER TABLE @extschema@.stage_event
    ADD COLUMN crm_source text,
    ADD COLUMN external_id text,
    ADD CONSTRAINT stage_event_external_check CHECK ((crm_source IS NULL) OPERATOR(pg_catalog.=) (external_id IS NULL));
CREATE UNIQUE INDEX stage_event_external_idx ON @extschema@.stage_event (crm_source, external_id);
COMMENT ON COLUMN @extschema@.stage_event.crm_source IS 'The CRM the row was imported from (null for rows written here); with external_id, unique.';
COMMENT ON COLUMN @extschema@.stage_event.external_id IS 'The row''s id in crm_source: an import rerun updates the row with the same pair.';
ALTER TABLE @extschema@.activity
    ADD COLUMN crm_source text,
    ADD COLUMN external_id text,
    ADD CONSTRAINT activity_external_check CHECK ((crm_source IS NULL) OPERATOR(pg_catalog.=) (external_id IS NULL));
CREATE UNIQUE INDEX activity_external_idx ON @extschema@.activity (crm_source, external_id);
COMMENT ON COLUMN @extschema@.activity.crm_source IS 'The CRM the row was imported from (null for rows written here); with external_id, unique.';
COMMENT ON COLUMN @extschema@.activity.external_id IS 'The row''s id in crm_source: an import rerun updates the row with the same pair.';
COMMENT ON COLUMN @extschema@.opportunity.account_id IS
    'The customer; null is allowed (real CRM exports have deals without one) and reported by data_quality_findings as missing_account.';
COMMENT ON COLUMN @extschema@.opportunity.product IS 'What was sold, as the CRM names it; the product breakdown of every KPI (''(none)'' when null).';

CREATE OR REPLACE FUNCTION sales_kpi_internal.forecast_accuracy_rows(p_from timestamptz, p_to timestamptz, p_grain text,
                                                   p_dimension text, p_as_of timestamptz, p_cutoff interval)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               period_complete boolean, commit_amount numeric, commit_submitted_at timestamptz,
               bookings numeric, accuracy double precision, bias double precision,
               mean_accuracy double precision, mean_bias double precision, periods_measured bigint,
               calibrated_commit numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    tz text := @extschema@.reporting_timezone();
    -- the periods' bounds, for the partials of the bookings
    bounds timestamptz[];
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(p_as_of, grain => p_grain);
    PERFORM sales_kpi_internal.rep_dimension(p_dimension, 'Forecasts are submitted by reps, so accuracy breaks down by rep or team only.');
    IF p_cutoff IS NULL THEN
        RAISE EXCEPTION 'argument "cutoff" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    SELECT array_agg(s.period_start ORDER BY s.period_start) || max(s.period_end) INTO bounds
      FROM sales_kpi_internal.resolve_series(p_from, p_to, p_grain, p_as_of) s;

    RETURN QUERY
    WITH series AS MATERIALIZED (
        SELECT s.period_start, s.period_end,
               (s.period_start AT TIME ZONE tz)::date AS start_date,
               (s.period_end AT TIME ZONE tz)::date AS end_date,
               s.period_end <= p_as_of AS complete
          FROM (SELECT bounds[i] AS period_start, bounds[i + 1] AS period_end
                  FROM generate_series(1, cardinality(bounds) - 1) i) s
    ), actual AS (
        -- the won deals' partials per owner at the close and period; a
        -- deal without owner counts for rep_id -1 (dimension value '(none)')
        SELECT cp.period_start, coalesce(cp.dimension_key::bigint, -1) AS rep_id,
               @extschema@.won_amount(cp.outcomes) AS bookings
          FROM sales_kpi_internal.closed_partials(bounds, p_as_of, 'rep', with_cycles => false,
                                                  won_only => true) cp
    ), committed AS (
        -- the newest commit for exactly the period, submitted by the cut-off and by as_of
        SELECT DISTINCT ON (s.period_start, f.rep_id)
               s.period_start, f.rep_id, f.amount, f.submitted_at
          FROM series s
          JOIN @extschema@.forecast_submission f
            ON f.category = 'commit'
           AND f.period_start = s.start_date AND f.period_end = s.end_date
           AND f.submitted_at <= s.period_start + p_cutoff
           AND f.submitted_at <= p_as_of
         ORDER BY s.period_start, f.rep_id, f.submitted_at DESC
    ), reps AS (
        SELECT c.rep_id FROM committed c
        UNION
        SELECT a.rep_id FROM actual a
    ), per_rep AS (
        SELECT @extschema@.dimension_value(p_dimension, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS dv,
               s.period_start, s.period_end, s.complete, c.amount, c.submitted_at, a.bookings
          FROM reps rp
          CROSS JOIN series s
          LEFT JOIN @extschema@.rep r ON r.rep_id = rp.rep_id
          LEFT JOIN committed c ON c.rep_id = rp.rep_id AND c.period_start = s.period_start
          LEFT JOIN actual a ON a.rep_id = rp.rep_id AND a.period_start = s.period_start
    ), per_group AS (
        SELECT g.dv, g.period_start, g.period_end, g.complete,
               sum(g.amount) AS commit_amount, max(g.submitted_at) AS submitted_at,
               coalesce(sum(g.bookings), 0) AS bookings
          FROM per_rep g
         GROUP BY g.dv, g.period_start, g.period_end, g.complete
    ), scored AS (
        SELECT pg.*,
               CASE WHEN pg.complete AND pg.bookings > 0
                    THEN 1 - abs(pg.commit_amount - pg.bookings)::double precision / pg.bookings::double precision
               END AS accuracy,
               CASE WHEN pg.complete AND pg.bookings > 0
                    THEN (pg.commit_amount - pg.bookings)::double precision / pg.bookings::double precision
               END AS bias
          FROM per_group pg
    ), summarized AS (
        -- the means add the periods in date order: a float sum in the
        -- order rows happen to arrive could differ in the last digit
        SELECT sc.*,
               avg(sc.accuracy) OVER w AS mean_accuracy,
               avg(sc.bias) OVER w AS mean_bias,
               count(sc.bias) OVER w AS periods_measured
          FROM scored sc
        WINDOW w AS (PARTITION BY sc.dv ORDER BY sc.period_start
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    )
    SELECT p_dimension, sm.dv, sm.period_start, sm.period_end, sm.complete,
           sm.commit_amount, sm.submitted_at, sm.bookings, sm.accuracy, sm.bias,
           sm.mean_accuracy, sm.mean_bias, sm.periods_measured,
           CASE WHEN NOT sm.complete AND 1 + sm.mean_bias > 0
                THEN round(sm.commit_amount / (1 + sm.mean_bias)::numeric, 2)
           END
      FROM summarized sm
     ORDER BY sm.dv, sm.period_start;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.forecast_accuracy_rows(timestamptz, timestamptz, text, text, timestamptz, interval) IS
    'Internal: the rows of forecast_accuracy().';
-- forecast_accuracy's bookings are the closed-deal partials of its
-- periods, won deals only: the helper that listed the won deals goes.
DROP FUNCTION sales_kpi_internal.forecast_accuracy_bookings(timestamptz, timestamptz, timestamptz);

-- Deals name their product: a breakdown of every KPI.  dimension_value
-- takes the product as an eleventh argument; the ten-argument form is
-- dropped once every caller below is replaced.
CREATE FUNCTION @extschema@.dimension_value(dimension text, pipeline text, rep text, team text,
                                            source text, industry text, segment text, region text,
                                            competitor text, kind text, product text)
RETURNS text
AS 'MODULE_PATHNAME', 'dimension_value'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.dimension_value(text, text, text, text, text, text, text, text, text, text, text) IS
    'The attribute named by dimension (company, pipeline, rep, team, source, industry, segment, region, competitor, kind, product): ''all'' for company, ''(none)'' for a missing attribute; an unknown dimension is an error.';
CREATE OR REPLACE VIEW @extschema@.deal_dimensions WITH (security_invoker = true) AS
SELECT o.opportunity_id,
       p.name AS pipeline,
       o.source,
       a.industry,
       a.segment,
       a.region,
       o.competitor,
       o.kind,
       o.product
  FROM @extschema@.opportunity o
  JOIN @extschema@.pipeline p ON p.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id
  LEFT JOIN @extschema@.account a ON a.account_id OPERATOR(pg_catalog.=) o.account_id;

-- Bad rows never take down a dashboard.  A deal or invoice in a currency
-- without a rate, removing the last rate of a currency in use, and a stage
-- event dated beyond future_tolerance() are refused when written; a date
-- before a currency's first rate converts at that rate.
COMMENT ON TABLE @extschema@.fx_rate IS
    'Multiply an amount in currency by rate to get the base currency; the newest valid_from not after the date applies, and before the first one the first. A deal or invoice in a currency without a row is refused, and so is removing the last row of a currency in use.';
-- A deal or invoice in a currency with no rate would make every KPI that
-- converts it fail: it is refused when written, naming the row.  The base
-- currency needs no rate.  A restore loads fx_rate after the deals and
-- invoices, so the check is skipped while check_function_bodies is off (as
-- pg_restore and a plain dump set it), as PostgreSQL skips its own checks
-- of references between objects while a dump loads; data_quality_findings
-- reports a row left without a rate (missing_fx_rate).
CREATE FUNCTION sales_kpi_internal.currency_rate_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    bad record;
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'currency_rate_check', 'opportunity', 'collection');
    -- (a writer under row security never skips it)
    IF NOT current_setting('check_function_bodies')::boolean
       AND NOT row_security_active(TG_RELID) THEN
        RETURN NULL;
    END IF;
    -- an update that changes no row's currency (the stage and snapshot
    -- fields the triggers keep, most edits) has nothing to check
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'opportunity' THEN
        IF NOT EXISTS (SELECT r.opportunity_id, r.currency FROM new_rows r
                       EXCEPT
                       SELECT r.opportunity_id, r.currency FROM old_rows r) THEN
            RETURN NULL;
        END IF;
    END IF;
    -- the rates the rows rely on are locked until the end of the
    -- transaction, as a foreign key locks the row it refers to: a
    -- concurrent removal of a currency's last rate waits, then sees them
    IF has_table_privilege('@extschema@.fx_rate', 'UPDATE') THEN
        PERFORM 1 FROM @extschema@.fx_rate f
         WHERE f.currency IN (SELECT DISTINCT r.currency FROM new_rows r)
           FOR KEY SHARE OF f;
    END IF;
    -- an update is checked only for the rows whose currency it changed
    -- (found with EXCEPT, linear whatever plan is cached)
    IF TG_TABLE_NAME = 'opportunity' AND TG_OP = 'INSERT' THEN
        SELECT 'opportunity ' || n.opportunity_id AS what, n.currency INTO bad
          FROM new_rows n
         WHERE n.currency <> @extschema@.base_currency()
           AND NOT EXISTS (SELECT 1 FROM @extschema@.fx_rate f WHERE f.currency = n.currency)
         ORDER BY n.opportunity_id
         LIMIT 1;
    ELSIF TG_TABLE_NAME = 'opportunity' THEN
        SELECT 'opportunity ' || n.opportunity_id AS what, n.currency INTO bad
          FROM (SELECT r.opportunity_id, r.currency FROM new_rows r
                EXCEPT
                SELECT r.opportunity_id, r.currency FROM old_rows r) n
         WHERE n.currency <> @extschema@.base_currency()
           AND NOT EXISTS (SELECT 1 FROM @extschema@.fx_rate f WHERE f.currency = n.currency)
         ORDER BY n.opportunity_id
         LIMIT 1;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT format('collection %s (opportunity %s)', n.collection_id, n.opportunity_id) AS what, n.currency
          INTO bad
          FROM new_rows n
         WHERE n.currency <> @extschema@.base_currency()
           AND NOT EXISTS (SELECT 1 FROM @extschema@.fx_rate f WHERE f.currency = n.currency)
         ORDER BY n.collection_id
         LIMIT 1;
    ELSE
        SELECT format('collection %s (opportunity %s)', n.collection_id, n.opportunity_id) AS what, n.currency
          INTO bad
          FROM (SELECT r.collection_id, r.opportunity_id, r.currency FROM new_rows r
                EXCEPT
                SELECT r.collection_id, r.opportunity_id, r.currency FROM old_rows r) n
         WHERE n.currency <> @extschema@.base_currency()
           AND NOT EXISTS (SELECT 1 FROM @extschema@.fx_rate f WHERE f.currency = n.currency)
         ORDER BY n.collection_id
         LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '% is in currency %, which has no exchange rate', bad.what, bad.currency
            USING ERRCODE = 'foreign_key_violation',
                  TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA, COLUMN = 'currency',
                  DETAIL = format('Every currency but the base currency (%s) needs a row in sales_kpi.fx_rate: every KPI that converts the row would fail without one.',
                                  @extschema@.base_currency()),
                  HINT = format('Insert the rates of %s into sales_kpi.fx_rate first.', bad.currency);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.currency_rate_check() IS
    'Trigger: refuses a deal or invoice in a currency other than the base currency with no row in fx_rate (skipped while a dump loads: check_function_bodies off).';

-- Removing the last rate of a currency that a deal or invoice is in is
-- refused, as deleting a referenced row is.  To replace a currency's rates,
-- upsert them, or delete and insert in one statement (a data-modifying WITH).
CREATE FUNCTION sales_kpi_internal.fx_rate_after_remove()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    bad record;
BEGIN
    PERFORM sales_kpi_internal.check_trigger_table(TG_RELID, 'fx_rate_after_remove', 'fx_rate');
    IF TG_OP = 'TRUNCATE' THEN
        SELECT x.what, x.currency INTO bad
          FROM (SELECT 'opportunity ' || o.opportunity_id AS what, o.currency
                  FROM @extschema@.opportunity o
                 WHERE o.currency <> @extschema@.base_currency()
                 LIMIT 1) x
        UNION ALL
        SELECT y.what, y.currency
          FROM (SELECT 'collection ' || c.collection_id AS what, c.currency
                  FROM @extschema@.collection c
                 WHERE c.currency <> @extschema@.base_currency()
                 LIMIT 1) y
        LIMIT 1;
    ELSE
        SELECT u.what, g.currency INTO bad
          FROM (SELECT DISTINCT r.currency FROM old_rates r) g
          CROSS JOIN LATERAL (
                SELECT 'opportunity ' || o.opportunity_id AS what
                  FROM @extschema@.opportunity o
                 WHERE o.currency = g.currency
                 LIMIT 1) u
         WHERE g.currency <> @extschema@.base_currency()
           AND NOT EXISTS (SELECT 1 FROM @extschema@.fx_rate f WHERE f.currency = g.currency)
        UNION ALL
        SELECT u.what, g.currency
          FROM (SELECT DISTINCT r.currency FROM old_rates r) g
          CROSS JOIN LATERAL (
                SELECT 'collection ' || c.collection_id AS what
                  FROM @extschema@.collection c
                 WHERE c.currency = g.currency
                 LIMIT 1) u
         WHERE g.currency <> @extschema@.base_currency()
           AND NOT EXISTS (SELECT 1 FROM @extschema@.fx_rate f WHERE f.currency = g.currency)
        LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot remove the last exchange rate of currency %: % is in it', bad.currency, bad.what
            USING ERRCODE = 'foreign_key_violation',
                  TABLE = 'fx_rate', SCHEMA = TG_TABLE_SCHEMA, COLUMN = 'currency',
                  DETAIL = 'Every KPI that converts the row would fail without a rate.',
                  HINT = 'To replace a currency''s rates, upsert them, or delete and insert them in one statement.';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.fx_rate_after_remove() IS
    'Trigger: refuses a delete, update or truncate of fx_rate that leaves a currency a deal or invoice is in without a rate.';


CREATE TRIGGER opportunity_currency_insert
    AFTER INSERT ON @extschema@.opportunity
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.currency_rate_check();
CREATE TRIGGER opportunity_currency_update
    AFTER UPDATE ON @extschema@.opportunity
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.currency_rate_check();
CREATE TRIGGER collection_currency_insert
    AFTER INSERT ON @extschema@.collection
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.currency_rate_check();
CREATE TRIGGER collection_currency_update
    AFTER UPDATE ON @extschema@.collection
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.currency_rate_check();
CREATE TRIGGER fx_rate_after_delete
    AFTER DELETE ON @extschema@.fx_rate
    REFERENCING OLD TABLE AS old_rates
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.fx_rate_after_remove();
CREATE TRIGGER fx_rate_after_update
    AFTER UPDATE ON @extschema@.fx_rate
    REFERENCING OLD TABLE AS old_rates
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.fx_rate_after_remove();
CREATE TRIGGER fx_rate_after_truncate
    AFTER TRUNCATE ON @extschema@.fx_rate
    FOR EACH STATEMENT EXECUTE FUNCTION sales_kpi_internal.fx_rate_after_remove();

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
COMMENT ON FUNCTION @extschema@.fx_rate_on(character, date) IS
    'Rate converting currency to the base currency on a date (1 for the base currency): the newest not after the date, else the currency''s first; an error when the currency has none.';
COMMENT ON FUNCTION @extschema@.data_quality_findings(timestamptz) IS
    'Rows that break the sales process as the data stood at as_of, one row per finding: stage events out of order or after a close, regressions, skipped stages, stage fields that contradict the history, negative amounts and durations, missing owners, accounts, stage events and snapshots, amounts in a currency without a rate on their date, history dated in the future, gaps in open-stage positions.';

-- The KPI engine: history lookups (47_history_lookups.sql), the closed-deal
-- partials (53_closed_partials.sql) and the funnel partials
-- (54_funnel_partials.sql); deal_states_at takes the dimension and
-- returns the breakdown key and value.
-- Reading a deal's histories as they stood at an instant: the building
-- blocks the KPIs use to rebuild a deal's stage or snapshot fields at
-- as_of, for the few deals whose row has changed since.  Each is one
-- backward index probe, returned as one composite value for a call in an
-- expression: (snapshot_at(id, t)).owner_id.  A call is not a subquery, so
-- a query that makes it per deal can still run in parallel workers
-- (PostgreSQL 15 keeps a query with a correlated subquery out of them).
-- The fields are NULL when there is no such row.

-- The deal's newest stage event not after `at` (latest entered_at, ties
-- by the higher stage_event_id).
CREATE FUNCTION sales_kpi_internal.stage_event_at(opportunity_id bigint, at timestamptz,
                                           OUT stage_event_id bigint, OUT stage_id bigint,
                                           OUT entered_at timestamptz)
-- strict: a NULL argument costs no lookup
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ev.stage_event_id, ev.stage_id, ev.entered_at
      FROM @extschema@.stage_event ev
     WHERE ev.opportunity_id = stage_event_at.opportunity_id
       AND ev.entered_at <= stage_event_at.at
     ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_event_at(bigint, timestamptz) IS
    'Internal: a deal''s newest stage event not after an instant, as one value (NULL fields if none).';

-- The deal's newest history snapshot not after `at`.
CREATE FUNCTION sales_kpi_internal.snapshot_at(opportunity_id bigint, at timestamptz,
                                        OUT changed_at timestamptz, OUT amount numeric, OUT expected_close date,
                                        OUT forecast_category text, OUT owner_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT hi.changed_at, hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
      FROM @extschema@.opportunity_history hi
     WHERE hi.opportunity_id = snapshot_at.opportunity_id
       AND hi.changed_at <= snapshot_at.at
     ORDER BY hi.changed_at DESC
     LIMIT 1
$$;
COMMENT ON FUNCTION sales_kpi_internal.snapshot_at(bigint, timestamptz) IS
    'Internal: a deal''s newest history snapshot not after an instant, as one value (NULL fields if none).';

-- The KPI engine, closed deals.  Every KPI is computed in two steps, as the
-- summary aggregates are: an internal *partials* function makes one pass
-- over the rows the KPI family needs and returns a summary per (dimension
-- key, period); the public KPI function rolls those up (rollup() and sums)
-- per dimension value and applies the accessors.  The pass happens inside
-- one custom-planned query that reads the deal's attributes in the same
-- scan that finds the deal (hash joins to account and rep, no probe per
-- deal), so no function boundary hides a row count from the planner where
-- it matters: what crosses it is either one row per deal into an
-- aggregate, or a few summaries.
--
-- The dimension key is the stable identity of a breakdown value: the rep or
-- pipeline id for those dimensions, the value itself for the others.  Two
-- reps with the same name are two keys with one value; the public KPIs
-- group by value, as they always have.

-- Internal: the stable key of a breakdown value (dimension.c).
CREATE FUNCTION sales_kpi_internal.dimension_key(dimension text, pipeline_id bigint, owner_id bigint, value text)
RETURNS text
AS 'MODULE_PATHNAME', 'dimension_key'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sales_kpi_internal.dimension_key(text, bigint, bigint, text) IS
    'Internal: the stable key of a breakdown value: the owner id for rep, the pipeline id for pipeline, the value itself otherwise.';

-- Internal: refuses period bounds that are not a strictly increasing
-- one-dimensional array of at least two instants, without NULLs, indexed
-- from 1.  Returns true.
CREATE FUNCTION sales_kpi_internal.check_bounds(bounds timestamptz[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF bounds IS NULL OR array_ndims(bounds) IS DISTINCT FROM 1 OR array_lower(bounds, 1) <> 1
       OR cardinality(bounds) < 2 OR array_position(bounds, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'argument "bounds" must be an array of at least two instants, indexed from 1, without nulls'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. cardinality(bounds) - 1 LOOP
        IF bounds[i + 1] <= bounds[i] THEN
            RAISE EXCEPTION 'argument "bounds" must be strictly increasing, got "%" after "%"',
                    bounds[i + 1], bounds[i]
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.check_bounds(timestamptz[]) IS
    'Internal: checks an array of period bounds (at least two, strictly increasing, no nulls); true or 22023.';

-- Internal: checks the dimension of the closed-deal functions: those of
-- dimension_value() and deal_size_band.
CREATE FUNCTION sales_kpi_internal.closed_dimension(dimension text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN dimension = 'deal_size_band' THEN dimension
                ELSE sales_kpi_internal.outcome_dimension(dimension) END
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_dimension(text) IS
    'Internal: checks the dimension of the closed-deal partials (the common ones and deal_size_band) and returns it.';

-- Internal: the breakdown of the KPI engine's passes as SQL, for a query
-- text: the joins a dimension needs (only those: pipeline, account or rep)
-- and the value expression, over a deal row named deal (with the columns
-- pipeline_id, account_id, source, competitor, kind and product) and the
-- owner expression owner (the rep credited).  The value is that of
-- dimension_value(); written out per dimension, it names the one column
-- it reads, so the planner estimates the groups from that column's
-- statistics (a call over every attribute multiplies them all).  The
-- dimension must be one of dimension_value()'s (checked here, so the
-- fragments only ever hold known names); the caller supplies the aliases.
CREATE FUNCTION sales_kpi_internal.dimension_sql(dimension text, deal text, owner text,
                                          OUT joins text, OUT value text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the name check and its error are dimension_value()'s
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    joins := CASE
        WHEN dimension = 'pipeline' THEN
            format('LEFT JOIN @extschema@.pipeline p ON p.pipeline_id = %s.pipeline_id', deal)
        WHEN dimension IN ('rep', 'team') THEN
            format('LEFT JOIN @extschema@.rep r ON r.rep_id = %s', owner)
        WHEN dimension IN ('industry', 'segment', 'region') THEN
            format('LEFT JOIN @extschema@.account a ON a.account_id = %s.account_id', deal)
        ELSE '' END;
    value := CASE
        WHEN dimension = 'company' THEN $v$'all'::text$v$
        WHEN dimension = 'pipeline' THEN 'p.name'
        WHEN dimension = 'rep' THEN 'r.name'
        WHEN dimension = 'team' THEN 'r.team'
        WHEN dimension IN ('industry', 'segment', 'region') THEN 'a.' || dimension
        ELSE deal || '.' || dimension END;
    IF dimension <> 'company' THEN
        value := format($v$coalesce(%s, '(none)')$v$, value);
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.dimension_sql(text, text, text) IS
    'Internal: the joins and the value expression of a breakdown for a query text of the KPI engine, over a deal row and an owner expression (the value of dimension_value()).';

-- Internal: what a partials query groups by, as SQL over a row named
-- alias (with pipeline_id and owner_id).  key_column: the column that
-- keys a breakdown value besides the value itself (the owner for rep, the
-- pipeline for pipeline, none otherwise), passed as both ids to
-- dimension_key() once per group; period_column: the period a row falls
-- in, width_bucket(instant, $5) over the bounds $5, or the constant 1 for
-- one period.  Grouping by these, rather than by dimension_key() and
-- width_bucket() of every row, lets the planner estimate the groups from
-- column statistics (an expression over an instant counts one group per
-- instant) and sum them up in the workers.
CREATE FUNCTION sales_kpi_internal.key_column(dimension text, alias text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE dimension WHEN 'rep' THEN alias || '.owner_id'
                          WHEN 'pipeline' THEN alias || '.pipeline_id'
                          ELSE 'NULL::bigint' END
$$;
COMMENT ON FUNCTION sales_kpi_internal.key_column(text, text) IS
    'Internal: the id column that keys a breakdown value in a partials query (owner for rep, pipeline for pipeline, none otherwise), as SQL.';

CREATE FUNCTION sales_kpi_internal.period_column(bounds timestamptz[], instant text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(bounds) = 2 THEN '1' ELSE format('width_bucket(%s, $5)', instant) END
$$;
COMMENT ON FUNCTION sales_kpi_internal.period_column(timestamptz[], text) IS
    'Internal: the period of a row in a partials query over the bounds $5, as SQL: width_bucket of the instant, or 1 for one period.';

-- The KPI engine, funnel (see 53_closed_partials.sql for the pattern): the
-- partials of stage_conversion.  For the deals created in each period, per
-- dimension key and pipeline, funnel summaries of the open-stage rank each
-- deal reached as the history stood at as_of: over all of them, over those
-- still open at as_of and over those won by then.  The conventions are
-- those of 61_kpi_funnel.sql: a deal reached rank k when the highest open
-- rank it entered is at least k, or when it ever entered a won stage; with
-- strict, only the ranks it first entered in order count (ties in time
-- count as in order).  The rep credited is the owner at as_of.
--
-- One pass: the stage events not after as_of of the deals created in the
-- periods, grouped per deal, joined to the deals' attributes (hash joins
-- and hash aggregates; work_mem is raised so that a million deals hash in
-- memory).  The outcome at as_of is the current stage's kind, except for a
-- deal that moved since (stage_entered_at is after as_of), whose newest
-- event not after as_of is looked up; the owner likewise comes from the
-- history only for a deal with a snapshot after as_of.
-- a deal's stage events in order, with the stage: the funnel pass and the
-- as-of look-ups read the index alone (rebuilt once, a few seconds per
-- million events)
DROP INDEX @extschema@.stage_event_opportunity_idx;
CREATE INDEX stage_event_opportunity_idx
    ON @extschema@.stage_event (opportunity_id, entered_at, stage_event_id) INCLUDE (stage_id);

-- the funnel of a list of deals grouped in SQL: replaced by the funnel
-- pass (funnel_partials, funnel_deals)
DROP FUNCTION @extschema@.deal_funnel_progress(bigint[], timestamptz, boolean);

-- How far each deal created in [created_from, created_to) got through its
-- funnel as of as_of, from one ordered pass over the deals and their stage
-- history (C, see funnel_walk.c): per deal created by as_of with an event
-- by as_of, the columns of its row that the funnel partials read, the
-- reached rank and the strict rank that grouping its events in SQL gives
-- (the other way of funnel_partials).  Only the deals with opportunity_id
-- between first_id and last_id (null: unbounded) are read, so that a
-- caller can read halves of the deals in calls that parallel workers run
-- at once, and a period's deals without the rest of the history where ids
-- grow with creation.
CREATE FUNCTION sales_kpi_internal.funnel_deals(as_of timestamptz, created_from timestamptz,
                                                created_to timestamptz, first_id bigint DEFAULT NULL,
                                                last_id bigint DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, created_at timestamptz, stage_id bigint,
               stage_entered_at timestamptz, reached_rank integer, strict_rank integer)
AS 'MODULE_PATHNAME', 'funnel_deals'
-- the cost of reading the whole history, so that the planner runs the two
-- halves in parallel workers
LANGUAGE C STABLE PARALLEL SAFE COST 10000000 ROWS 500000;
COMMENT ON FUNCTION sales_kpi_internal.funnel_deals(timestamptz, timestamptz, timestamptz, bigint, bigint) IS
    'Internal: per deal created in [created_from, created_to) by as_of with a stage event by as_of (opportunity_id between first_id and last_id): pipeline, creation, current stage and its entry, and the reached and strict ranks, from one ordered pass over the deals and their history.';

-- Internal: the breakdown a pass's rows carry for a partials query of a
-- dimension: none ('company') for those that label an id (rep and team the
-- owner, pipeline the pipeline), which partials_sql() names after grouping;
-- the dimension itself otherwise.
CREATE FUNCTION sales_kpi_internal.row_dimension(dimension text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN dimension IN ('rep', 'team', 'pipeline') THEN 'company' ELSE dimension END
$$;
COMMENT ON FUNCTION sales_kpi_internal.row_dimension(text) IS
    'Internal: the breakdown the rows of a partials pass carry: company for rep, team and pipeline (named after grouping by id), the dimension otherwise.';

-- Internal: a partials query, as SQL.  The rows of a pass (the query text
-- rows, of the breakdown row_dimension(dimension), read as alias r) are
-- summed per key, value and period (period, over r) by the select list
-- aggregates.  For rep, team and pipeline, which label an id, they are
-- summed per id and period, with no join per row; the names are joined to
-- those few groups, which are summed again per key, value and period by
-- the select list rollups, over alias l (a team's owners become one row).
-- Columns: dimension_key, dimension_value, period_start, period_end, then
-- the summaries.  $4 is the dimension and $5 the bounds, as in every
-- partials query.
CREATE FUNCTION sales_kpi_internal.partials_sql(dimension text, rows text, period text,
                                                aggregates text, rollups text, groups text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    label record;
    -- ', r.a, r.b' and ', l.a, l.b' for groups {a, b}
    r_groups text := (SELECT coalesce(string_agg(', r.' || quote_ident(g), '' ORDER BY i), '')
                        FROM unnest(groups) WITH ORDINALITY u(g, i));
    l_groups text := (SELECT coalesce(string_agg(', l.' || quote_ident(g), '' ORDER BY i), '')
                        FROM unnest(groups) WITH ORDINALITY u(g, i));
BEGIN
    IF dimension IS NULL THEN
        RAISE EXCEPTION 'argument "dimension" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF groups IS NULL OR array_position(groups, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'argument "groups" must not be null or hold a null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF groups && ARRAY['owner_id', 'pipeline_id', 'piece', 'value'] THEN
        RAISE EXCEPTION 'argument "groups" must not name owner_id, pipeline_id, piece or value'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF sales_kpi_internal.row_dimension(dimension) = dimension THEN
        -- the key column is NULL::bigint for these dimensions
        RETURN format($sql$
            SELECT sales_kpi_internal.dimension_key($4, %1$s, %1$s, r.dimension_value), r.dimension_value,
                   $5[%2$s], $5[%2$s + 1]%5$s, %3$s
              FROM (%4$s) r
             GROUP BY r.dimension_value%6$s%5$s$sql$,
            sales_kpi_internal.key_column(dimension, 'r'), period, aggregates, rows, r_groups,
            CASE WHEN period = '1' THEN '' ELSE ', ' || period END);
    END IF;
    label := sales_kpi_internal.dimension_sql(dimension, 'g', 'g.owner_id');
    -- grouped by the id in use (1 the owner, 2 the pipeline) and by the
    -- period unless there is one
    RETURN format($sql$
        SELECT sales_kpi_internal.dimension_key($4, %1$s, %1$s, l.value), l.value,
               $5[l.piece], $5[l.piece + 1]%10$s, %2$s
          FROM (SELECT g.*, %3$s AS value
                  FROM (SELECT %4$s AS owner_id, %5$s AS pipeline_id, %6$s AS piece%11$s, %7$s
                          FROM (%8$s) r
                         GROUP BY %12$s%11$s) g
                %9$s) l
         GROUP BY %1$s, l.value, l.piece%10$s$sql$,
        sales_kpi_internal.key_column(dimension, 'l'), rollups, label.value,
        CASE WHEN dimension = 'pipeline' THEN 'NULL::bigint' ELSE 'r.owner_id' END,
        CASE WHEN dimension = 'pipeline' THEN 'r.pipeline_id' ELSE 'NULL::bigint' END,
        period, aggregates, rows, label.joins, l_groups, r_groups,
        CASE WHEN dimension = 'pipeline' THEN '2' ELSE '1' END || CASE WHEN period = '1' THEN '' ELSE ', 3' END);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.partials_sql(text, text, text, text, text, text[]) IS
    'Internal: the SQL of a partials query: the rows summed per key, value, period and the group columns named; for rep, team and pipeline per owner or pipeline id, period and group columns, the names joined to those groups, summed again.';

-- Internal: whether any deal entered a stage after an instant, that is
-- whether a pass at that as_of must read the history of deals that moved
-- since.  The newest entry, not EXISTS: planned for any as_of, EXISTS
-- scans the table from its oldest events; max() reads the end of
-- stage_event's entered_at index (by an index scan, which the passes that
-- call it turn off for themselves).
CREATE FUNCTION sales_kpi_internal.moved_since(as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET enable_indexscan = on
AS $$
DECLARE
    moved boolean;
BEGIN
    IF as_of IS NULL THEN
        RETURN true;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM @extschema@.stage_event e WHERE e.entered_at OPERATOR(pg_catalog.>) $1)'
        INTO moved USING as_of;
    RETURN moved;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.moved_since(timestamptz) IS
    'Internal: true when a stage event was entered after as_of, or as_of is null (a pass at as_of must then read the history of the deals that moved since).';

-- Deals closed in [$1, $2) as they stood at $3, each with its breakdown
-- key and value for the dimension $4 (checked by the caller): the deal's
-- newest stage event not after as_of is won or lost and entered in the
-- period.  A deal reopened after as_of still counts; one closed, then
-- reopened before as_of does not.  The owner is the one at the close (the
-- rep credited with the win), the amount the one known at as_of, converted
-- at the rate of the close date.  Besides the dimensions of
-- dimension_value(), deal_size_band (of the amount in the base currency).
--
-- Only deals with stage events after as_of can differ from their current
-- row, and only deals with snapshots after the close (or after as_of: the
-- deal's snapshot_at tells) need their history read: at as_of = now that is
-- nearly none, so the common case is one range scan of opportunity.closed_at.
-- The lookups are function calls, not subqueries, so that the query can
-- run in parallel workers.
--
-- The query is text, run by EXECUTE in closed_deal_rows (the rows) and
-- closed_partials (summed up in the same query, in parallel workers when
-- the range is big enough): each run is planned with its actual dates and
-- dimension (the joins a dimension does not need are planned away).
CREATE FUNCTION sales_kpi_internal.closed_deal_query(dimension text, moved boolean DEFAULT true,
                                                     only_outcome text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
BEGIN
    IF only_outcome NOT IN ('won', 'lost') THEN
        RAISE EXCEPTION 'argument "only_outcome" must be won, lost or null, got "%"', only_outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN (SELECT format($sql$
WITH closed AS (
    SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.owner_id, o.created_at, o.amount,
           o.currency, o.stage_id, o.closed_at, o.source, o.competitor, o.kind, o.product, o.lost_reason,
           s.kind AS outcome,
           -- a snapshot after the close (snapshot_at is the newest's time)
           coalesce(o.snapshot_at > o.closed_at, false) AS changed
      FROM @extschema@.opportunity o
      JOIN @extschema@.stage s ON s.stage_id = o.stage_id
     WHERE o.closed_at >= $1
       AND o.closed_at < $2
       AND o.closed_at <= $3
       AND s.kind IN (%1$s)
%2$s), credited AS (
    -- only a snapshot after the close (which is also any after as_of)
    -- can make the owner at the close or the amount at as_of differ from
    -- the deal's row, which always equals its newest snapshot
    SELECT c.opportunity_id, c.pipeline_id, c.account_id, c.created_at, c.currency, c.stage_id,
           c.closed_at, c.source, c.competitor, c.kind, c.product, c.lost_reason, c.outcome,
           CASE WHEN NOT c.changed THEN c.owner_id
                ELSE coalesce((sales_kpi_internal.snapshot_at(c.opportunity_id, c.closed_at)).owner_id, c.owner_id)
           END AS owner_id,
           CASE WHEN NOT c.changed THEN c.amount
                ELSE coalesce((sales_kpi_internal.snapshot_at(c.opportunity_id, $3)).amount, c.amount)
           END AS amount
      FROM closed c
), converted AS (
    SELECT r.*,
           @extschema@.to_base(r.amount, r.currency,
                               (r.closed_at AT TIME ZONE $6)::date)
               AS amount_base
      FROM credited r
), labelled AS (
    SELECT c.*, %3$s AS value
      FROM converted c
      %4$s
)
SELECT l.opportunity_id, l.pipeline_id, l.owner_id, l.outcome, l.stage_id, l.created_at, l.closed_at,
       l.amount, l.currency, l.amount_base, l.account_id,
       sales_kpi_internal.dimension_key($4, l.pipeline_id, l.owner_id, l.value) AS dimension_key,
       l.value AS dimension_value, l.lost_reason, l.competitor,
       -- once per deal here rather than in each aggregate that asks
       l.outcome = 'won' AS won, l.kind AS deal_kind
  FROM labelled l
$sql$,
        k.kinds,
        CASE WHEN moved IS NOT FALSE THEN format($moved$    UNION ALL
    -- closed at as_of, but moved since (reopened, or closed again later):
    -- the newest event not after as_of.  Only a deal with a close in the
    -- period can have closed there as of as_of: at a past as_of most deals
    -- have moved since, so the candidates come from the period's closing
    -- events, and the lookup is made for those alone: its argument names
    -- both sides of the join, so that the planner cannot push the filters
    -- on its result down to every closing event.
    SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.owner_id, o.created_at, o.amount,
           o.currency, (o.e).stage_id, (o.e).entered_at, o.source, o.competitor, o.kind, o.product,
           o.lost_reason, s.kind, true
      FROM (SELECT o.*,
                   sales_kpi_internal.stage_event_at(CASE WHEN o.stage_entered_at > $3 THEN c.opportunity_id END, $3)
                       AS e
              FROM (SELECT DISTINCT t.opportunity_id
                      FROM @extschema@.stage_event t
                      JOIN @extschema@.stage ts ON ts.stage_id = t.stage_id
                     WHERE ts.kind IN (%1$s)
                       AND t.entered_at >= $1 AND t.entered_at < $2 AND t.entered_at <= $3) c
              JOIN @extschema@.opportunity o ON o.opportunity_id = c.opportunity_id
             WHERE o.opportunity_id IN (SELECT ev.opportunity_id FROM @extschema@.stage_event ev
                                         WHERE ev.entered_at > $3)
               AND (o.closed_at IS NULL OR o.closed_at > $3)) o
      JOIN @extschema@.stage s ON s.stage_id = (o.e).stage_id
     WHERE (o.e).entered_at >= $1
       AND (o.e).entered_at < $2
       AND s.kind IN (%1$s)
$moved$, k.kinds) ELSE '' END,
        -- deal_size_band: of the amount in the base currency
        CASE WHEN dimension = 'deal_size_band' THEN '@extschema@.deal_size_band(c.amount_base)' ELSE d.value END,
        CASE WHEN dimension = 'deal_size_band' THEN '' ELSE d.joins END)
      FROM sales_kpi_internal.dimension_sql(CASE WHEN dimension = 'deal_size_band' THEN 'company' ELSE dimension END,
                                     'c', 'c.owner_id') d,
           -- the closing stage kinds the pass reads
           (SELECT CASE only_outcome WHEN 'won' THEN $k$'won'$k$ WHEN 'lost' THEN $k$'lost'$k$
                                     ELSE $k$'won', 'lost'$k$ END AS kinds) k);
END;
$query$;
COMMENT ON FUNCTION sales_kpi_internal.closed_deal_query(text, boolean, text) IS
    'Internal: the query of the deals closed in [$1, $2) as of $3 with their breakdown for a dimension (also passed as $4), run by closed_deal_rows(), closed_partials() and loss_partials(); with moved false, for when no deal moved after as_of; with only_outcome won or lost, those deals alone.';

-- JIT compilation would cost more than these queries run.  The range is
-- read with a bitmap scan: deals close in another order than they were
-- written, so an index scan visits heap pages at random (2.1 s against
-- 0.3 s for a year at 1M deals).
CREATE FUNCTION sales_kpi_internal.closed_deal_rows(period_start timestamptz, period_end timestamptz,
                                             as_of timestamptz, dimension text,
                                             only_outcome text DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, outcome text,
               stage_id bigint, created_at timestamptz, closed_at timestamptz,
               amount numeric, currency character(3), amount_base numeric, account_id bigint,
               dimension_key text, dimension_value text, lost_reason text, competitor text,
               deal_kind text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_indexscan = off
-- the start of parallel workers priced as in closed_partials: rows passed
-- back one by one gain less from workers than sums do
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.closed_dimension(dimension);
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT q.opportunity_id, q.pipeline_id, q.owner_id, q.outcome, q.stage_id, q.created_at, q.closed_at,
               q.amount, q.currency, q.amount_base, q.account_id, q.dimension_key, q.dimension_value,
               q.lost_reason, q.competitor, q.deal_kind
          FROM (%s) q$sql$,
        sales_kpi_internal.closed_deal_query(dim, sales_kpi_internal.moved_since(as_of), only_outcome))
        USING period_start, period_end, as_of, dim, NULL::timestamptz[], @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_deal_rows(timestamptz, timestamptz, timestamptz, text, text) IS
    'Internal: the rows of closed_deals() with each deal''s breakdown key and value for a dimension (those of dimension_value() and deal_size_band), read in the same pass, and its lost_reason, competitor and kind (deal_kind); with only_outcome won or lost, those deals alone.';

-- The won deals of a period per breakdown value, summed in the pass that
-- finds them: their win/loss summary (count and won amount in the base
-- currency at the close-date rate), how many distinct accounts they were
-- won from, and the won amount of those with an account (for ARPA).
-- Distinct accounts do not add up across periods or keys, so these are
-- the sums of one period, not partials; summed in the pass, no deal's row
-- is handed back (at 1M deals, deal_size by rep over all time: 0.54-0.75
-- s, against 0.71-0.88 s through closed_deal_rows).
CREATE FUNCTION sales_kpi_internal.won_deal_summary(period_start timestamptz, period_end timestamptz,
                                                    as_of timestamptz, dimension text)
RETURNS TABLE (dimension_value text, outcomes @extschema@.winloss, accounts bigint, account_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_indexscan = off
-- parallel workers only where they pay for their start (closed_partials)
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.closed_dimension(dimension);
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT q.dimension_value, @extschema@.winloss_agg(true, q.amount_base),
               count(DISTINCT q.account_id), sum(q.amount_base) FILTER (WHERE q.account_id IS NOT NULL)
          FROM (%s) q
         GROUP BY q.dimension_value$sql$,
        sales_kpi_internal.closed_deal_query(dim, sales_kpi_internal.moved_since(as_of), 'won'))
        USING period_start, period_end, as_of, dim, NULL::timestamptz[], @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.won_deal_summary(timestamptz, timestamptz, timestamptz, text) IS
    'Internal: per breakdown value, the deals won in [period_start, period_end) as of as_of: win/loss summary (won amount in the base currency at the close-date rate), distinct accounts and the won amount of the deals with an account.';

CREATE OR REPLACE FUNCTION @extschema@.closed_deals(period_start timestamptz, period_end timestamptz,
                                         as_of timestamptz DEFAULT now())
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, outcome text,
               stage_id bigint, created_at timestamptz, closed_at timestamptz,
               amount numeric, currency character(3), amount_base numeric, account_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cd.opportunity_id, cd.pipeline_id, cd.owner_id, cd.outcome, cd.stage_id, cd.created_at,
           cd.closed_at, cd.amount, cd.currency, cd.amount_base, cd.account_id
      FROM sales_kpi_internal.closed_deal_rows(period_start, period_end, as_of, 'company') cd
$$;
COMMENT ON FUNCTION @extschema@.closed_deals(timestamptz, timestamptz, timestamptz) IS
    'Deals closed (won or lost) in [period_start, period_end) as the history stood at as_of, with the owner at the close, the amount known at as_of and that amount in the base currency at the close-date rate.';

-- The partials of the closed-deal KPIs (win rate, sales cycle, quota
-- attainment, bookings): the deals closed in each period [bounds[i],
-- bounds[i+1]) as of as_of, per dimension key: their win/loss summary
-- (won amount in the base currency at the close-date rate), the summary of
-- the won deals' cycles (creation to win, negative ones as 0; NULL without
-- a win, and left out without with_cycles: it takes 8 kB per group) and
-- the closed amount; with won_only, of the won deals alone (their lost
-- count is 0).  Only periods and keys with a closed deal have a row.  Any
-- split of a period into consecutive bounds rolls up to the same
-- summaries as the whole period.
CREATE FUNCTION sales_kpi_internal.closed_partials(bounds timestamptz[], as_of timestamptz,
                                            dimension text DEFAULT 'company', with_cycles boolean DEFAULT true,
                                            won_only boolean DEFAULT false)
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               outcomes @extschema@.winloss, won_cycles @extschema@.duration_summary, closed_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_indexscan = off
-- a duration summary takes 8 kB per group: hashing a year of rep groups
-- needs more than the default 4 MB
SET work_mem = '64MB'
-- parallel workers only where they pay for their start: on a virtual
-- machine a Gather takes 25-30 ms to start its workers, and each worker
-- then faults in every shared buffer it reads for the first time: some
-- 50 ms, 15,000-20,000 units of these plans' costs (a quarter's pass at 1M
-- deals is priced 47,000 and takes 0.14 s), where the default of 1,000
-- assumes a few ms.  A quarter's pass then runs in the leader alone (0.14
-- s, against 0.23 s with two workers); a year or more still gains from them
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.closed_dimension(dimension);
    -- the cycles' summary only when asked for (with_cycles): its 8 kB per
    -- group would otherwise steer the planner away from hashing the groups
    cycles text := CASE WHEN with_cycles
                        THEN $agg$CASE WHEN bool_or(r.won) THEN
                                 @extschema@.duration_agg(greatest(r.closed_at - r.created_at, interval '0'))
                                     FILTER (WHERE r.won) END$agg$
                        ELSE 'NULL::@extschema@.duration_summary' END;
BEGIN
    IF as_of IS NULL OR with_cycles IS NULL OR won_only IS NULL THEN
        RAISE EXCEPTION 'arguments "as_of", "with_cycles" and "won_only" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- rep, team and pipeline are grouped by the owner at the close or the
    -- pipeline, and named afterwards (partials_sql)
    RETURN QUERY EXECUTE sales_kpi_internal.partials_sql(
            dim,
            sales_kpi_internal.closed_deal_query(sales_kpi_internal.row_dimension(dim),
                                                 sales_kpi_internal.moved_since(as_of),
                                                 CASE WHEN won_only THEN 'won' END),
            sales_kpi_internal.period_column(bounds, 'r.closed_at'),
            -- the closed amount is the summary's won amount plus the others':
            -- one amount added per deal (PostgreSQL runs an aggregate
            -- written twice once); NULL when no amount is known, like sum()
            $agg$@extschema@.winloss_agg(r.won, r.amount_base) AS outcomes,
                 $agg$ || cycles || $agg$ AS won_cycles,
                 coalesce(@extschema@.won_amount(@extschema@.winloss_agg(r.won, r.amount_base))
                              + sum(r.amount_base) FILTER (WHERE NOT r.won),
                          @extschema@.won_amount(@extschema@.winloss_agg(r.won, r.amount_base)),
                          sum(r.amount_base) FILTER (WHERE NOT r.won)) AS closed_amount$agg$,
            -- NULL without a win, as in one pass (rollup() of no summary is an empty one)
            '@extschema@.rollup(l.outcomes), '
            || CASE WHEN with_cycles
                    THEN 'CASE WHEN bool_or(l.won_cycles IS NOT NULL) THEN @extschema@.rollup(l.won_cycles) END, '
                    ELSE 'NULL::@extschema@.duration_summary, ' END
            || 'sum(l.closed_amount)')
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_partials(timestamptz[], timestamptz, text, boolean, boolean) IS
    'Internal: per period [bounds[i], bounds[i+1]) and dimension key, the deals closed as of as_of (won_only: the won ones): win/loss summary (won amount in the base currency), duration summary of the won deals'' cycles (with_cycles) and the closed amount.';

-- The KPI engine, funnel (see 53_closed_partials.sql for the pattern): the
-- partials of stage_conversion.  For the deals created in each period, per
-- dimension key and pipeline, funnel summaries of the open-stage rank each
-- deal reached as the history stood at as_of: over all of them, over those
-- still open at as_of and over those won by then.  The conventions are
-- those of 61_kpi_funnel.sql: a deal reached rank k when the highest open
-- rank it entered is at least k, or when it ever entered a won stage; with
-- strict, only the ranks it first entered in order count (ties in time
-- count as in order).  The rep credited is the owner at as_of.
--
-- One pass: the stage events not after as_of of the deals created in the
-- periods, grouped per deal, joined to the deals' attributes (hash joins
-- and hash aggregates; work_mem is raised so that a million deals hash in
-- memory).  The outcome at as_of is the current stage's kind, except for a
-- deal that moved since (stage_entered_at is after as_of), whose newest
-- event not after as_of is looked up; the owner likewise comes from the
-- history only for a deal with a snapshot after as_of.
CREATE FUNCTION sales_kpi_internal.funnel_partials(bounds timestamptz[], as_of timestamptz,
                                            dimension text DEFAULT 'company', strict boolean DEFAULT false,
                                            method text DEFAULT NULL)
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, reached @extschema@.funnel, reached_open @extschema@.funnel,
               reached_won @extschema@.funnel)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '256MB'
-- a period with few deals reads their events by index (stage_event's
-- opportunity index), one with many reads them all in one scan; the probes
-- hit cached pages, which the default random_page_cost (4) prices as disk
-- reads and so scans every event even for a quarter
SET random_page_cost = 1.1
-- the planner cannot estimate the number of breakdown values and takes
-- every deal for a group of its own, so it prices gathering one row per
-- deal from the workers above the gain of the walk's halves in parallel
SET parallel_tuple_cost = 0.01
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    in_order boolean := strict IS DISTINCT FROM false;
    lo timestamptz;
    hi timestamptz;
    born_deals bigint;
    all_deals double precision;
    every_deal boolean;
    first_id bigint;
    last_id bigint;
    mid bigint;
    walk boolean;
    label record;
    too_long record;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'argument "as_of" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- a funnel summary counts ranks 1..64: name the pipeline that has more
    SELECT p.name, r.open_stages INTO too_long
      FROM sales_kpi_internal.funnel_stage_ranks() r
      JOIN @extschema@.pipeline p ON p.pipeline_id = r.pipeline_id
     WHERE r.open_stages > 64
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pipeline "%" has % open stages; the funnel KPIs count at most 64', too_long.name,
                        too_long.open_stages
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    label := sales_kpi_internal.dimension_sql(dim, 'b', 'b.owner_id');
    lo := bounds[1];
    hi := bounds[cardinality(bounds)];
    -- How each deal's reached rank is found (method, null: by size).  When
    -- the periods hold more than a quarter of the deals, one ordered pass
    -- over the deals and their stage history (funnel_deals, two halves in
    -- parallel) costs less than grouping their events in a query (walk);
    -- otherwise their events are read through the deal index of
    -- stage_event and grouped (group).  The walk reads the deals between
    -- the smallest and the largest id created in the periods: where ids
    -- grow with creation, as identity columns do, that is the periods'
    -- share of the history, not all of it.
    SELECT c.reltuples INTO all_deals FROM pg_catalog.pg_class c
     WHERE c.oid OPERATOR(pg_catalog.=) '@extschema@.opportunity'::pg_catalog.regclass;
    -- whether the periods hold every deal (probes of the creation index):
    -- then the id span is the primary key's, and counting the deals would
    -- read them all once more
    every_deal := NOT EXISTS (SELECT FROM @extschema@.opportunity o WHERE o.created_at < lo)
                  AND NOT EXISTS (SELECT FROM @extschema@.opportunity o WHERE o.created_at >= hi)
                  AND NOT EXISTS (SELECT FROM @extschema@.opportunity o WHERE o.created_at > as_of);
    IF every_deal THEN
        SELECT min(o.opportunity_id), max(o.opportunity_id) INTO first_id, last_id FROM @extschema@.opportunity o;
        -- only whether there is one matters then
        born_deals := CASE WHEN first_id IS NULL THEN 0 ELSE 1 END;
    ELSE
        SELECT count(*), min(o.opportunity_id), max(o.opportunity_id) INTO born_deals, first_id, last_id
          FROM @extschema@.opportunity o
         WHERE o.created_at >= lo AND o.created_at < hi AND o.created_at <= as_of;
    END IF;
    IF method IS NOT NULL AND method NOT IN ('walk', 'group') THEN
        RAISE EXCEPTION 'argument "method" must be walk, group or null, got "%"', method
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- reltuples is -1 before the table's first ANALYZE: then group.  By
    -- company or pipeline the walk reads nothing but the deals and their
    -- events (no join), so it is the cheaper way whenever the id span holds
    -- not many more deals than the periods (measured at 1M deals: a
    -- quarter's 100,000 deals in 0.2 s walked, 0.67 s grouped)
    walk := coalesce(method = 'walk',
                     born_deals > 0
                     AND (every_deal
                          OR (dim IN ('company', 'pipeline') AND last_id::numeric - first_id < 4 * born_deals)
                          OR (all_deals > 0 AND born_deals > 0.25 * all_deals)));
    IF born_deals = 0 THEN
        RETURN;                 -- no deals
    END IF;
    -- halves [first_id, mid] and [mid + 1, last_id] (no overflow at the ends
    -- of bigint; one piece when the span is a single id)
    mid := first_id / 2 + last_id / 2;
    IF mid >= last_id THEN
        mid := NULL;
    END IF;
    -- one query text per way and mode, run by EXECUTE so that each run is
    -- planned with its dates and dimension ($1 .. $8 below).  Only the
    -- strict mode of the grouping way has the materialized prefix CTE,
    -- which keeps a query out of parallel workers.
    RETURN QUERY EXECUTE format($sql$
    WITH %s, labelled AS NOT MATERIALIZED (
        SELECT b.*, %s AS value
          FROM born b
          %s
    )%s
    SELECT sales_kpi_internal.dimension_key($4, rd.pipeline_id, rd.owner_id, rd.value), rd.value,
           $5[rd.piece], $5[rd.piece + 1], rd.pipeline_id,
           @extschema@.funnel_agg(rd.rk),
           @extschema@.funnel_agg(rd.rk) FILTER (WHERE rd.outcome = 'open'),
           @extschema@.funnel_agg(rd.rk) FILTER (WHERE rd.outcome = 'won')
      FROM (SELECT l.pipeline_id, l.outcome, l.owner_id, l.value, %s AS piece, %s AS rk
              FROM labelled l%s) rd
     GROUP BY rd.pipeline_id, rd.owner_id, rd.value, rd.piece$sql$,
        CASE WHEN walk THEN format($walk$walked AS (
        -- the deals created in the periods with their ranks, in two halves
        SELECT w.* FROM sales_kpi_internal.funnel_deals($3, $1, $2, $7, coalesce($6, $8)) w
        UNION ALL
        SELECT w.* FROM sales_kpi_internal.funnel_deals($3, $1, $2, $6 + 1, $8) w WHERE $6 IS NOT NULL
    ), born AS (
        SELECT w.opportunity_id, w.created_at, w.pipeline_id, w.reached_rank, w.strict_rank,
               %s,
               cs.kind AS outcome
          FROM walked w
          %s
          -- the stage at as_of: the current one, unless the deal moved since
          LEFT JOIN @extschema@.stage cs
            ON cs.stage_id = CASE WHEN w.stage_entered_at > $3
                                  THEN (sales_kpi_internal.stage_event_at(w.opportunity_id, $3)).stage_id
                                  ELSE w.stage_id END
    )$walk$,
            -- the breakdowns beyond the pipeline read the deal's row
            CASE WHEN dim IN ('company', 'pipeline')
                 THEN 'NULL::bigint AS account_id, NULL::bigint AS owner_id'
                 ELSE $row$o.account_id, o.source, o.competitor, o.kind, o.product,
               CASE WHEN $4 NOT IN ('rep', 'team') THEN NULL
                    WHEN coalesce(o.snapshot_at > $3, false)
                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id, $3)).owner_id, o.owner_id)
                    ELSE o.owner_id END AS owner_id$row$ END,
            CASE WHEN dim IN ('company', 'pipeline') THEN ''
                 ELSE 'JOIN @extschema@.opportunity o ON o.opportunity_id = w.opportunity_id' END)
        ELSE $born$born AS (
        SELECT o.opportunity_id, o.created_at, o.pipeline_id, o.account_id, o.source, o.competitor,
               o.kind, o.product, cs.kind AS outcome,
               CASE WHEN $4 NOT IN ('rep', 'team') THEN NULL
                    WHEN coalesce(o.snapshot_at > $3, false)
                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id, $3)).owner_id, o.owner_id)
                    ELSE o.owner_id END AS owner_id
          FROM @extschema@.opportunity o
          -- the stage at as_of: the current one, unless the deal moved since
          -- (calls, not subqueries, so that the pass may run in parallel)
          LEFT JOIN @extschema@.stage cs
            ON cs.stage_id = CASE WHEN o.stage_entered_at > $3
                                  THEN (sales_kpi_internal.stage_event_at(o.opportunity_id, $3)).stage_id
                                  ELSE o.stage_id END
         -- deals created after as_of did not exist yet
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3
    )$born$ END,
        label.value, label.joins,
        CASE WHEN walk THEN '' ELSE $join$, events AS NOT MATERIALIZED (
        -- the stage events by as_of of the deals created in the periods
        SELECT e.opportunity_id, e.entered_at, rk.kind, rk.rank, rk.open_stages
          FROM @extschema@.opportunity o
          JOIN @extschema@.stage_event e ON e.opportunity_id = o.opportunity_id
          JOIN sales_kpi_internal.funnel_stage_ranks() rk ON rk.stage_id = e.stage_id
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3 AND e.entered_at <= $3
    ), progress AS (
        -- per deal with an event by as_of: the rank it reached
        SELECT ev.opportunity_id,
               CASE WHEN bool_or(ev.kind = 'won') THEN min(ev.open_stages) ELSE max(ev.rank) END AS reached_rank
          FROM events ev
         GROUP BY ev.opportunity_id
    )$join$ END
        || CASE WHEN in_order AND NOT walk THEN $strict$, firsts AS (
        -- when each open rank was first entered
        SELECT ev.opportunity_id, ev.rank, min(ev.entered_at) AS first_at
          FROM events ev
         WHERE ev.kind = 'open'
         GROUP BY ev.opportunity_id, ev.rank
    ), strict_prefix AS MATERIALIZED (
        -- the prefix 1..k of ranks first entered in order ends before the
        -- first rank that is missing or was first entered too early (once:
        -- as the inner side of a nested loop it would run per deal)
        SELECT f.opportunity_id,
               nullif(coalesce(min(f.rn) FILTER (WHERE f.broken) - 1, count(*)), 0)::integer AS strict_rank
          FROM (SELECT firsts.opportunity_id,
                       row_number() OVER w AS rn,
                       firsts.rank <> row_number() OVER w
                           OR firsts.first_at < lag(firsts.first_at) OVER w AS broken
                  FROM firsts
                WINDOW w AS (PARTITION BY firsts.opportunity_id ORDER BY firsts.rank)) f
         GROUP BY f.opportunity_id
    )$strict$ ELSE '' END,
        sales_kpi_internal.period_column(bounds, 'l.created_at'),
        -- a won deal of a pipeline without open stages reached no rank
        CASE WHEN NOT in_order AND walk THEN 'nullif(l.reached_rank, 0)'
             WHEN NOT in_order THEN 'nullif(pr.reached_rank, 0)'
             WHEN walk THEN 'l.strict_rank'
             ELSE 'sp.strict_rank' END,
        CASE WHEN walk THEN ''
             ELSE '
              JOIN progress pr ON pr.opportunity_id = l.opportunity_id' END
        || CASE WHEN in_order AND NOT walk THEN '
              LEFT JOIN strict_prefix sp ON sp.opportunity_id = pr.opportunity_id' ELSE '' END)
        USING lo, hi, as_of, dim, bounds, mid, first_id, last_id;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.funnel_partials(timestamptz[], timestamptz, text, boolean, text) IS
    'Internal: per period [bounds[i], bounds[i+1]) of creation, dimension key and pipeline, funnel summaries of the open-stage rank the deals reached as of as_of (all, still open, won); with strict, only ranks first entered in order; method walk or group (null: by the share of deals in the periods).';

-- The query of the deals created in [$1, $2) and no later than $3, as they
-- stood at $3, with their breakdown key and value for the dimension $4
-- (checked by the caller).  Deals with no stage by $3 are absent.  Run by
-- EXECUTE in deal_states_at (the rows) and state_partials (summed up in the
-- same query): each run is planned with its actual dates and dimension, so
-- the lookups and joins a dimension does not need are planned away.
CREATE FUNCTION sales_kpi_internal.deal_state_query(dimension text, moved boolean DEFAULT true)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
WITH state AS (
    SELECT o.opportunity_id, o.created_at, o.owner_id, o.pipeline_id, o.account_id, o.source,
           o.competitor, o.kind, o.product,
           %s
           coalesce(o.snapshot_at > least(o.closed_at, $3), false) AS late
      FROM %s o
), labelled AS (
    -- deals with no stage by the instant drop out here
    SELECT st.*, s.kind AS outcome, CASE WHEN s.kind <> 'open' THEN st.closed_at END AS closed
      FROM state st
      JOIN @extschema@.stage s ON s.stage_id = st.stage_id
), owned AS (
    SELECT lb.*,
           CASE WHEN $4 NOT IN ('rep', 'team') THEN NULL
                WHEN NOT (lb.late OR lb.moved) THEN lb.owner_id
                ELSE coalesce((sales_kpi_internal.snapshot_at(lb.opportunity_id, coalesce(lb.closed, $3))).owner_id,
                              lb.owner_id)
           END AS owner_then
      FROM labelled lb
), valued AS (
    SELECT ow.opportunity_id, ow.created_at, ow.outcome, ow.closed, ow.owner_then, ow.pipeline_id,
           %s AS value
      FROM owned ow
      %s
)
SELECT v.opportunity_id, v.created_at, v.outcome, v.closed AS closed_at, v.owner_then AS owner_id,
       sales_kpi_internal.dimension_key($4, v.pipeline_id, v.owner_then, v.value) AS dimension_key,
       v.value AS dimension_value, v.pipeline_id
  FROM valued v
$sql$,
        CASE WHEN moved IS NOT FALSE THEN $moved$o.stage_entered_at > $3 AS moved,
           CASE WHEN o.stage_entered_at > $3 THEN (o.e).stage_id ELSE o.stage_id END AS stage_id,
           CASE WHEN o.stage_entered_at > $3 THEN (o.e).entered_at ELSE o.closed_at END AS closed_at,$moved$
             ELSE 'false AS moved, o.stage_id, o.closed_at,' END,
        CASE WHEN moved IS NOT FALSE THEN $moved$(
            -- a deal that moved since has its newest event not after $3
            -- looked up, once: OFFSET 0 keeps this subquery apart (pulled
            -- up, the call would be made once per field read) and, unlike
            -- a LIMIT, out of no parallel plan
            SELECT o.opportunity_id, o.created_at, o.owner_id, o.pipeline_id, o.account_id, o.source,
                   o.competitor, o.kind, o.product, o.stage_entered_at, o.snapshot_at, o.stage_id, o.closed_at,
                   sales_kpi_internal.stage_event_at(CASE WHEN o.stage_entered_at > $3 THEN o.opportunity_id END, $3)
                       AS e
              FROM @extschema@.opportunity o
             WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3
            OFFSET 0)$moved$
             ELSE $plain$(SELECT o.* FROM @extschema@.opportunity o
             WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3)$plain$ END,
        d.value, d.joins)
      FROM sales_kpi_internal.dimension_sql(dimension, 'ow', 'ow.owner_then') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.deal_state_query(text, boolean) IS
    'Internal: the query of the deals created in [$1, $2) and by $3 as they stood at $3, with their breakdown for a dimension (also passed as $4), run by deal_states_at() and state_partials(); with moved false, for when no deal moved after $3.';

-- Internal: runs a state partials query (its text, and the arguments of
-- state_partials) grouped by sorting, in the leader alone: for the
-- breakdowns with many keys (rep, team).  A survival summary takes 6 kB
-- per group: a year of monthly rep groups (tens of thousands) hashes to
-- disk, at twice the time of sorting the deals by group, and parallel
-- workers would each pass their summary per group through the gather (750
-- MB for a year of monthly rep groups at 1M deals, 1.6 s against 1.2 s in
-- the leader; the planner prices a row the same whatever its width).
-- Settings of the function rather than set_config(), which a parallel
-- query refuses.
CREATE FUNCTION sales_kpi_internal.state_partials_sorted(query text, bounds timestamptz[], at timestamptz,
                                                         dimension text)
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               ages @extschema@.survival, still_open bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
SET enable_hashagg = off
SET max_parallel_workers_per_gather = 0
AS $$
BEGIN
    RETURN QUERY EXECUTE query USING bounds[1], bounds[cardinality(bounds)], at, dimension, bounds;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.state_partials_sorted(text, timestamptz[], timestamptz, text) IS
    'Internal: runs the query of state_partials() for a breakdown with many keys, grouped by sorting and without parallel workers.';

-- The partials of the cohort KPIs: per creation period [bounds[i],
-- bounds[i+1]) and dimension key, the deals created then (and by `at`) as
-- they stood at `at`: the survival summary of their age at the close, open
-- deals censored at `at` (negative ages as 0), and how many are still
-- open.  Only periods and keys with a deal have a row; any split of a
-- period into consecutive bounds rolls up to the same summaries.
CREATE FUNCTION sales_kpi_internal.state_partials(bounds timestamptz[], at timestamptz,
                                           dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               ages @extschema@.survival, still_open bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
-- parallel workers only where they pay for their start (closed_partials
-- says why)
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    query text;
BEGIN
    PERFORM sales_kpi_internal.required_instant(at, 'at');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- rep, team and pipeline are grouped by the rep credited or the pipeline,
    -- and named afterwards (partials_sql)
    query := sales_kpi_internal.partials_sql(
            dim, sales_kpi_internal.deal_state_query(sales_kpi_internal.row_dimension(dim),
                                                     sales_kpi_internal.moved_since(at)),
            sales_kpi_internal.period_column(bounds, 'r.created_at'),
            $agg$@extschema@.compact(@extschema@.survival_agg(
                     greatest(coalesce(r.closed_at, $3) - r.created_at, interval '0'), r.outcome)) AS ages,
                 count(*) FILTER (WHERE r.outcome = 'open') AS still_open$agg$,
            '@extschema@.compact(@extschema@.rollup(l.ages)), sum(l.still_open)::bigint');
    -- the few groups of the other breakdowns hash in memory
    IF dim IN ('rep', 'team') THEN
        RETURN QUERY SELECT * FROM sales_kpi_internal.state_partials_sorted(query, bounds, at, dim);
    ELSE
        RETURN QUERY EXECUTE query USING bounds[1], bounds[cardinality(bounds)], at, dim, bounds;
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.state_partials(timestamptz[], timestamptz, text) IS
    'Internal: per creation period [bounds[i], bounds[i+1]) and dimension key, the deals created then as they stood at an instant: survival summary of their age at the close (open deals censored at the instant) and how many are still open.';

-- The query of the deals open at $1 (created by then, not closed then,
-- with an open stage at $1), with their stage, amount in the base currency
-- at the rate of $1's date in the reporting time zone, expected close,
-- forecast category (the stage's when the deal has none), owner and their
-- breakdown key and value for the dimension $2 (checked by the caller;
-- the rep is the owner at $1).  Run by EXECUTE in open_deal_rows and
-- open_partials, planned with the actual instant and dimension.
CREATE FUNCTION sales_kpi_internal.open_deal_query(dimension text, moved boolean DEFAULT true,
                                                   changed boolean DEFAULT true, close_range boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
WITH staged AS (
    SELECT o.opportunity_id, o.pipeline_id, o.currency, o.account_id, o.source, o.competitor,
           o.kind, o.product,
           CASE WHEN o.stage_entered_at <= $1 THEN o.stage_id ELSE mv.stage_id END AS stage_id,
           CASE WHEN o.stage_entered_at <= $1 THEN o.stage_entered_at ELSE mv.entered_at END AS entered_at,
           CASE WHEN o.snapshot_at > $1 THEN ch.amount ELSE o.amount END AS amount,
           CASE WHEN o.snapshot_at > $1 THEN ch.expected_close ELSE o.expected_close END AS expected_close,
           CASE WHEN o.snapshot_at > $1 THEN ch.forecast_category ELSE o.forecast_category END
               AS forecast_category,
           CASE WHEN o.snapshot_at > $1 THEN ch.owner_id ELSE o.owner_id END AS owner_id
      FROM @extschema@.opportunity o
%s%s
     WHERE o.created_at <= $1
       -- open at the instant: open now, or closed after it
       AND (o.closed_at IS NULL OR o.closed_at > $1)
)
SELECT st.opportunity_id, st.pipeline_id, st.stage_id, st.owner_id,
       @extschema@.to_base(st.amount, st.currency, $3) AS amount,
       st.expected_close, coalesce(st.forecast_category, s.forecast_category) AS forecast_category,
       st.entered_at, s.position AS stage_position, s.probability AS stage_probability,
       sales_kpi_internal.dimension_key($2, st.pipeline_id, st.owner_id, v.value) AS dimension_key,
       v.value AS dimension_value
  FROM staged st
  JOIN @extschema@.stage s ON s.stage_id = st.stage_id AND s.kind = 'open'
  %s
 CROSS JOIN LATERAL (SELECT %s AS value) v
%s$sql$,
        CASE WHEN moved IS NOT FALSE THEN $mv$      -- moved since: the newest stage event not after the instant
      LEFT JOIN LATERAL (
            SELECT ev.stage_id, ev.entered_at
              FROM @extschema@.stage_event ev
             WHERE o.stage_entered_at > $1
               AND ev.opportunity_id = o.opportunity_id AND ev.entered_at <= $1
             ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
             LIMIT 1) mv ON true
$mv$
             -- none did: a deal without events has no stage at $1, as above
             ELSE $mv$      CROSS JOIN (SELECT NULL::bigint AS stage_id, NULL::timestamptz AS entered_at) mv
$mv$ END,
        CASE WHEN changed IS NOT FALSE THEN $ch$      -- changed since: the newest snapshot not after the instant
      LEFT JOIN LATERAL (
            SELECT hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
              FROM @extschema@.opportunity_history hi
             WHERE o.snapshot_at > $1
               AND hi.opportunity_id = o.opportunity_id AND hi.changed_at <= $1
             ORDER BY hi.changed_at DESC
             LIMIT 1) ch ON true
$ch$
             ELSE $ch$      CROSS JOIN (SELECT NULL::numeric AS amount, NULL::date AS expected_close,
                         NULL::text AS forecast_category, NULL::bigint AS owner_id) ch
$ch$ END,
        d.joins, d.value,
        CASE WHEN close_range THEN $cr$ WHERE st.expected_close >= $4 AND st.expected_close < $5
$cr$ ELSE '' END)
      FROM sales_kpi_internal.dimension_sql(dimension, 'st', 'st.owner_id') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.open_deal_query(text, boolean, boolean, boolean) IS
    'Internal: the query of the deals open at $1 with their stage, amount in the base currency, expected close, forecast category, owner and breakdown for a dimension (also passed as $2), run by open_deal_rows() and open_partials(); with moved or changed false, for when no stage event or no snapshot is after $1; with close_range, of the deals expected to close in [$4, $5) (dates) alone.';

CREATE FUNCTION sales_kpi_internal.open_deal_rows(as_of timestamptz, dimension text DEFAULT 'company',
                                                  close_from timestamptz DEFAULT NULL,
                                                  close_to timestamptz DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, stage_id bigint, owner_id bigint, amount numeric,
               expected_close date, forecast_category text, entered_stage_at timestamptz,
               stage_position integer, stage_probability numeric, dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- as open_partials
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    tz text := @extschema@.reporting_timezone();
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    RETURN QUERY EXECUTE sales_kpi_internal.open_deal_query(dim, sales_kpi_internal.moved_since(as_of),
                                                            sales_kpi_internal.changed_since(as_of),
                                                            close_from IS NOT NULL OR close_to IS NOT NULL)
        USING as_of, dim, (as_of AT TIME ZONE tz)::date,
              coalesce(sales_kpi_internal.first_local_date(close_from, tz), '-infinity'),
              coalesce(sales_kpi_internal.first_local_date(close_to, tz), 'infinity');
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.open_deal_rows(timestamptz, text, timestamptz, timestamptz) IS
    'Internal: the deals open at as_of (those of pipeline_as_of(as_of, open_only => true)) with their stage''s position and probability, amount in the base currency at the as_of date rate and breakdown key and value for a dimension (the rep: the owner at as_of); with close_from or close_to, those expected to close in [close_from, close_to) alone.';

-- Internal: runs an open partials query (its text and the arguments of
-- open_partials) with the planner free to sort: for the rep breakdown,
-- whose thousands of (rep, stage) groups sort faster than they hash (0.36
-- s against 0.49 s at 1M deals).  A setting of the function rather than
-- set_config(), which a parallel query refuses.
CREATE FUNCTION sales_kpi_internal.open_partials_sorted(query text, as_of timestamptz, dimension text,
                                                        rate_date date)
RETURNS TABLE (dimension_key text, dimension_value text, stage_id bigint, deals bigint, amount numeric,
               weighted_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
SET enable_sort = on
AS $$
BEGIN
    RETURN QUERY EXECUTE query USING as_of, dimension, rate_date;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.open_partials_sorted(text, timestamptz, text, date) IS
    'Internal: runs the query of open_partials() for the rep breakdown, free to group by sorting.';

-- The partials of the stage-weighted pipeline KPIs (weighted_pipeline_value
-- with the stage weighting, stage_pipeline_value): per dimension key and
-- open stage, the deals open at as_of, their amount and the weighted sum
-- of amount x the stage's probability, in the base currency at the as_of
-- date rate.
CREATE FUNCTION sales_kpi_internal.open_partials(as_of timestamptz, dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, stage_id bigint, deals bigint, amount numeric,
               weighted_amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- the deal's stage at as_of is a CASE over a lookup, whose join to the
-- open stages the planner takes for one row in ten: it would sort the
-- open deals into their few groups (0.31 s at 1M deals by pipeline)
-- rather than hash them (0.20 s); the rep groups, thousands, are left to
-- the planner (open_partials_sorted)
SET work_mem = '64MB'
SET enable_sort = off
-- parallel workers only where they pay for their start, as in
-- closed_partials: by pipeline at 1M deals, 0.23 s with two workers and
-- 0.14-0.21 s without
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    query text;
    rate_date date;
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    rate_date := (as_of AT TIME ZONE @extschema@.reporting_timezone())::date;
    -- grouped by the id that keys the value (key_column), keyed per group
    query := format($sql$
        SELECT sales_kpi_internal.dimension_key($2, %1$s, %1$s, od.dimension_value), od.dimension_value,
               od.stage_id, count(*), sum(od.amount), @extschema@.weighted_pipeline(od.amount, od.stage_probability)
          FROM (%2$s) od
         GROUP BY %1$s, od.dimension_value, od.stage_id$sql$,
        sales_kpi_internal.key_column(dim, 'od'),
        sales_kpi_internal.open_deal_query(dim, sales_kpi_internal.moved_since(as_of),
                                           sales_kpi_internal.changed_since(as_of)));
    IF dim = 'rep' THEN
        RETURN QUERY SELECT * FROM sales_kpi_internal.open_partials_sorted(query, as_of, dim, rate_date);
    ELSE
        RETURN QUERY EXECUTE query USING as_of, dim, rate_date;
    END IF;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.open_partials(timestamptz, text) IS
    'Internal: per dimension key and open stage, the deals open at as_of: count, amount and amount x the stage probability, in the base currency at the as_of date rate.';

DROP FUNCTION @extschema@.deal_states_at(timestamptz, timestamptz, timestamptz, boolean);
-- Internal: every deal created in [created_from, created_to) and no later
-- than at, as it stood at `at`, with its breakdown key and value: its
-- newest stage event not after `at` gives the outcome (won, lost, or open)
-- and the close instant.  Deals with no stage event by then are absent.
-- For the rep and team breakdowns, owner_id is the owner at the close
-- (closed deals) or at `at` (open deals) from opportunity_history, falling
-- back to the current owner when no snapshot is that old; as in
-- closed_deal_rows, only deals with snapshots after that instant are
-- looked up.  For the other breakdowns, owner_id is NULL.  The attributes
-- are read in the same pass (joins a dimension does not need are planned
-- away).
CREATE FUNCTION sales_kpi_internal.deal_states_at(created_from timestamptz, created_to timestamptz,
                                           at timestamptz, dimension text DEFAULT 'company')
RETURNS TABLE (opportunity_id bigint, created_at timestamptz, outcome text, closed_at timestamptz,
               owner_id bigint, dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    IF created_from IS NULL OR created_to IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'arguments "created_from", "created_to" and "at" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.finite_instant(at, 'at');
    RETURN QUERY EXECUTE format($sql$
        SELECT ds.opportunity_id, ds.created_at, ds.outcome, ds.closed_at, ds.owner_id, ds.dimension_key,
               ds.dimension_value
          FROM (%s) ds$sql$, sales_kpi_internal.deal_state_query(dim, sales_kpi_internal.moved_since(at)))
        USING created_from, created_to, at, dim;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.deal_states_at(timestamptz, timestamptz, timestamptz, text) IS
    'Internal: deals created in [created_from, created_to) as they stood at an instant: outcome won, lost or open and close instant from the newest stage event not after it, with the breakdown key and value of a dimension (the rep credited: the owner at the close, or at the instant when open).';

CREATE OR REPLACE FUNCTION @extschema@.cohort_win_rate(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                            grain text DEFAULT 'month', dimension text DEFAULT 'company',
                                            as_of timestamptz DEFAULT now(), horizon interval DEFAULT '90 days')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               deals bigint, won bigint, still_open bigint,
               naive_win_rate double precision, cumulative_win_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH s AS MATERIALIZED (
        SELECT r.period_start, r.period_end,
               row_number() OVER (ORDER BY r.period_start) AS idx
          FROM sales_kpi_internal.resolve_series(cohort_win_rate.from_at, cohort_win_rate.to_at,
                                          cohort_win_rate.grain, cohort_win_rate.as_of) r
         -- checked before the series is made
         WHERE sales_kpi_internal.check_kpi_args(grain => cohort_win_rate.grain, horizon => cohort_win_rate.horizon)
    ), b AS (
        -- the series' periods are consecutive: their starts and the last end
        SELECT array_agg(s.period_start ORDER BY s.period_start) || max(s.period_end) AS bounds,
               sales_kpi_internal.outcome_dimension(cohort_win_rate.dimension) AS dim
          FROM s
    ), g AS (
        SELECT s.idx, sp.dimension_value AS value, @extschema@.rollup(sp.ages) AS sv,
               sum(sp.still_open) AS still_open
          FROM b
         CROSS JOIN sales_kpi_internal.state_partials(b.bounds, cohort_win_rate.as_of, b.dim) sp
          JOIN s ON s.period_start = sp.period_start
         GROUP BY 1, 2
    )
    SELECT b.dim, coalesce(g.value, 'all'), s.period_start, s.period_end,
           coalesce(@extschema@.survival_count(g.sv), 0),
           coalesce(round(@extschema@.naive_win_rate(g.sv, cohort_win_rate.horizon)
                          * @extschema@.survival_count(g.sv))::bigint, 0),
           coalesce(g.still_open, 0)::bigint,
           @extschema@.naive_win_rate(g.sv, cohort_win_rate.horizon),
           @extschema@.cumulative_win_rate(g.sv, cohort_win_rate.horizon)
      FROM b
     CROSS JOIN s
      LEFT JOIN g ON g.idx = s.idx
     WHERE g.value IS NOT NULL OR cohort_win_rate.dimension = 'company'
     ORDER BY 2, 3
$$;
COMMENT ON FUNCTION @extschema@.cohort_win_rate(timestamptz, timestamptz, text, text, timestamptz, interval) IS
    'Per creation cohort (week, month, quarter or year): deals, those won within the horizon of creation, the naive share and the Aalen-Johansen cumulative incidence of winning by the horizon (lost competing, open deals censored at as_of), as the history stood at as_of.';

CREATE OR REPLACE FUNCTION @extschema@.data_quality_findings(as_of timestamptz DEFAULT now())
RETURNS TABLE (table_name text, key text, rule text, detail text,
               opportunity_id bigint, rep_id bigint, found_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
SET work_mem = '64MB'
AS $fn$
#variable_conflict use_column
DECLARE
    -- the moves that break a rule whatever their instants: between open
    -- stages not one ordinal apart, and from a close to anything but an
    -- open stage
    pair_from bigint[];
    pair_to bigint[];
    -- the won and lost stages
    terminal bigint[];
    -- the deals are read in two halves, ids up to mid and after it
    mid bigint := coalesce(sales_kpi_internal.deal_id_midpoint(), 0);
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'argument "as_of" must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT coalesce(array_agg(p.stage_id), '{}'), coalesce(array_agg(s.stage_id), '{}')
      INTO pair_from, pair_to
      FROM sales_kpi_internal.stage_ordinal() p, sales_kpi_internal.stage_ordinal() s
     WHERE (p.kind = 'open' AND s.kind = 'open' AND s.ordinal <> p.ordinal + 1)
        OR (p.kind IN ('won', 'lost') AND s.kind <> 'open');
    SELECT coalesce(array_agg(s.stage_id), '{}') INTO terminal
      FROM @extschema@.stage s WHERE s.kind IN ('won', 'lost');
    RETURN QUERY
    -- (not materialized: a CTE scan would keep the query from parallel workers)
    WITH st AS NOT MATERIALIZED (
        SELECT * FROM sales_kpi_internal.stage_ordinal()
    ), hist AS MATERIALIZED (
        -- one pass over the deals, their histories and their first
        -- snapshots (stage_history_check), in two halves of the deals that
        -- parallel workers read at once: the events that may break a rule
        -- (the moves between the pairs of stages listed and the other
        -- suspects) and the deals whose row may
        SELECT * FROM sales_kpi_internal.stage_history_check(as_of, pair_from, pair_to, terminal, NULL, mid)
        UNION ALL
        SELECT * FROM sales_kpi_internal.stage_history_check(as_of, pair_from, pair_to, terminal, mid + 1, NULL)
    ), ev AS (
        -- the suspect events (the rules are checked below: an event that
        -- breaks none gives no row)
        SELECT x.stage_event_id, x.opportunity_id, x.stage_id, x.entered_at, x.amount, x.rep_id,
               x.prev_entered_at, x.min_later_id,
               s.kind, s.ordinal, s.name, ps.kind AS prev_kind, ps.ordinal AS prev_ordinal, ps.name AS prev_name
          FROM hist x
          JOIN st s ON s.stage_id = x.stage_id
          LEFT JOIN st ps ON ps.stage_id = x.prev_stage_id
         WHERE NOT x.is_deal
    ), deal AS (
        -- the deals whose row may break a rule
        SELECT d.opportunity_id, d.owner_id, d.amount, d.created_at, d.closed_at, d.stage_id,
               d.stage_entered_at, cs.kind AS cur_kind, cs.name AS cur_name,
               d.ev_stage_id, es.kind AS ev_kind, d.ev_entered_at,
               d.first_entered_at, d.first_event_id, d.moved_after_as_of, d.first_changed_at
          FROM hist d
          LEFT JOIN st cs ON cs.stage_id = d.stage_id
          LEFT JOIN st es ON es.stage_id = d.ev_stage_id
         WHERE d.is_deal
    ), open_positions AS (
        SELECT s.pipeline_id, count(*) AS n, max(s.position) AS top,
               string_agg(s.position::text, ', ' ORDER BY s.position) AS positions
          FROM @extschema@.stage s
         WHERE s.kind = 'open'
         GROUP BY s.pipeline_id
    )
    -- stage history (the detail is formatted only for the rules hit); the
    -- rules an event breaks come from an array in the target list, which
    -- costs far less per row than a join to a list of rules
    SELECT 'stage_event'::text, 'stage_event_id=' || e.stage_event_id, e.rule,
           CASE e.rule
             WHEN 'event_out_of_order' THEN
                  format('entered %s at %s, earlier than event %s recorded before it',
                         e.name, e.entered_at, e.min_later_id)
             WHEN 'event_after_close' THEN
                  CASE WHEN e.kind <> 'open'
                       THEN format('%s after %s without a reopening', e.name, e.prev_name)
                       ELSE format('%s in the same instant as %s', e.name, e.prev_name) END
             WHEN 'regression' THEN
                  format('from %s (%s) back to %s (%s)', e.prev_name, e.prev_ordinal, e.name, e.ordinal)
             WHEN 'skipped_stage' THEN
                  format('from %s (%s) to %s (%s), skipping %s open stage(s)',
                         e.prev_name, e.prev_ordinal, e.name, e.ordinal, e.ordinal - e.prev_ordinal - 1)
             WHEN 'negative_amount' THEN format('amount %s', e.amount)
           END,
           e.opportunity_id, e.rep_id, e.entered_at
      FROM (SELECT v.*,
                   unnest(array_remove(ARRAY[
                       CASE WHEN v.min_later_id < v.stage_event_id THEN 'event_out_of_order' END,
                       CASE WHEN v.prev_kind IN ('won', 'lost') AND (v.kind <> 'open' OR v.entered_at = v.prev_entered_at)
                            THEN 'event_after_close' END,
                       CASE WHEN v.prev_kind = 'open' AND v.kind = 'open' AND v.ordinal <= v.prev_ordinal
                            THEN 'regression' END,
                       CASE WHEN v.prev_kind = 'open' AND v.kind = 'open' AND v.ordinal > v.prev_ordinal + 1
                            THEN 'skipped_stage' END,
                       CASE WHEN v.amount < 0 THEN 'negative_amount' END], NULL)) AS rule
              FROM ev v) e
    UNION ALL
    -- deals
    SELECT 'opportunity'::text, 'opportunity_id=' || d.opportunity_id, d.rule,
           CASE d.rule
             WHEN 'no_stage_event' THEN 'no stage event entered by as_of'
             WHEN 'event_before_creation' THEN
                  format('first stage event %s entered at %s, before created_at %s',
                         d.first_event_id, d.first_entered_at, d.created_at)
             WHEN 'closed_without_terminal_stage' THEN
                  format('closed_at %s but stage %s', d.closed_at,
                         coalesce(d.cur_name || ' (' || d.cur_kind || ')', 'null'))
             WHEN 'terminal_stage_without_close' THEN
                  format('stage %s (%s) but closed_at null', d.cur_name, d.cur_kind)
             WHEN 'stage_out_of_sync' THEN
                  format('row says stage_id %s, closed_at %s, stage_entered_at %s; newest event says stage_id %s, closed_at %s, entered at %s',
                         coalesce(d.stage_id::text, 'null'), coalesce(d.closed_at::text, 'null'),
                         coalesce(d.stage_entered_at::text, 'null'), d.ev_stage_id,
                         coalesce(CASE WHEN d.ev_kind <> 'open' THEN d.ev_entered_at END::text, 'null'),
                         d.ev_entered_at)
             WHEN 'negative_amount' THEN format('amount %s', d.amount)
             WHEN 'missing_owner' THEN 'owner_id is null'
             WHEN 'missing_snapshot' THEN
                  CASE WHEN d.first_changed_at IS NULL THEN 'no opportunity_history snapshot'
                       ELSE format('first opportunity_history snapshot at %s, after created_at %s',
                                   d.first_changed_at, d.created_at) END
           END,
           d.opportunity_id, d.owner_id,
           CASE d.rule
             WHEN 'event_before_creation' THEN d.first_entered_at
             WHEN 'closed_without_terminal_stage' THEN d.closed_at
             WHEN 'stage_out_of_sync' THEN d.ev_entered_at
             ELSE d.created_at
           END
      -- the rules a deal breaks, as for the events
      FROM (SELECT x.*,
                   unnest(array_remove(ARRAY[
                       CASE WHEN x.ev_stage_id IS NULL THEN 'no_stage_event' END,
                       CASE WHEN x.first_entered_at < x.created_at THEN 'event_before_creation' END,
                       CASE WHEN x.closed_at IS NOT NULL AND x.cur_kind IS DISTINCT FROM 'won'
                                 AND x.cur_kind IS DISTINCT FROM 'lost'
                            THEN 'closed_without_terminal_stage' END,
                       CASE WHEN x.closed_at IS NULL AND x.cur_kind IN ('won', 'lost')
                            THEN 'terminal_stage_without_close' END,
                       CASE WHEN x.ev_stage_id IS NOT NULL AND NOT x.moved_after_as_of
                                 AND (x.stage_id, x.closed_at, x.stage_entered_at) IS DISTINCT FROM
                                     (x.ev_stage_id, CASE WHEN x.ev_kind <> 'open' THEN x.ev_entered_at END,
                                      x.ev_entered_at)
                            THEN 'stage_out_of_sync' END,
                       CASE WHEN x.amount < 0 THEN 'negative_amount' END,
                       CASE WHEN x.owner_id IS NULL THEN 'missing_owner' END,
                       CASE WHEN x.first_changed_at IS NULL OR x.first_changed_at > x.created_at
                            THEN 'missing_snapshot' END], NULL)) AS rule
              FROM deal x) d
    UNION ALL
    -- deals without a customer (allowed: real CRM exports have them)
    SELECT 'opportunity'::text, 'opportunity_id=' || o.opportunity_id, 'missing_account'::text,
           'account_id is null', o.opportunity_id, o.owner_id, o.created_at
      FROM @extschema@.opportunity o
     WHERE o.account_id IS NULL AND o.created_at <= as_of
    UNION ALL
    -- amounts converted at a rate that does not apply: the currency has no
    -- rate at all (every KPI converting the row fails), or the row is dated
    -- before the currency's first rate (which then applies)
    SELECT x.table_name, x.key, 'missing_fx_rate'::text,
           CASE WHEN r.first_from IS NULL
                THEN format('no exchange rate for currency %s: every KPI that converts it fails', x.currency)
                ELSE format('%s %s, before the first %s rate (valid_from %s), which is used',
                            x.what, x.on_date, x.currency, r.first_from) END,
           x.opportunity_id, x.rep_id, x.found_at
      FROM (SELECT 'opportunity'::text AS table_name, 'opportunity_id=' || o.opportunity_id AS key,
                   o.currency, 'created on'::text AS what,
                   (o.created_at AT TIME ZONE @extschema@.reporting_timezone())::date AS on_date,
                   o.opportunity_id, o.owner_id AS rep_id, o.created_at AS found_at
              FROM @extschema@.opportunity o
             WHERE o.currency <> @extschema@.base_currency() AND o.created_at <= as_of
            UNION ALL
            SELECT 'collection', 'collection_id=' || c.collection_id, c.currency, 'due on', c.due_on,
                   c.opportunity_id, NULL::bigint, c.due_on::timestamptz
              FROM @extschema@.collection c
             WHERE c.currency <> @extschema@.base_currency()) x
      LEFT JOIN (SELECT f.currency, min(f.valid_from) AS first_from
                   FROM @extschema@.fx_rate f GROUP BY f.currency) r ON r.currency = x.currency
     WHERE r.first_from IS NULL OR x.on_date < r.first_from
    UNION ALL
    -- history dated beyond now() + future_tolerance(), whatever as_of: a
    -- typo or a bad import that the triggers refuse, got in with them off
    SELECT 'stage_event'::text, 'stage_event_id=' || e.stage_event_id, 'future_event'::text,
           format('entered at %s, more than %s after now', e.entered_at, @extschema@.future_tolerance()),
           e.opportunity_id, e.rep_id, e.entered_at
      FROM @extschema@.stage_event e
     WHERE e.entered_at > now() + @extschema@.future_tolerance()
    UNION ALL
    SELECT 'opportunity_history'::text,
           format('opportunity_id=%s,changed_at=%s', h.opportunity_id, h.changed_at), 'future_event'::text,
           format('snapshot at %s, more than %s after now', h.changed_at, @extschema@.future_tolerance()),
           h.opportunity_id, h.owner_id, h.changed_at
      FROM @extschema@.opportunity_history h
     WHERE h.changed_at > now() + @extschema@.future_tolerance()
    UNION ALL
    SELECT 'opportunity'::text, 'opportunity_id=' || o.opportunity_id, 'future_event'::text,
           format('created at %s, more than %s after now', o.created_at, @extschema@.future_tolerance()),
           o.opportunity_id, o.owner_id, o.created_at
      FROM @extschema@.opportunity o
     WHERE o.created_at > now() + @extschema@.future_tolerance()
    UNION ALL
    -- snapshots
    SELECT 'opportunity_history'::text,
           format('opportunity_id=%s,changed_at=%s', h.opportunity_id, h.changed_at),
           'negative_amount'::text, format('amount %s', h.amount),
           h.opportunity_id, h.owner_id, h.changed_at
      FROM @extschema@.opportunity_history h
     WHERE h.amount < 0 AND h.changed_at <= as_of
    UNION ALL
    -- activities
    SELECT 'activity'::text, 'activity_id=' || a.activity_id, 'negative_duration'::text,
           format('duration_s %s', a.duration_s),
           a.opportunity_id, a.rep_id, a.occurred_at
      FROM @extschema@.activity a
     WHERE a.duration_s < 0 AND a.occurred_at <= as_of
    UNION ALL
    -- process definition
    SELECT 'stage'::text, 'pipeline_id=' || p.pipeline_id, 'stage_position_gap'::text,
           format('open stage positions are %s, not 1..%s', p.positions, p.n),
           NULL::bigint, NULL::bigint, NULL::timestamptz
      FROM open_positions p
     WHERE p.top <> p.n;
END;
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.deal_dimension(opportunity_ids bigint[], dimension text,
                                           owner_at timestamptz DEFAULT NULL, owners bigint[] DEFAULT NULL)
RETURNS TABLE (opportunity_id bigint, dimension_value text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- one look-up per deal, even when called from a function that prefers bitmap scans
SET enable_indexscan = on
AS $$
    SELECT i.id,
           @extschema@.dimension_value(dimension, p.name, r.name, r.team, o.source, a.industry, a.segment,
                                       a.region, o.competitor, o.kind, o.product)
      FROM unnest(opportunity_ids, owners) AS i(id, owner_id)
      JOIN @extschema@.opportunity o ON o.opportunity_id = i.id
      JOIN @extschema@.pipeline p ON p.pipeline_id = o.pipeline_id
      LEFT JOIN LATERAL (
            SELECT ac.industry, ac.segment, ac.region
              FROM @extschema@.account ac
             WHERE ac.account_id = o.account_id AND dimension IN ('industry', 'segment', 'region')) a ON true
      LEFT JOIN LATERAL (
            SELECT coalesce(i.owner_id,
                            (SELECT hi.owner_id
                               FROM @extschema@.opportunity_history hi
                              WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= owner_at
                              ORDER BY hi.changed_at DESC
                              LIMIT 1),
                            o.owner_id) AS owner_id
             WHERE dimension IN ('rep', 'team')) w ON true
      LEFT JOIN @extschema@.rep r ON r.rep_id = w.owner_id
$$;

CREATE OR REPLACE FUNCTION @extschema@.deal_size(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                      dimension text DEFAULT 'company', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               won bigint, won_amount numeric, avg_amount numeric, accounts bigint, arpa numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end, sales_kpi_internal.outcome_dimension(deal_size.dimension) AS dim
          FROM sales_kpi_internal.resolve_period(deal_size.period_start, deal_size.period_end, deal_size.as_of) r
    ), g AS (
        -- distinct accounts do not add up across periods: the period's sums
        SELECT ws.dimension_value AS value, ws.outcomes AS w, ws.accounts, ws.account_amount
          FROM p
         CROSS JOIN sales_kpi_internal.won_deal_summary(p.period_start, p.period_end, deal_size.as_of, p.dim) ws
    )
    SELECT p.dim, v.value, p.period_start, p.period_end,
           coalesce(@extschema@.won_count(g.w), 0),
           coalesce(@extschema@.won_amount(g.w), 0),
           @extschema@.avg_won_amount(g.w),
           coalesce(g.accounts, 0),
           g.account_amount / nullif(g.accounts, 0)
      FROM p
     CROSS JOIN (SELECT g.value FROM g
                 UNION
                 SELECT 'all' WHERE deal_size.dimension = 'company') v
      LEFT JOIN g ON g.value = v.value
     ORDER BY v.value
$$;
COMMENT ON FUNCTION @extschema@.deal_size(timestamptz, timestamptz, text, timestamptz) IS
    'Deals won in a period: count, won amount, mean deal amount and ARPA (won amount per distinct account), in the base currency at the close-date rate.';

-- The KPI engine, created deals (see 53_closed_partials.sql for the
-- pattern): the deals created in a period, by an instant.
--
-- * created_deal_rows: with the rep credited at that instant and the
--   breakdown (its query text also makes the new deals of
--   qualification_partials); deal_breakdowns: the same for listed deals
--   (conversion_alerts).
--   The owner at the instant is the deal's own unless its newest snapshot
--   is after the instant (changed since); only those deals read their
--   history, one index probe each inside the plan.
-- * creation_partials: per period of creation and breakdown key, the new
--   deals as created (count and amount of their first snapshot, the rep
--   credited being the owner then) and how many of them reached the second
--   open stage by the instant (pipeline_creation).
-- * qualification_partials: the leads, new deals and closed deals of a
--   period and how many qualified (funnel_rates).
--
-- The attributes come by hash joins in the same pass, only those the
-- dimension needs (dimension_sql).

CREATE FUNCTION sales_kpi_internal.created_deal_query(dimension text, by_ids boolean DEFAULT false,
                                                      with_stage boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
SELECT cr.opportunity_id, cr.pipeline_id, cr.owner_id, cr.created_at,
       sales_kpi_internal.dimension_key($4, cr.pipeline_id, cr.owner_id, v.value) AS dimension_key,
       v.value AS dimension_value%s
  FROM (SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.source, o.competitor, o.kind, o.product,
               o.created_at, o.stage_id, o.stage_entered_at,
               CASE WHEN o.snapshot_at > $3
                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id, $3)).owner_id, o.owner_id)
                    ELSE o.owner_id END AS owner_id
          FROM @extschema@.opportunity o
         WHERE %s) cr
  %s
 CROSS JOIN LATERAL (SELECT %s AS value) v
$sql$, CASE WHEN with_stage THEN ', cr.stage_id, cr.stage_entered_at' ELSE '' END,
       CASE WHEN by_ids THEN 'o.opportunity_id = ANY ($5)'
            ELSE 'o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3' END,
       d.joins, d.value)
      FROM sales_kpi_internal.dimension_sql(dimension, 'cr', 'cr.owner_id') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.created_deal_query(text, boolean, boolean) IS
    'Internal: the query of the deals created in [$1, $2) and by $3 (by_ids: the deals listed in $5, whenever created), with the owner at $3 and their breakdown for a dimension (also passed as $4), and with_stage their current stage and its entry, run by created_deal_rows(), deal_breakdowns() and qualification_partials().';

CREATE FUNCTION sales_kpi_internal.created_deal_rows(period_start timestamptz, period_end timestamptz,
                                              as_of timestamptz, dimension text DEFAULT 'company')
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, created_at timestamptz,
               dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    IF period_start IS NULL OR period_end IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'arguments "period_start", "period_end" and "as_of" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM sales_kpi_internal.finite_instant(as_of, 'as_of');
    RETURN QUERY EXECUTE sales_kpi_internal.created_deal_query(dim)
        USING period_start, period_end, as_of, dim;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.created_deal_rows(timestamptz, timestamptz, timestamptz, text) IS
    'Internal: the deals created in [period_start, period_end) and by as_of, with the owner at as_of (the rep credited) and the breakdown key and value of a dimension.';

-- The same for a set of deals found by other means (the entries of a
-- stage in a window): one index probe per listed deal, in id order.
CREATE FUNCTION sales_kpi_internal.deal_breakdowns(opportunity_ids bigint[], as_of timestamptz,
                                            dimension text DEFAULT 'company')
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, created_at timestamptz,
               dimension_key text, dimension_value text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    RETURN QUERY EXECUTE sales_kpi_internal.created_deal_query(dim, true)
        USING NULL::timestamptz, NULL::timestamptz, as_of, dim, opportunity_ids;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.deal_breakdowns(bigint[], timestamptz, text) IS
    'Internal: the listed deals with the owner at as_of (the rep credited) and the breakdown key and value of a dimension.';


CREATE OR REPLACE FUNCTION @extschema@.fx_rate_on(currency character, on_date date)
RETURNS numeric
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r numeric;
BEGIN
    IF currency = @extschema@.base_currency() THEN
        RETURN 1;
    END IF;
    SELECT f.rate INTO r
      FROM @extschema@.fx_rate f
     WHERE f.currency = fx_rate_on.currency
     ORDER BY f.valid_from <= on_date DESC,
              CASE WHEN f.valid_from <= on_date THEN f.valid_from END DESC,
              f.valid_from
     LIMIT 1;
    IF r IS NULL THEN
        RAISE EXCEPTION 'no exchange rate for currency %', currency
            USING ERRCODE = 'no_data_found',
                  DETAIL = format('Amounts in %s are converted to the base currency %s with sales_kpi.fx_rate, which has no row for %s.',
                                  currency, @extschema@.base_currency(), currency),
                  HINT = format('Insert the rates of %s into sales_kpi.fx_rate.', currency);
    END IF;
    RETURN r;
END;
$$;

CREATE OR REPLACE FUNCTION sales_kpi_internal.gate_violation_rows(from_at timestamptz, to_at timestamptz, dim text,
                                                as_of timestamptz)
RETURNS TABLE (dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, stage_event_id bigint, pipeline_id bigint, gate_mode text,
               from_stage text, to_stage text, moved_at timestamptz, rep_id bigint,
               missing_milestones text, missing_count bigint, completed_late_count bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    lo timestamptz;
    hi timestamptz;
    by_deal boolean := dim NOT IN ('company', 'rep', 'team');
    -- the deals are read in two halves, ids up to mid and after it
    mid bigint := coalesce(sales_kpi_internal.deal_id_midpoint(), 0);
    gate_from bigint[];
    gate_to bigint[];
    gate_milestone bigint[];
    gate_label text[];
BEGIN
    PERFORM sales_kpi_internal.check_health_rep_args(dim, as_of, NULL, from_at, to_at);
    SELECT min(s.period_start), max(s.period_end) INTO lo, hi
      FROM sales_kpi_internal.resolve_series(from_at, to_at, 'month', as_of) s;
    -- for every forward move between two stages of a pipeline (a later
    -- open stage, or won): the required milestones of the stages passed
    SELECT coalesce(array_agg(f.stage_id ORDER BY ps.position, ms.position), '{}'),
           coalesce(array_agg(t.stage_id ORDER BY ps.position, ms.position), '{}'),
           coalesce(array_agg(ms.milestone_id ORDER BY ps.position, ms.position), '{}'),
           coalesce(array_agg(format('%s: %s', ps.name, ms.name) ORDER BY ps.position, ms.position), '{}')
      INTO gate_from, gate_to, gate_milestone, gate_label
      FROM @extschema@.stage f
      JOIN @extschema@.stage t
        ON t.pipeline_id = f.pipeline_id
       AND (t.kind = 'won' OR (t.kind = 'open' AND t.position > f.position))
      JOIN @extschema@.stage ps
        ON ps.pipeline_id = f.pipeline_id AND ps.kind = 'open' AND ps.position >= f.position
       AND (t.kind = 'won' OR ps.position < t.position)
      JOIN @extschema@.milestone ms ON ms.stage_id = ps.stage_id AND ms.required
     WHERE f.kind = 'open';
    RETURN QUERY
    WITH violation AS (
        -- each forward move in the range that left a required milestone
        -- of a stage it passed incomplete
        SELECT v.stage_event_id, v.opportunity_id, v.from_stage_id, v.stage_id, v.entered_at, v.rep_id,
               v.missing_milestones, v.missing_count, v.completed_late_count
          FROM (SELECT * FROM sales_kpi_internal.gate_move_violations(as_of, lo, hi, gate_from, gate_to, gate_milestone,
                                                              gate_label, NULL, mid)
                UNION ALL
                SELECT * FROM sales_kpi_internal.gate_move_violations(as_of, lo, hi, gate_from, gate_to, gate_milestone,
                                                              gate_label, mid + 1, NULL)) v
    ), bd AS (
        -- a deal attribute's breakdown of the deals that moved, read in one pass
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN by_deal THEN ARRAY(SELECT DISTINCT v.opportunity_id FROM violation v)
                        ELSE '{}' END, as_of, dim) b
    )
    SELECT CASE WHEN by_deal THEN bd.dimension_value
                ELSE @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
           END,
           lo, hi,
           v.opportunity_id, v.stage_event_id, f.pipeline_id,
           coalesce(p.gate_mode, @extschema@.default_stage_gate_mode()),
           f.name, t.name, v.entered_at, r.rep_id,
           v.missing_milestones, v.missing_count, v.completed_late_count
      FROM violation v
      JOIN @extschema@.stage f ON f.stage_id = v.from_stage_id
      JOIN @extschema@.stage t ON t.stage_id = v.stage_id
      JOIN @extschema@.pipeline p ON p.pipeline_id = f.pipeline_id
      -- the rep credited: the deal's owner at the move
      LEFT JOIN LATERAL (
            SELECT sn.owner_id
              FROM @extschema@.opportunity_history sn
             WHERE sn.opportunity_id = v.opportunity_id AND sn.changed_at <= v.entered_at
             ORDER BY sn.changed_at DESC
             LIMIT 1) w ON true
      LEFT JOIN @extschema@.rep r
        ON r.rep_id = coalesce(w.owner_id, v.rep_id,
                               (SELECT o.owner_id FROM @extschema@.opportunity o
                                 WHERE o.opportunity_id = v.opportunity_id))
      LEFT JOIN bd ON bd.opportunity_id = v.opportunity_id;
END;
$fn$;
COMMENT ON FUNCTION sales_kpi_internal.gate_violation_rows(timestamptz, timestamptz, text, timestamptz) IS
    'Internal: the rows of gate_violations without its dimension column.';

CREATE OR REPLACE FUNCTION @extschema@.last_minute_share(period_start timestamptz DEFAULT NULL,
                                              period_end timestamptz DEFAULT NULL,
                                              dimension text DEFAULT 'company',
                                              as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               last_minute_start timestamptz, won bigint, last_minute_won bigint, bookings numeric,
               last_minute_bookings numeric, last_minute_share double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
AS $$
    WITH p AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe,
               r.period_end - (r.period_end - r.period_start) / 10 AS cut
          FROM sales_kpi_internal.resolve_period(period_start, period_end, as_of) r
    ), parts AS (
        -- the period's wins in two parts, before its last tenth and in it
        -- (one part when the cut falls on a bound): summed per part in the
        -- pass, rolled up here
        SELECT cp.dimension_value AS dv, cp.period_start >= p.cut AS late, cp.outcomes
          FROM p
         CROSS JOIN LATERAL sales_kpi_internal.closed_partials(
                    ARRAY(SELECT DISTINCT b FROM unnest(ARRAY[p.ps, p.cut, p.pe]) b ORDER BY b),
                    as_of, dimension, false, true) cp
    ), g AS (
        SELECT parts.dv, @extschema@.rollup(parts.outcomes) AS w,
               @extschema@.rollup(parts.outcomes) FILTER (WHERE parts.late) AS late
          FROM parts
         GROUP BY parts.dv
    )
    SELECT dimension, g.dv, p.ps, p.pe, p.cut,
           @extschema@.won_count(g.w), coalesce(@extschema@.won_count(g.late), 0),
           @extschema@.won_amount(g.w), coalesce(@extschema@.won_amount(g.late), 0),
           (coalesce(@extschema@.won_amount(g.late), 0) / nullif(@extschema@.won_amount(g.w), 0))::double precision
      FROM g CROSS JOIN p
     WHERE sales_kpi_internal.check_health_rep_args(dimension, as_of)
$$;
COMMENT ON FUNCTION @extschema@.last_minute_share(timestamptz, timestamptz, text, timestamptz) IS
    'Last-minute closing: the share of a period''s bookings (won amount, base currency) closed in the last 10% of the period, per dimension value; NULL with no bookings.';

CREATE OR REPLACE FUNCTION @extschema@.org_attainment(period_start timestamptz DEFAULT NULL,
                                           period_end timestamptz DEFAULT NULL,
                                           dimension text DEFAULT 'company',
                                           as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               new_business_bookings numeric, expansion_mrr numeric, reactivation_mrr numeric,
               contraction_mrr numeric, churn_mrr numeric, net_expansion_mrr numeric,
               net_new_revenue numeric, quota numeric, attainment double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
AS $$
    WITH p AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe,
               (r.period_start AT TIME ZONE @extschema@.reporting_timezone()) AS lo_local,
               (r.period_end AT TIME ZONE @extschema@.reporting_timezone()) AS hi_local,
               (SELECT max(rr.month) FROM @extschema@.recurring_revenue rr) AS last_month
          FROM sales_kpi_internal.resolve_period(period_start, period_end, as_of) r
    ), months AS (
        -- first days of the months of the period that have begun by as_of
        SELECT m::date AS month
          FROM p, generate_series(date_trunc('month', p.lo_local) +
                                    CASE WHEN date_trunc('month', p.lo_local) < p.lo_local
                                         THEN interval '1 month' ELSE interval '0' END,
                                  p.hi_local - interval '1 microsecond', interval '1 month') m
         WHERE m::date <= p.last_month
           AND m AT TIME ZONE @extschema@.reporting_timezone() <= as_of
    ), cur AS (
        SELECT rr.account_id, rr.month, rr.mrr
          FROM @extschema@.recurring_revenue rr
         WHERE rr.month IN (SELECT month FROM months)
    ), prev AS (
        SELECT rr.account_id, (rr.month + interval '1 month')::date AS month, rr.mrr
          FROM @extschema@.recurring_revenue rr
         WHERE (rr.month + interval '1 month')::date IN (SELECT month FROM months)
    ), move AS (
        SELECT coalesce(c.account_id, q.account_id) AS account_id,
               coalesce(c.month, q.month) AS month,
               coalesce(c.mrr, 0) AS mrr, coalesce(q.mrr, 0) AS prev_mrr
          FROM cur c
          FULL JOIN prev q ON q.account_id = c.account_id AND q.month = c.month
         WHERE coalesce(c.mrr, 0) <> coalesce(q.mrr, 0)
    ), classified AS (
        SELECT mv.account_id, mv.month,
               CASE WHEN mv.prev_mrr > 0 AND mv.mrr > mv.prev_mrr THEN mv.mrr - mv.prev_mrr ELSE 0 END AS expansion,
               CASE WHEN mv.prev_mrr = 0 AND EXISTS (SELECT 1 FROM @extschema@.recurring_revenue h
                                                      WHERE h.account_id = mv.account_id
                                                        AND h.month < mv.month AND h.mrr > 0)
                    THEN mv.mrr ELSE 0 END AS reactivation,
               CASE WHEN mv.mrr > 0 AND mv.mrr < mv.prev_mrr THEN mv.prev_mrr - mv.mrr ELSE 0 END AS contraction,
               CASE WHEN mv.mrr = 0 THEN mv.prev_mrr ELSE 0 END AS churn
          FROM move mv
    ), won AS (
        SELECT o.account_id, o.opportunity_id, o.closed_at
          FROM @extschema@.opportunity o
          JOIN @extschema@.stage s ON s.stage_id = o.stage_id AND s.kind = 'won'
         WHERE dimension NOT IN ('company', 'industry', 'segment', 'region')
    ), credited AS (
        -- rep, team and the deal dimensions: each movement goes to the
        -- account's newest deal won before the end of the month (the won
        -- deals hashed by account, so an account's months meet only its
        -- own deals); the deals are labelled once each below
        SELECT DISTINCT ON (cl.account_id, cl.month)
               w.opportunity_id, cl.expansion, cl.reactivation, cl.contraction, cl.churn
          FROM classified cl
          LEFT JOIN won w
                 ON w.account_id = cl.account_id
                -- before the end of the month and not after as_of, as one
                -- join condition: as_of alone would be pushed into the scan
                -- of the deals, where a parameter's range is guessed at a
                -- third of the rows and read through the index of closes
                AND w.closed_at <= least(((cl.month + interval '1 month')::timestamp
                                          AT TIME ZONE @extschema@.reporting_timezone())
                                         - interval '1 microsecond',
                                         as_of)
         WHERE dimension NOT IN ('company', 'industry', 'segment', 'region')
         ORDER BY cl.account_id, cl.month, w.closed_at DESC, w.opportunity_id DESC
    ), by_deal AS (
        SELECT cr.opportunity_id, sum(cr.expansion) AS expansion, sum(cr.reactivation) AS reactivation,
               sum(cr.contraction) AS contraction, sum(cr.churn) AS churn
          FROM credited cr
         GROUP BY 1
    ), mrr AS (
        -- the company's sums need no account
        SELECT 'all' AS dv, sum(cl.expansion) AS expansion, sum(cl.reactivation) AS reactivation,
               sum(cl.contraction) AS contraction, sum(cl.churn) AS churn
          FROM classified cl
         WHERE dimension = 'company'
        HAVING count(*) > 0
        UNION ALL
        SELECT @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, a.industry,
                                           a.segment, a.region, NULL, NULL, NULL),
               sum(cl.expansion), sum(cl.reactivation), sum(cl.contraction), sum(cl.churn)
          FROM classified cl
          JOIN @extschema@.account a ON a.account_id = cl.account_id
         WHERE dimension IN ('industry', 'segment', 'region')
         GROUP BY 1
        UNION ALL
        -- a movement without a won deal has no deal: every attribute is
        -- missing, so it falls under '(none)'; the owner is the one at the
        -- close, which only a snapshot after the close can make differ
        -- from the deal's row
        SELECT @extschema@.dimension_value(dimension, p.name, r.name, r.team, o.source, a.industry,
                                           a.segment, a.region, o.competitor, o.kind, o.product),
               sum(b.expansion), sum(b.reactivation), sum(b.contraction), sum(b.churn)
          FROM by_deal b
          LEFT JOIN @extschema@.opportunity o ON o.opportunity_id = b.opportunity_id
          LEFT JOIN @extschema@.pipeline p ON p.pipeline_id = o.pipeline_id
          LEFT JOIN @extschema@.account a ON a.account_id = o.account_id
          LEFT JOIN @extschema@.rep r
                 ON r.rep_id = CASE WHEN o.snapshot_at > o.closed_at
                                    THEN coalesce((sales_kpi_internal.snapshot_at(o.opportunity_id,
                                                                                   o.closed_at)).owner_id,
                                                  o.owner_id)
                                    ELSE o.owner_id END
         GROUP BY 1
    ), booked AS (
        SELECT c.dimension_value AS dv, sum(c.amount_base) AS bookings
          FROM p
         CROSS JOIN LATERAL sales_kpi_internal.closed_deal_rows(p.ps, p.pe, as_of, dimension, 'won') c
         WHERE c.deal_kind = 'new'
         GROUP BY 1
    ), target AS (
        SELECT @extschema@.dimension_value(dimension, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS dv,
               sum(q.quota) AS quota
          FROM p
         CROSS JOIN LATERAL @extschema@.quota_in_period(p.ps, p.pe) q
          JOIN @extschema@.rep r ON r.rep_id = q.rep_id
         WHERE dimension IN ('company', 'rep', 'team')
         GROUP BY 1
    ), keys AS (
        SELECT b.dv FROM booked b UNION SELECT m.dv FROM mrr m UNION SELECT t.dv FROM target t
    )
    SELECT dimension, k.dv, p.ps, p.pe,
           coalesce(b.bookings, 0),
           coalesce(m.expansion, 0), coalesce(m.reactivation, 0), coalesce(m.contraction, 0), coalesce(m.churn, 0),
           coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0),
           coalesce(b.bookings, 0) + coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0),
           t.quota,
           ((coalesce(b.bookings, 0) + coalesce(m.expansion + m.reactivation - m.contraction - m.churn, 0))
            / nullif(t.quota, 0))::double precision
      FROM keys k
     CROSS JOIN p
      LEFT JOIN booked b ON b.dv = k.dv
      LEFT JOIN mrr m ON m.dv = k.dv
      LEFT JOIN target t ON t.dv = k.dv
     WHERE sales_kpi_internal.check_health_rep_args(dimension, as_of)
$$;
COMMENT ON FUNCTION @extschema@.org_attainment(timestamptz, timestamptz, text, timestamptz) IS
    'Organizational attainment: net new revenue of a period (new-business bookings + expansion + reactivation - contraction - churn of recurring revenue) and its ratio to the summed quota of the reps concerned (NULL without quota).';

CREATE OR REPLACE FUNCTION sales_kpi_internal.outcome_dimension(dimension text, extra text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF dimension IS NULL THEN
        RAISE EXCEPTION 'argument "dimension" must not be null'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Use ''company'' for no breakdown.';
    END IF;
    IF dimension = ANY (extra) THEN
        RETURN dimension;
    END IF;
    -- the names dimension_value() knows (no exception block: a function
    -- that starts a subtransaction cannot run in a parallel query)
    IF cardinality(extra) > 0
       AND NOT dimension = ANY (ARRAY['company', 'pipeline', 'rep', 'team', 'source', 'industry', 'segment',
                                      'region', 'competitor', 'kind', 'product']) THEN
        RAISE EXCEPTION 'invalid value for argument "dimension": "%"', dimension
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid dimensions are: company, pipeline, rep, team, source, industry, segment, region, competitor, kind, product, '
                         || array_to_string(extra, ', ') || '.';
    END IF;
    PERFORM @extschema@.dimension_value(dimension, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    RETURN dimension;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.outcome_dimension(text, text[]) IS
    'Internal: checks a dimension argument (the common dimensions plus the extra ones a KPI accepts) and returns it; 22023 for an unknown one.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.pipeline_value_period_parts(period_start timestamptz, period_end timestamptz,
                                                        dimension text, as_of timestamptz,
                                                        lookback interval, min_sample integer,
                                                        with_milestone boolean, with_historical boolean)
RETURNS TABLE (dimension_value text, period_start timestamptz, period_end timestamptz,
               open_deals bigint, open_amount numeric, stage_weighted numeric, milestone_weighted numeric,
               historical_weighted numeric, closed_amount numeric, commit_amount numeric,
               best_case_amount numeric, pipeline_amount numeric, omitted_amount numeric,
               bookings numeric, quota numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH rp AS MATERIALIZED (
        SELECT r.period_start AS lo, r.period_end AS hi
          FROM sales_kpi_internal.resolve_period(pipeline_value_period_parts.period_start,
                                          pipeline_value_period_parts.period_end,
                                          pipeline_value_period_parts.as_of) r
    ), d AS (
        SELECT od.dimension_value, od.amount, od.forecast_category, od.stage_probability,
               od.milestone_probability, od.historical_probability
          FROM rp, sales_kpi_internal.pipeline_value_open_deals(pipeline_value_period_parts.as_of,
                                                         pipeline_value_period_parts.lookback,
                                                         pipeline_value_period_parts.min_sample,
                                                         with_milestone, with_historical,
                                                         dimension => pipeline_value_period_parts.dimension,
                                                         close_from => rp.lo, close_to => rp.hi) od
         WHERE pipeline_value_period_parts.as_of < rp.hi
    ), open_agg AS (
        SELECT d.dimension_value AS dv, count(*) AS deals, coalesce(sum(d.amount), 0) AS amount,
               coalesce(@extschema@.weighted_pipeline(d.amount, d.stage_probability), 0) AS stage_w,
               coalesce(@extschema@.weighted_pipeline(d.amount, d.milestone_probability), 0) AS milestone_w,
               coalesce(@extschema@.weighted_pipeline(d.amount, d.historical_probability), 0) AS historical_w,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'closed'), 0) AS closed_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'commit'), 0) AS commit_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'best_case'), 0) AS best_case_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'pipeline'), 0) AS pipeline_c,
               coalesce(sum(d.amount) FILTER (WHERE d.forecast_category = 'omitted'), 0) AS omitted_c
          FROM d
         GROUP BY 1
    ), won_agg AS (
        -- the closed-deal partials of the period: bookings credited to the owner at the close
        SELECT cp.dimension_value AS dv, sum(@extschema@.won_amount(cp.outcomes)) AS bookings
          FROM rp, sales_kpi_internal.closed_partials(ARRAY[rp.lo, rp.hi], pipeline_value_period_parts.as_of,
                                               pipeline_value_period_parts.dimension, false, true) cp
         WHERE @extschema@.won_count(cp.outcomes) > 0
         GROUP BY 1
    ), quota_agg AS (
        SELECT @extschema@.dimension_value(pipeline_value_period_parts.dimension, NULL, r.name, r.team,
                                           NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS dv,
               sum(q.quota) AS quota
          FROM rp
          CROSS JOIN LATERAL @extschema@.quota_in_period(rp.lo, rp.hi) q
          JOIN @extschema@.rep r ON r.rep_id = q.rep_id
         WHERE pipeline_value_period_parts.dimension IN ('company', 'rep', 'team')
         GROUP BY 1
    ), k AS (
        SELECT open_agg.dv FROM open_agg
        UNION SELECT won_agg.dv FROM won_agg
        UNION SELECT quota_agg.dv FROM quota_agg
        UNION SELECT 'all' WHERE pipeline_value_period_parts.dimension = 'company'
    )
    SELECT k.dv, rp.lo, rp.hi,
           coalesce(o.deals, 0), coalesce(o.amount, 0),
           coalesce(o.stage_w, 0),
           CASE WHEN with_milestone THEN coalesce(o.milestone_w, 0) END,
           CASE WHEN with_historical THEN coalesce(o.historical_w, 0) END,
           coalesce(o.closed_c, 0), coalesce(o.commit_c, 0), coalesce(o.best_case_c, 0),
           coalesce(o.pipeline_c, 0), coalesce(o.omitted_c, 0),
           coalesce(w.bookings, 0), q.quota
      FROM k CROSS JOIN rp
      LEFT JOIN open_agg o ON o.dv = k.dv
      LEFT JOIN won_agg w ON w.dv = k.dv
      LEFT JOIN quota_agg q ON q.dv = k.dv
$$;
COMMENT ON FUNCTION sales_kpi_internal.pipeline_value_period_parts(timestamptz, timestamptz, text, timestamptz, interval, integer, boolean, boolean) IS
    'Internal: per breakdown value, the open pipeline at as_of expected to close in the period (weighted and by forecast category), the bookings so far and the quota.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.rep_timeline_activity(lo timestamptz, hi timestamptz, as_of timestamptz,
                                                  starts timestamptz[], dim text)
RETURNS TABLE (b integer, dv text, peer text, n numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the cost of a pass over a year of closed deals or activities, so that the
-- planner runs the two parts of rep_timeline in parallel workers
COST 10000000 ROWS 50000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    by_deal boolean := dim NOT IN ('company', 'rep', 'team');
    by_rep boolean := dim = 'rep';
BEGIN
    RETURN QUERY
    WITH act_rep AS (
        -- activities per period, rep and, only when the dimension is a deal
        -- attribute, deal (periods start at local midnights).  Per rep and
        -- period, the activities are counted from the index on (rep_id,
        -- occurred_at) alone, without reading the table.
        SELECT p.b, r0.rep_id, NULL::bigint AS opportunity_id, x.n
          FROM @extschema@.rep r0
         CROSS JOIN generate_subscripts(starts, 1) p(b)
         CROSS JOIN LATERAL (
                SELECT count(*) AS n
                  FROM @extschema@.activity a
                 WHERE a.rep_id = r0.rep_id
                   AND a.occurred_at >= starts[p.b] AND a.occurred_at < coalesce(starts[p.b + 1], hi)
                   AND a.occurred_at <= as_of) x
         WHERE NOT by_deal AND x.n > 0
        UNION ALL
        SELECT width_bucket(a.occurred_at, starts), NULL, NULL, count(*)
          FROM @extschema@.activity a
         WHERE NOT by_deal AND a.rep_id IS NULL
           AND a.occurred_at >= lo AND a.occurred_at < hi AND a.occurred_at <= as_of
         GROUP BY 1
        UNION ALL
        SELECT width_bucket(a.occurred_at, starts), a.rep_id, a.opportunity_id, count(*)
          FROM @extschema@.activity a
         WHERE by_deal AND a.occurred_at >= lo AND a.occurred_at < hi AND a.occurred_at <= as_of
         GROUP BY 1, 2, 3
    ), bd AS (
        -- a deal attribute's breakdown of the deals with activities, read in one pass
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN by_deal
                        THEN ARRAY(SELECT DISTINCT a.opportunity_id FROM act_rep a WHERE a.opportunity_id IS NOT NULL)
                        ELSE '{}' END, as_of, dim) b
    )
        SELECT a.b,
               CASE WHEN by_deal
                    -- an activity with no deal has no deal attribute
                    THEN coalesce(bd.dimension_value, '(none)')
                    ELSE @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
               END,
               CASE WHEN by_rep THEN coalesce(r.team, '(none)') ELSE 'all' END,
               sum(a.n)
          FROM act_rep a
          LEFT JOIN @extschema@.rep r ON r.rep_id = a.rep_id
          LEFT JOIN bd ON bd.opportunity_id = a.opportunity_id
         GROUP BY 1, 2, 3;
END;
$fn$;
COMMENT ON FUNCTION sales_kpi_internal.rep_timeline_activity(timestamptz, timestamptz, timestamptz, timestamptz[], text) IS
    'Internal: the activities of rep_timeline per period, dimension value and peer group.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.rep_timeline_closed(lo timestamptz, hi timestamptz, as_of timestamptz,
                                                starts timestamptz[], dim text)
RETURNS TABLE (b integer, dv text, peer text, wl @extschema@.winloss, cycle_days numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the cost of a pass over a year of closed deals or activities, so that the
-- planner runs the two parts of rep_timeline in parallel workers
COST 10000000 ROWS 50000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    by_rep boolean := dim = 'rep';
BEGIN
    -- the breakdown (rep credited: the owner at the close) comes with the rows
    RETURN QUERY
        SELECT c.b, c.dimension_value AS dv,
               CASE WHEN by_rep THEN coalesce(r.team, '(none)') ELSE 'all' END AS peer,
               @extschema@.winloss_agg(c.outcome = 'won', c.amount_base) AS wl,
               avg(extract(epoch FROM c.closed_at - c.created_at) / 86400.0)
                   FILTER (WHERE c.outcome = 'won') AS cycle_days
          FROM (SELECT width_bucket(cd.closed_at, starts) AS b, cd.owner_id, cd.outcome,
                       cd.amount_base, cd.closed_at, cd.created_at, cd.dimension_value
                  FROM sales_kpi_internal.closed_deal_rows(lo, hi, as_of, dim) cd) c
          LEFT JOIN @extschema@.rep r ON r.rep_id = c.owner_id AND by_rep
         GROUP BY 1, 2, 3;
END;
$fn$;
COMMENT ON FUNCTION sales_kpi_internal.rep_timeline_closed(timestamptz, timestamptz, timestamptz, timestamptz[], text) IS
    'Internal: the closed deals of rep_timeline per period, dimension value and peer group.';

CREATE OR REPLACE FUNCTION @extschema@.rep_volatility(as_of timestamptz DEFAULT now(), dimension text DEFAULT 'rep')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               months bigint, active_months bigint, bookings numeric, mean_monthly_bookings numeric,
               stddev_monthly_bookings numeric, volatility double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiles for longer than these queries run
SET jit = off
AS $$
    WITH m AS MATERIALIZED (
        SELECT t.period_start AS ps, t.period_end AS pe
          FROM sales_kpi_internal.trailing_months(as_of) t
    ), closed AS (
        -- the breakdown (rep credited: the owner at the close) comes with the
        -- rows; the month of a close: binary search in the month starts
        SELECT rng.starts[width_bucket(c.closed_at, rng.starts)] AS ps, c.dimension_value AS dv,
               coalesce(sum(c.amount_base) FILTER (WHERE c.outcome = 'won'), 0) AS bookings
          FROM (SELECT min(m.ps) AS lo, max(m.pe) AS hi, array_agg(m.ps ORDER BY m.ps) AS starts FROM m) rng
         CROSS JOIN LATERAL sales_kpi_internal.closed_deal_rows(rng.lo, rng.hi, as_of, dimension) c
         GROUP BY 1, 2
    ), grid AS (
        SELECT v.dv, m.ps, coalesce(c.bookings, 0) AS bookings
          FROM (SELECT DISTINCT c.dv FROM closed c) v
         CROSS JOIN m
          LEFT JOIN closed c ON c.dv = v.dv AND c.ps = m.ps
    )
    SELECT dimension, g.dv, (SELECT min(m.ps) FROM m), (SELECT max(m.pe) FROM m),
           count(*), count(*) FILTER (WHERE g.bookings > 0),
           sum(g.bookings), avg(g.bookings), stddev_pop(g.bookings),
           (stddev_pop(g.bookings) / nullif(avg(g.bookings), 0))::double precision
      FROM grid g
     WHERE sales_kpi_internal.check_health_rep_args(dimension, as_of)
     GROUP BY g.dv
$$;
COMMENT ON FUNCTION @extschema@.rep_volatility(timestamptz, text) IS
    'Performance volatility: per rep (or other dimension value), the coefficient of variation (population standard deviation / mean) of monthly bookings over the twelve complete months before the month holding as_of, months without bookings counting as zero.';

CREATE OR REPLACE FUNCTION @extschema@.sales_cycle(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                        dimension text DEFAULT 'company', as_of timestamptz DEFAULT now(),
                                        lookback interval DEFAULT '365 days')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               won bigint, mean_days double precision, median_days double precision,
               p75_days double precision, p90_days double precision,
               km_deals bigint, km_closed bigint, km_median_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end, least(r.period_end, sales_cycle.as_of) AS t_ref,
               sales_kpi_internal.outcome_dimension(sales_cycle.dimension) AS dim,
               CASE WHEN sales_kpi_internal.check_kpi_args(lookback => sales_cycle.lookback) THEN sales_cycle.lookback END
                   AS lookback
          FROM sales_kpi_internal.resolve_period(sales_cycle.period_start, sales_cycle.period_end, sales_cycle.as_of) r
    ), w AS (
        SELECT cp.dimension_value AS value, @extschema@.rollup(cp.won_cycles) AS ds
          FROM p
         CROSS JOIN sales_kpi_internal.closed_partials(ARRAY[p.period_start, p.period_end], sales_cycle.as_of, p.dim) cp
         WHERE cp.won_cycles IS NOT NULL
         GROUP BY 1
    ), k AS (
        SELECT sp.dimension_value AS value, @extschema@.rollup(sp.ages) AS sv,
               @extschema@.survival_count(@extschema@.rollup(sp.ages)) - sum(sp.still_open) AS closed
          FROM p
         CROSS JOIN sales_kpi_internal.state_partials(ARRAY[p.t_ref - p.lookback, p.t_ref], p.t_ref, p.dim) sp
         GROUP BY 1
    )
    SELECT p.dim, v.value, p.period_start, p.period_end,
           coalesce(@extschema@.duration_count(w.ds), 0),
           extract(epoch FROM @extschema@.mean(w.ds))::double precision / 86400,
           extract(epoch FROM @extschema@.median(w.ds))::double precision / 86400,
           extract(epoch FROM @extschema@.percentile(w.ds, 0.75))::double precision / 86400,
           extract(epoch FROM @extschema@.percentile(w.ds, 0.9))::double precision / 86400,
           coalesce(@extschema@.survival_count(k.sv), 0),
           coalesce(k.closed, 0)::bigint,
           extract(epoch FROM @extschema@.median_time_to_close(k.sv))::double precision / 86400
      FROM p
     CROSS JOIN (SELECT w.value FROM w
                 UNION
                 SELECT k.value FROM k
                 UNION
                 SELECT 'all' WHERE sales_cycle.dimension = 'company') v
      LEFT JOIN w ON w.value = v.value
      LEFT JOIN k ON k.value = v.value
     ORDER BY v.value
$$;
COMMENT ON FUNCTION @extschema@.sales_cycle(timestamptz, timestamptz, text, timestamptz, interval) IS
    'Days from creation to the win of the deals won in a period (count, mean, median, p75, p90), and the Kaplan-Meier median days to close (won or lost) of the deals created in the lookback before the period end, open deals censored.';

CREATE OR REPLACE FUNCTION @extschema@.stage_pipeline_value(as_of timestamptz DEFAULT now(), dimension text DEFAULT 'company')
RETURNS TABLE (dimension text, dimension_value text, pipeline_id bigint, pipeline text, stage_id bigint,
               stage text, "position" integer, probability numeric, deals bigint, amount numeric,
               weighted_amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(stage_pipeline_value.as_of, stage_pipeline_value.dimension);
    WITH per_stage AS (
        SELECT op.dimension_value AS dv, op.stage_id, sum(op.deals)::bigint AS deals, sum(op.amount) AS amount,
               sum(op.weighted_amount) AS weighted
          FROM sales_kpi_internal.open_partials(stage_pipeline_value.as_of, stage_pipeline_value.dimension) op
         GROUP BY 1, 2
    ), value_of_pipeline AS (
        -- each pipeline lists its stages for every breakdown value found among
        -- its open deals; a pipeline without open deals lists them once
        SELECT p.pipeline_id, p.name,
               coalesce(v.dv, CASE stage_pipeline_value.dimension
                                   WHEN 'company' THEN 'all' WHEN 'pipeline' THEN p.name END) AS dv
          FROM @extschema@.pipeline p
          LEFT JOIN (SELECT DISTINCT s.pipeline_id, ps.dv
                       FROM per_stage ps JOIN @extschema@.stage s ON s.stage_id = ps.stage_id) v
            ON v.pipeline_id = p.pipeline_id
    )
    SELECT stage_pipeline_value.dimension, vp.dv, vp.pipeline_id, vp.name, s.stage_id, s.name, s.position,
           s.probability, coalesce(ps.deals, 0), coalesce(ps.amount, 0), coalesce(ps.weighted, 0)
      FROM value_of_pipeline vp
      JOIN @extschema@.stage s ON s.pipeline_id = vp.pipeline_id AND s.kind = 'open'
      LEFT JOIN per_stage ps ON ps.stage_id = s.stage_id AND ps.dv = vp.dv
     ORDER BY vp.dv, vp.name, s.position;
$$;
COMMENT ON FUNCTION @extschema@.stage_pipeline_value(timestamptz, text) IS
    'Deals open at as_of per pipeline and open stage (and breakdown value): count, amount and amount x stage probability, in the base currency at the as_of date rate. Stages without deals show zeros.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_time_durations_rows(at_time timestamptz, dim text, ids bigint[])
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, stage_position integer,
               is_open boolean, is_current boolean, stays bigint,
               latest_entered_at timestamptz, latest_left_at timestamptz,
               latest_stay_days double precision, total_days double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '128MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    -- the open stages with their names and positions, as constants
    open_stages bigint[];
    open_names text[];
    open_positions integer[];
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(at_time, dim);
    SELECT array_agg(s.stage_id ORDER BY s.stage_id), array_agg(s.name ORDER BY s.stage_id),
           array_agg(s.position ORDER BY s.stage_id)
      INTO open_stages, open_names, open_positions
      FROM @extschema@.stage s
     WHERE s.kind = 'open';
    RETURN QUERY
    WITH deal AS MATERIALIZED (
        SELECT * FROM sales_kpi_internal.stage_time_deals(at_time, ids)
    ), stay AS (
        -- every stay of these deals in an open stage, totalled per deal and
        -- stage as it is read in one index scan (stage_stay_totals)
        SELECT x.*, array_position(open_stages, x.stage_id) AS k
          FROM sales_kpi_internal.stage_stay_totals(at_time, ARRAY(SELECT dl.opportunity_id FROM deal dl), open_stages) x
    ), bd AS (
        -- a deal attribute's breakdown, read in one pass (the rep: the deal's owner below)
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN dim IN ('company', 'rep', 'team') THEN '{}'
                        ELSE ARRAY(SELECT dl.opportunity_id FROM deal dl) END, at_time, dim) b
    )
    SELECT dim,
           CASE WHEN dim = 'company' THEN 'all'
                WHEN dim IN ('rep', 'team')
                THEN @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                ELSE bd.dimension_value END,
           d.opportunity_id, d.pipeline_id, p.name, ps.stage_id, open_names[ps.k], open_positions[ps.k],
           d.is_open, ps.latest_left_at IS NULL,
           ps.stays, ps.latest_entered_at, ps.latest_left_at,
           extract(epoch FROM coalesce(ps.latest_left_at, at_time) - ps.latest_entered_at)::double precision / 86400,
           ps.total_days
      FROM deal d
      JOIN @extschema@.pipeline p ON p.pipeline_id = d.pipeline_id
      JOIN stay ps ON ps.opportunity_id = d.opportunity_id
      LEFT JOIN bd ON bd.opportunity_id = d.opportunity_id
      LEFT JOIN @extschema@.rep r ON r.rep_id = d.owner_id
     ORDER BY d.opportunity_id, open_positions[ps.k];
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_durations_rows(timestamptz, text, bigint[]) IS
    'Internal: the rows of stage_durations().';

CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_time_norms_rows(at_time timestamptz, dim text, lb interval)
RETURNS TABLE (dimension text, dimension_value text, pipeline_id bigint, pipeline text,
               stage_id bigint, stage text, stage_position integer,
               stays bigint, mean_days double precision,
               p50_days double precision, p75_days double precision, p90_days double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET enable_hashagg = off
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    -- the deals won in [as_of - lookback, as_of] as the history stood at as_of
    w_id bigint[];
    w_pipeline bigint[];
    w_closed timestamptz[];
    half integer;
    open_stages bigint[] := ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'open');
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(at_time, dim, lookback => lb);
    -- The deals won in the lookback as the history stood at as_of, in deal
    -- order: those now won that closed in it, less those with events after
    -- as_of, plus those of them that were won then.
    WITH moved AS MATERIALIZED (
        -- only deals with events after as_of can differ from their current row
        SELECT DISTINCT x.opportunity_id FROM @extschema@.stage_event x WHERE x.entered_at > at_time
    ), won AS (
        -- deals whose newest event not after as_of is won and entered in [as_of - lookback, as_of]
        SELECT o.opportunity_id, o.pipeline_id, o.closed_at
          FROM sales_kpi_internal.stage_time_won_deals(at_time - lb, at_time) o
         WHERE o.opportunity_id NOT IN (SELECT m.opportunity_id FROM moved m)
        UNION ALL
        SELECT o.opportunity_id, o.pipeline_id, e.entered_at
          FROM moved m
          JOIN @extschema@.opportunity o ON o.opportunity_id = m.opportunity_id
         CROSS JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = m.opportunity_id AND ev.entered_at <= at_time
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id AND s.kind = 'won'
         WHERE e.entered_at >= at_time - lb
    )
    SELECT coalesce(array_agg(w.opportunity_id ORDER BY w.opportunity_id), '{}'),
           coalesce(array_agg(w.pipeline_id ORDER BY w.opportunity_id), '{}'),
           coalesce(array_agg(w.closed_at ORDER BY w.opportunity_id), '{}')
      INTO w_id, w_pipeline, w_closed
      FROM won w;
    -- the stays of the won deals are read in two halves of the list, which
    -- parallel workers read at once (in a RETURN QUERY: a SELECT INTO runs
    -- without workers)
    half := cardinality(w_id) / 2;
    RETURN QUERY
    WITH won AS (
        SELECT * FROM unnest(w_id, w_pipeline, w_closed) o(opportunity_id, pipeline_id, closed_at)
    ), summary AS MATERIALIZED (
        -- each event of a won deal in an open stage is a stay, ended by the
        -- next event; the summaries (up to 8 kB each) are read as they are
        -- made, one group at a time (so no hash aggregation, see the SET)
        SELECT g.pipeline_id, g.dv, g.stage_id,
               @extschema@.duration_count(g.d) AS n,
               extract(epoch FROM @extschema@.mean(g.d))::double precision / 86400 AS mean_days,
               extract(epoch FROM @extschema@.percentile(g.d, 0.5))::double precision / 86400 AS p50,
               extract(epoch FROM @extschema@.percentile(g.d, 0.75))::double precision / 86400 AS p75,
               extract(epoch FROM @extschema@.percentile(g.d, 0.9))::double precision / 86400 AS p90
          FROM (
        SELECT wd.pipeline_id, wd.dv, x.stage_id, @extschema@.duration_agg(x.left_at - x.entered_at) AS d
          -- each won deal's completed stays in open stages, from one index
          -- scan over their events (stage_stays)
          FROM (SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[:half], open_stages)
                UNION ALL
                SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[half + 1:], open_stages)) x
          JOIN (SELECT w.opportunity_id, w.pipeline_id,
                       CASE WHEN dim = 'company' THEN 'all'
                            WHEN dim IN ('rep', 'team')
                            THEN @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL,
                                                             NULL, NULL, NULL)
                            ELSE bd.dimension_value END AS dv
                  FROM won w
                  -- a deal attribute's breakdown, read in one pass
                  LEFT JOIN sales_kpi_internal.deal_breakdowns(
                                CASE WHEN dim IN ('company', 'rep', 'team') THEN '{}' ELSE w_id END, at_time, dim) bd
                         ON bd.opportunity_id = w.opportunity_id
                  -- the rep credited with the win: the owner at the close
                  LEFT JOIN LATERAL (
                        SELECT hi.owner_id
                          FROM @extschema@.opportunity_history hi
                         WHERE hi.opportunity_id = w.opportunity_id AND hi.changed_at <= w.closed_at
                           AND dim IN ('rep', 'team')
                         ORDER BY hi.changed_at DESC
                         LIMIT 1) h ON true
                  LEFT JOIN @extschema@.rep r ON r.rep_id = h.owner_id) wd
            ON wd.opportunity_id = x.opportunity_id
         WHERE dim <> 'company' AND x.left_at IS NOT NULL
         GROUP BY wd.pipeline_id, wd.dv, x.stage_id
        UNION ALL
        -- for the company, the stays alone: a stage event always names a
        -- stage of the deal's pipeline
        SELECT s.pipeline_id, 'all', x.stage_id, @extschema@.duration_agg(x.left_at - x.entered_at)
          FROM (SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[:half], open_stages)
                UNION ALL
                SELECT * FROM sales_kpi_internal.stage_stays(at_time, w_id[half + 1:], open_stages)) x
          JOIN @extschema@.stage s ON s.stage_id = x.stage_id
         WHERE dim = 'company' AND x.left_at IS NOT NULL
         GROUP BY s.pipeline_id, x.stage_id) g
    ), groups AS (
        -- every open stage for each pipeline and dimension value with won
        -- deals (for the company: every pipeline)
        SELECT p.pipeline_id, 'all'::text AS dv
          FROM @extschema@.pipeline p
         WHERE dim = 'company'
        UNION
        SELECT sm.pipeline_id, sm.dv FROM summary sm
    )
    SELECT dim, g.dv, p.pipeline_id, p.name, s.stage_id, s.name, s.position,
           coalesce(sm.n, 0), sm.mean_days, sm.p50, sm.p75, sm.p90
      FROM groups g
      JOIN @extschema@.pipeline p ON p.pipeline_id = g.pipeline_id
      JOIN @extschema@.stage s ON s.pipeline_id = g.pipeline_id AND s.kind = 'open'
      LEFT JOIN summary sm ON sm.pipeline_id = g.pipeline_id AND sm.dv = g.dv AND sm.stage_id = s.stage_id
     ORDER BY g.dv, p.name, s.position;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_norms_rows(timestamptz, text, interval) IS
    'Internal: the rows of stage_norms().';

-- stalled_deals runs the open deals and the norms one after the other in
-- this backend now: they no longer need a cost that sends them to parallel
-- workers
ALTER FUNCTION sales_kpi_internal.stage_time_open_deals(timestamptz) COST 100;

CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_time_stalled_rows(at_time timestamptz, dim text, lb interval)
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, owner_id bigint,
               amount_base numeric, reasons text[],
               stage_entered_at timestamptz, stage_days double precision, norm_p75_days double precision,
               missing_milestones text[], expected_close date, overdue_days double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    as_of_date date;
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(at_time, dim, lookback => lb);
    as_of_date := (at_time AT TIME ZONE @extschema@.reporting_timezone())::date;
    RETURN QUERY
    WITH norm AS MATERIALIZED (
        -- the company norms, then the open deals: each function runs its
        -- queries in this backend, with parallel workers where they pay (run
        -- at once by two workers, each would do its share in a process that
        -- faults in every page it reads, and with no workers of its own: 3.1
        -- s against 2.4 s for stalled_deals at 1M deals)
        SELECT n.stage_id, n.p75_days
          FROM sales_kpi_internal.stage_time_norms_rows(at_time, 'company', lb) n
    ), deal AS (
        -- the current stay of each open deal
        SELECT d.opportunity_id, d.pipeline_id, d.owner_id, d.stage_id, d.expected_close, d.amount_base,
               d.entered_at, d.missing_milestones AS names,
               extract(epoch FROM at_time - d.entered_at)::double precision / 86400 AS stay_days
          FROM sales_kpi_internal.stage_time_open_deals(at_time) d
    ), flagged AS (
        SELECT d.*, n.p75_days,
               array_remove(ARRAY[
                   CASE WHEN d.stay_days > n.p75_days THEN 'over_norm' END,
                   CASE WHEN d.names IS NOT NULL THEN 'missing_milestones' END,
                   CASE WHEN d.expected_close < as_of_date THEN 'past_expected_close' END], NULL) AS reasons
          FROM deal d
          LEFT JOIN norm n ON n.stage_id = d.stage_id
    ), stalled AS MATERIALIZED (
        SELECT f.* FROM flagged f WHERE cardinality(f.reasons) > 0
    ), bd AS (
        -- a deal attribute's breakdown, read in one pass (the rep: the deal's owner below)
        SELECT b.opportunity_id, b.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN dim IN ('company', 'rep', 'team') THEN '{}'
                        ELSE ARRAY(SELECT st.opportunity_id FROM stalled st) END, at_time, dim) b
    )
    SELECT dim,
           CASE WHEN dim = 'company' THEN 'all'
                WHEN dim IN ('rep', 'team')
                THEN @extschema@.dimension_value(dim, NULL, r.name, r.team, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                ELSE bd.dimension_value END,
           f.opportunity_id, f.pipeline_id, p.name, f.stage_id, s.name, f.owner_id, f.amount_base,
           f.reasons, f.entered_at, f.stay_days, f.p75_days, f.names, f.expected_close,
           CASE WHEN f.expected_close < as_of_date THEN (as_of_date - f.expected_close)::double precision END
      FROM stalled f
      JOIN @extschema@.stage s ON s.stage_id = f.stage_id
      JOIN @extschema@.pipeline p ON p.pipeline_id = f.pipeline_id
      LEFT JOIN bd ON bd.opportunity_id = f.opportunity_id
      LEFT JOIN @extschema@.rep r ON r.rep_id = f.owner_id
     ORDER BY f.opportunity_id;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_stalled_rows(timestamptz, text, interval) IS
    'Internal: the rows of stalled_deals().';

CREATE OR REPLACE FUNCTION @extschema@.weighted_pipeline_value(as_of timestamptz DEFAULT now(), dimension text DEFAULT 'company',
                                                    weighting text DEFAULT 'stage',
                                                    lookback interval DEFAULT '365 days',
                                                    min_sample integer DEFAULT 20)
RETURNS TABLE (dimension text, dimension_value text, deals bigint, amount numeric, weighted_amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(weighted_pipeline_value.as_of, weighted_pipeline_value.dimension,
                                                 weighted_pipeline_value.weighting, weighted_pipeline_value.lookback,
                                                 weighted_pipeline_value.min_sample);
    WITH agg AS (
        -- the stage weighting rolls up the open-pipeline partials; the
        -- others weigh each deal
        SELECT op.dimension_value AS dv, sum(op.deals)::bigint AS deals, coalesce(sum(op.amount), 0) AS amount,
               coalesce(sum(op.weighted_amount), 0) AS weighted
          FROM sales_kpi_internal.open_partials(weighted_pipeline_value.as_of, weighted_pipeline_value.dimension) op
         WHERE weighted_pipeline_value.weighting = 'stage'
         GROUP BY 1
        UNION ALL
        SELECT od.dimension_value, count(*), coalesce(sum(od.amount), 0),
               coalesce(@extschema@.weighted_pipeline(od.amount,
                                                      CASE weighted_pipeline_value.weighting
                                                           WHEN 'milestone' THEN od.milestone_probability
                                                           ELSE od.historical_probability END), 0)
          FROM sales_kpi_internal.pipeline_value_open_deals(weighted_pipeline_value.as_of, weighted_pipeline_value.lookback,
                                                     weighted_pipeline_value.min_sample,
                                                     weighted_pipeline_value.weighting = 'milestone',
                                                     weighted_pipeline_value.weighting = 'historical',
                                                     dimension => weighted_pipeline_value.dimension) od
         WHERE weighted_pipeline_value.weighting <> 'stage'
         GROUP BY 1
    )
    SELECT weighted_pipeline_value.dimension, k.dv, coalesce(a.deals, 0), coalesce(a.amount, 0),
           coalesce(a.weighted, 0)
      FROM (SELECT agg.dv FROM agg UNION SELECT 'all' WHERE weighted_pipeline_value.dimension = 'company') k
      LEFT JOIN agg a ON a.dv = k.dv
     ORDER BY k.dv;
$$;
COMMENT ON FUNCTION @extschema@.weighted_pipeline_value(timestamptz, text, text, interval, integer) IS
    'Deals open at as_of per breakdown value: count, amount and the weighted pipeline sum(amount x p), p from the stage, milestone or historical weighting; base currency at the as_of date rate.';

CREATE OR REPLACE FUNCTION @extschema@.win_rate(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                     dimension text DEFAULT 'company', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               closed bigint, won bigint, lost bigint, win_rate double precision,
               win_rate_lower double precision, win_rate_upper double precision,
               won_amount numeric, closed_amount numeric, amount_win_rate double precision,
               company_win_rate double precision, win_rate_vs_company double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end,
               sales_kpi_internal.outcome_dimension(win_rate.dimension, '{contact_role,deal_size_band}') AS dim
          FROM sales_kpi_internal.resolve_period(win_rate.period_start, win_rate.period_end, win_rate.as_of) r
    ), parts AS MATERIALIZED (
        -- a deal has several contact roles: that breakdown reads the deals
        -- below, and its partials are the company's, for the company rate
        SELECT cp.dimension_value AS value, cp.outcomes, cp.closed_amount
          FROM p, sales_kpi_internal.closed_partials(ARRAY[p.period_start, p.period_end], win_rate.as_of,
                                              CASE WHEN p.dim = 'contact_role' THEN 'company' ELSE p.dim END,
                                              false) cp
    ), roles AS (
        -- once per distinct role of the deal's contacts; no contact: '(none)'
        SELECT DISTINCT ON (c.opportunity_id, coalesce(oc.role, '(none)'))
               c.outcome, c.amount_base, coalesce(oc.role, '(none)') AS value
          FROM p
         CROSS JOIN sales_kpi_internal.closed_deal_rows(p.period_start, p.period_end, win_rate.as_of, 'company') c
          LEFT JOIN @extschema@.opportunity_contact oc ON oc.opportunity_id = c.opportunity_id
         WHERE win_rate.dimension = 'contact_role'
    ), g AS (
        SELECT parts.value, @extschema@.rollup(parts.outcomes) AS w, sum(parts.closed_amount) AS closed_amount
          FROM parts
         WHERE win_rate.dimension <> 'contact_role'
         GROUP BY parts.value
        UNION ALL
        SELECT roles.value, @extschema@.winloss_agg(roles.outcome = 'won', roles.amount_base),
               sum(roles.amount_base)
          FROM roles
         GROUP BY roles.value
    ), overall AS (
        SELECT @extschema@.win_rate(@extschema@.rollup(parts.outcomes)) AS rate
          FROM parts
    )
    SELECT p.dim, v.value, p.period_start, p.period_end,
           coalesce(@extschema@.won_count(g.w) + @extschema@.lost_count(g.w), 0),
           coalesce(@extschema@.won_count(g.w), 0),
           coalesce(@extschema@.lost_count(g.w), 0),
           @extschema@.win_rate(g.w),
           @extschema@.wilson_lower(g.w),
           @extschema@.wilson_upper(g.w),
           coalesce(@extschema@.won_amount(g.w), 0),
           coalesce(g.closed_amount, 0),
           (coalesce(@extschema@.won_amount(g.w), 0) / nullif(g.closed_amount, 0))::double precision,
           o.rate,
           @extschema@.win_rate(g.w) - o.rate
      FROM p
     CROSS JOIN overall o
     CROSS JOIN (SELECT g.value FROM g
                 UNION
                 SELECT 'all' WHERE win_rate.dimension = 'company') v
      LEFT JOIN g ON g.value = v.value
     ORDER BY array_position(ARRAY['< 10k', '10k - 50k', '50k - 250k', '>= 250k'], v.value), v.value
$$;
COMMENT ON FUNCTION @extschema@.win_rate(timestamptz, timestamptz, text, timestamptz) IS
    'Win rate of the deals closed in a period (as the history stood at as_of), per dimension value: won / (won + lost) with a 95% Wilson interval, amount-weighted win rate, and the difference from the company rate. Besides the common dimensions accepts contact_role and deal_size_band.';

-- every caller now passes the product
DROP FUNCTION @extschema@.dimension_value(text, text, text, text, text, text, text, text, text, text);

CREATE OR REPLACE FUNCTION sales_kpi_internal.sync_opportunity_stage(opportunity_ids bigint[])
RETURNS void
AS 'MODULE_PATHNAME', 'sync_opportunity_stage'
LANGUAGE C;
COMMENT ON FUNCTION sales_kpi_internal.sync_opportunity_stage(bigint[]) IS
    'Internal: re-derives opportunity.stage_id, closed_at and stage_entered_at from the newest stage_event of each given deal.';

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

-- CRM import.  scripts/crm_import.sh copies each CSV export into a
-- temporary staging table of the session (every column text, named after
-- the file's header, lower-cased with runs of other characters as '_', plus
-- the file name and line of each row), then calls one function per layout:
-- import_salesforce and import_hubspot turn their exports into the generic
-- layout, and import_generic validates, maps and writes it, set-wise: one
-- INSERT ... ON CONFLICT per table, so a rerun updates rows instead of
-- duplicating them, and the cost is linear in the rows.  A row that cannot
-- be loaded is not written; it is recorded in import_error with its file,
-- line and reason, and the good rows load.
--
-- Staging tables of the generic layout (pg_temp; created by the script or
-- by hand with \copy):
--   import_reps        external_id, name, team, manager, role
--   import_accounts    external_id, name, industry, segment, region
--   import_deals       external_id, name, pipeline, stage, amount, currency,
--                      created_at, expected_close, owner, account, product,
--                      kind, source, lost_reason
--   import_stage_changes  deal, stage, entered_at, amount, external_id
--   import_activities  external_id, rep, deal, kind, occurred_at,
--                      duration_s, connected
-- each with _file text and _line bigint.  Only import_deals is required.

-- CRM stage names mapped to stages.  Without a row, a CRM stage name equal
-- to a stage name of the deal's pipeline (ignoring case and surrounding
-- blanks) is that stage; any other name makes the row bad.
CREATE TABLE @extschema@.stage_mapping (
    crm_source          text NOT NULL,
    pipeline_id         bigint NOT NULL REFERENCES @extschema@.pipeline ON DELETE CASCADE,
    crm_stage           text NOT NULL,
    stage_id            bigint NOT NULL,
    PRIMARY KEY (crm_source, pipeline_id, crm_stage),
    CONSTRAINT stage_mapping_stage_fkey FOREIGN KEY (pipeline_id, stage_id)
        REFERENCES @extschema@.stage (pipeline_id, stage_id) ON DELETE CASCADE
);
COMMENT ON TABLE @extschema@.stage_mapping IS
    'Which stage a CRM''s stage name means, per CRM and pipeline (crm_stage compared ignoring case and surrounding blanks). Without a row, a stage of the same name is meant.';

CREATE TABLE @extschema@.import_run (
    import_id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    crm_source          text NOT NULL,
    layout              text NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at         timestamptz,
    -- rows read, written (inserted or changed) and refused, per table
    counts              jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE @extschema@.import_run IS
    'One row per CRM import: the source, the layout, when it ran, and per staging table the rows read, written (inserted or changed) and refused.';

CREATE TABLE @extschema@.import_error (
    import_id           bigint NOT NULL REFERENCES @extschema@.import_run ON DELETE CASCADE,
    file                text NOT NULL,
    line                bigint NOT NULL,
    reason              text NOT NULL
);
CREATE INDEX import_error_import_idx ON @extschema@.import_error (import_id, file, line);
COMMENT ON TABLE @extschema@.import_error IS
    'The rows an import did not load: file, line (the header is line 1; a quoted field spanning lines counts as one) and why.';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.stage_mapping', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.import_run', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.import_error', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.import_run', 'import_id'), '');

-- The staging column name of a CSV header field: lower case, runs of other
-- characters than letters and digits as one '_', none at the ends.
CREATE FUNCTION @extschema@.import_column_name(header_field text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT btrim(regexp_replace(lower(header_field), '[^a-z0-9]+', '_', 'g'), '_')
$$;
COMMENT ON FUNCTION @extschema@.import_column_name(text) IS
    'The staging column of a CSV header field: lower-cased, other characters than letters and digits collapsed to _, e.g. ''Deal Stage'' -> deal_stage.';

-- Creates the staging table pg_temp.<table_name> for a CSV file from its
-- header line (a UTF-8 byte-order mark and quotes are handled) and returns
-- the column list for \copy.  Every column is text; _file and _line (the
-- record's line, the header being line 1) are filled in.
CREATE FUNCTION @extschema@.import_staging_table(table_name text, file text, header text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text[];
BEGIN
    IF table_name IS NULL OR table_name !~ '^[a-z_][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'invalid value for argument "table_name": "%"', table_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    header := regexp_replace(coalesce(header, ''), E'^\uFEFF|\r$', '', 'g');
    IF header = '' THEN
        RAISE EXCEPTION 'file % is empty: its first line must be the header', file
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    SELECT array_agg(@extschema@.import_column_name(
                         CASE WHEN m[1] LIKE '"%' THEN replace(substr(m[1], 2, length(m[1]) - 2), '""', '"') ELSE m[1] END)
                     ORDER BY n)
      INTO cols
      FROM regexp_matches(header || ',', '("(?:[^"]|"")*"|[^,]*),', 'g') WITH ORDINALITY AS r(m, n);
    IF cols IS NULL OR EXISTS (SELECT 1 FROM unnest(cols) c WHERE c = '') THEN
        RAISE EXCEPTION 'file %: the header has an empty column name', file
            USING ERRCODE = 'invalid_text_representation', DETAIL = format('Header: %s', header);
    END IF;
    IF (SELECT count(DISTINCT c) FROM unnest(cols) c) < cardinality(cols) THEN
        RAISE EXCEPTION 'file %: two header fields give the same column name', file
            USING ERRCODE = 'duplicate_column', DETAIL = format('Columns: %s', array_to_string(cols, ', '));
    END IF;
    IF to_regclass('pg_temp.' || quote_ident(table_name)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE pg_temp.%I CASCADE', table_name);
    END IF;
    EXECUTE format('CREATE TEMP TABLE %I (%s, _file text NOT NULL DEFAULT %L, _record bigint GENERATED ALWAYS AS IDENTITY)',
                   table_name, (SELECT string_agg(format('%I text', c), ', ' ORDER BY n)
                                  FROM unnest(cols) WITH ORDINALITY AS u(c, n)), file);
    EXECUTE format('CREATE TEMP VIEW %I AS SELECT *, _record + 1 AS _line FROM pg_temp.%I',
                   table_name || '_rows', table_name);
    RETURN (SELECT string_agg(format('%I', c), ', ' ORDER BY n) FROM unnest(cols) WITH ORDINALITY AS u(c, n));
END;
$$;
COMMENT ON FUNCTION @extschema@.import_staging_table(text, text, text) IS
    'Creates the temporary staging table of a CSV file from its header line (every column text, plus _file and the record number) and a view <table>_rows adding _line; returns the column list for \copy.';

-- A timestamp read with the first of the formats that matches it, in the
-- session's time zone; null when none does.  A format is a to_timestamp
-- pattern; the value must have the pattern's shape (YYYY four digits, MM,
-- DD, HH24, HH12, MI and SS one or two, MS and US digits, AM/PM, anything
-- text in double quotes and anything else literally), so 2026-03-04 is not
-- read as 03/04/2026 and the order of day and month is never guessed.
CREATE FUNCTION @extschema@.import_timestamp(value text, formats text[])
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text;
    shape text;
BEGIN
    value := btrim(value);
    IF value IS NULL OR value = '' THEN
        RETURN NULL;
    END IF;
    FOREACH f IN ARRAY formats LOOP
        shape := '^' || regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
                     regexp_replace(regexp_replace(f, '"([^"]*)"', '\1', 'g'), '([.^$*+?()\[\]{}|\\/-])', '\\\1', 'g'),
                     'YYYY', '\\d{4}', 'g'),
                     '(MM|DD|HH24|HH12|HH|MI|SS)', '\\d{1,2}', 'g'),
                     '(MS|US)', '\\d{1,6}', 'g'),
                     '(AM|PM)', '[AaPp][Mm]', 'g'),
                     ' ', '\\s+', 'g') || '$';
        IF value ~ shape THEN
            BEGIN
                RETURN to_timestamp(value, f);
            EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
                NULL;
            END;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION @extschema@.import_timestamp(text, text[]) IS
    'A CSV value read as a timestamp with the first of the to_timestamp formats whose shape it has (in the session time zone); null when none fits or the value is empty.';

-- A CSV amount: digits with an optional sign and decimals, thousands
-- separated by commas or blanks in groups of three (12,000 but not 12,34);
-- empty is null; anything else (and anything over 100 characters) NaN.
CREATE FUNCTION @extschema@.import_number(value text)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN btrim(coalesce(value, '')) = '' THEN NULL
                WHEN length(value) > 100 THEN 'NaN'::numeric
                WHEN btrim(value) ~ '^[+-]?(\d+\.?\d*|\.\d+)$' THEN btrim(value)::numeric
                -- thousands separators only between groups of three digits
                WHEN btrim(value) ~ '^[+-]?\d{1,3}([, ]\d{3})+(\.\d*)?$'
                THEN regexp_replace(btrim(value), '[, ]', '', 'g')::numeric
                ELSE 'NaN'::numeric END
$$;
COMMENT ON FUNCTION @extschema@.import_number(text) IS
    'A CSV number: sign, digits, a decimal point, thousands separators (commas or blanks) allowed; null for empty, NaN for anything else.';

-- Prints one progress line of an import and returns the time.
CREATE FUNCTION sales_kpi_internal.import_progress(phase text, row_count bigint, since timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
BEGIN
    RAISE NOTICE '%', format('import: %s: %s rows in %s s', phase,
        to_char(coalesce(row_count, 0), 'FM999,999,999,990'), to_char(extract(epoch FROM now_ - since), 'FM999990.0'));
    RETURN now_;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.import_progress(text, bigint, timestamptz) IS
    'Internal: prints one progress line of an import (phase, rows, seconds) and returns the time.';

-- Makes sure the staging table pg_temp.<name> exists with at least the
-- given columns (a file that is absent or lacks optional columns reads as
-- empty ones), so the import's queries can name them all.
CREATE FUNCTION sales_kpi_internal.import_columns(table_name text, columns text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
BEGIN
    IF to_regclass('pg_temp.' || quote_ident(table_name)) IS NULL THEN
        PERFORM @extschema@.import_staging_table(table_name, table_name || '.csv', array_to_string(columns, ','));
    END IF;
    FOREACH c IN ARRAY columns LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = ('pg_temp.' || quote_ident(table_name))::regclass
                          AND a.attname = c AND NOT a.attisdropped) THEN
            EXECUTE format('ALTER TABLE pg_temp.%I ADD COLUMN %I text', table_name, c);
        END IF;
    END LOOP;
    -- the view lists the columns as they are now
    IF to_regclass('pg_temp.' || quote_ident(table_name || '_rows')) IS NOT NULL THEN
        EXECUTE format('DROP VIEW pg_temp.%I', table_name || '_rows');
    END IF;
    EXECUTE format('CREATE TEMP VIEW %I AS SELECT *, _record + 1 AS _line FROM pg_temp.%I',
                   table_name || '_rows', table_name);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.import_columns(text, text[]) IS
    'Internal: makes sure a staging table exists with at least the given columns.';

-- The generic layout, validated, mapped and written.  Returns the import's
-- id; its bad rows are in import_error, its counts in import_run.
CREATE FUNCTION @extschema@.import_generic(crm_source text, date_formats text[],
                                           default_pipeline text DEFAULT NULL, layout text DEFAULT 'generic')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_t timestamptz := clock_timestamp();
    v_counts jsonb := '{}';
    v_read bigint;
    v_bad bigint;
    v_written bigint;
    v_src text := crm_source;
    v_base character(3) := @extschema@.base_currency();
    v_pipeline bigint;
BEGIN
    IF v_src IS NULL OR btrim(v_src) = '' THEN
        RAISE EXCEPTION 'argument "crm_source" must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF date_formats IS NULL OR cardinality(date_formats) = 0 OR array_position(date_formats, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'argument "date_formats" must list at least one format'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'E.g. ARRAY[''YYYY-MM-DD HH24:MI:SS'', ''YYYY-MM-DD''].';
    END IF;
    IF default_pipeline IS NOT NULL THEN
        SELECT p.pipeline_id INTO v_pipeline FROM @extschema@.pipeline p WHERE lower(p.name) = lower(btrim(default_pipeline));
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pipeline "%" does not exist', default_pipeline
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Name a row of sales_kpi.pipeline.';
        END IF;
    END IF;
    IF to_regclass('pg_temp.import_deals') IS NULL THEN
        RAISE EXCEPTION 'no staging table pg_temp.import_deals in this session'
            USING ERRCODE = 'undefined_table', HINT = 'Load the deals file with scripts/crm_import.sh, or create and \copy it as the README shows.';
    END IF;
    PERFORM sales_kpi_internal.import_columns('import_reps', ARRAY['external_id', 'name', 'team', 'manager', 'role']);
    PERFORM sales_kpi_internal.import_columns('import_accounts', ARRAY['external_id', 'name', 'industry', 'segment', 'region']);
    PERFORM sales_kpi_internal.import_columns('import_deals', ARRAY['external_id', 'name', 'pipeline', 'stage', 'amount', 'currency',
        'created_at', 'expected_close', 'owner', 'account', 'product', 'kind', 'source', 'lost_reason']);
    PERFORM sales_kpi_internal.import_columns('import_stage_changes', ARRAY['deal', 'stage', 'entered_at', 'amount', 'external_id']);
    PERFORM sales_kpi_internal.import_columns('import_activities', ARRAY['external_id', 'rep', 'deal', 'kind', 'occurred_at',
        'duration_s', 'connected']);
    INSERT INTO @extschema@.import_run (crm_source, layout) VALUES (v_src, layout) RETURNING import_id INTO v_id;

    ---------------------------------------------------------------- reps
    IF to_regclass('pg_temp._imp') IS NOT NULL THEN
        DROP TABLE pg_temp._imp;
    END IF;
    CREATE TEMP TABLE _imp AS
    SELECT r._file, r._line, btrim(r.external_id) AS xid, btrim(r.name) AS name, nullif(btrim(r.team), '') AS team,
           nullif(btrim(r.manager), '') AS manager,
           CASE WHEN coalesce(btrim(r.role), '') = '' THEN 'ae'
                WHEN lower(btrim(r.role)) IN ('ae', 'sdr', 'manager', 'se', 'am', 'csm', 'other') THEN lower(btrim(r.role))
                ELSE 'other' END AS role,
           CASE WHEN coalesce(btrim(r.external_id), '') = '' THEN 'no external_id'
                WHEN coalesce(btrim(r.name), '') = '' THEN 'no name'
                WHEN first_value(r._line) OVER w <> r._line
                THEN format('duplicate of line %s (same external_id %s)', first_value(r._line) OVER w, btrim(r.external_id))
           END AS reason
      FROM pg_temp.import_reps_rows r
    WINDOW w AS (PARTITION BY btrim(r.external_id) ORDER BY r._line);
    INSERT INTO @extschema@.import_error (import_id, file, line, reason)
    SELECT v_id, i._file, i._line, i.reason FROM _imp i WHERE i.reason IS NOT NULL;
    GET DIAGNOSTICS v_bad = ROW_COUNT;
    SELECT count(*) INTO v_read FROM _imp;
    INSERT INTO @extschema@.rep AS t (name, team, role, crm_source, external_id)
    SELECT i.name, i.team, i.role, v_src, i.xid FROM _imp i WHERE i.reason IS NULL
        ON CONFLICT (crm_source, external_id) DO UPDATE
       SET name = excluded.name, team = excluded.team, role = excluded.role
     WHERE (t.name, t.team, t.role) IS DISTINCT FROM (excluded.name, excluded.team, excluded.role);
    GET DIAGNOSTICS v_written = ROW_COUNT;
    -- managers, once every rep of the file is in
    UPDATE @extschema@.rep t
       SET manager_id = m.rep_id
      FROM _imp i
      JOIN @extschema@.rep m ON m.crm_source = v_src AND m.external_id = i.manager
     WHERE i.reason IS NULL AND t.crm_source = v_src AND t.external_id = i.xid
       AND m.rep_id <> t.rep_id AND t.manager_id IS DISTINCT FROM m.rep_id;
    v_counts := v_counts || jsonb_build_object('reps', jsonb_build_object('read', v_read, 'written', v_written, 'refused', v_bad));
    v_t := sales_kpi_internal.import_progress('reps', v_read, v_t);

    ---------------------------------------------------------------- accounts
    DROP TABLE pg_temp._imp;
    CREATE TEMP TABLE _imp AS
    SELECT a._file, a._line, btrim(a.external_id) AS xid, btrim(a.name) AS name, nullif(btrim(a.industry), '') AS industry,
           nullif(btrim(a.segment), '') AS segment, nullif(btrim(a.region), '') AS region,
           CASE WHEN coalesce(btrim(a.external_id), '') = '' THEN 'no external_id'
                WHEN coalesce(btrim(a.name), '') = '' THEN 'no name'
                WHEN first_value(a._line) OVER w <> a._line
                THEN format('duplicate of line %s (same external_id %s)', first_value(a._line) OVER w, btrim(a.external_id))
           END AS reason
      FROM pg_temp.import_accounts_rows a
    WINDOW w AS (PARTITION BY btrim(a.external_id) ORDER BY a._line);
    INSERT INTO @extschema@.import_error (import_id, file, line, reason)
    SELECT v_id, i._file, i._line, i.reason FROM _imp i WHERE i.reason IS NOT NULL;
    GET DIAGNOSTICS v_bad = ROW_COUNT;
    SELECT count(*) INTO v_read FROM _imp;
    INSERT INTO @extschema@.account AS t (name, industry, segment, region, crm_source, external_id)
    SELECT i.name, i.industry, i.segment, i.region, v_src, i.xid FROM _imp i WHERE i.reason IS NULL
        ON CONFLICT (crm_source, external_id) DO UPDATE
       SET name = excluded.name, industry = excluded.industry, segment = excluded.segment, region = excluded.region
     WHERE (t.name, t.industry, t.segment, t.region)
           IS DISTINCT FROM (excluded.name, excluded.industry, excluded.segment, excluded.region);
    GET DIAGNOSTICS v_written = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('accounts', jsonb_build_object('read', v_read, 'written', v_written, 'refused', v_bad));
    v_t := sales_kpi_internal.import_progress('accounts', v_read, v_t);

    ---------------------------------------------------------------- deals
    DROP TABLE pg_temp._imp;
    CREATE TEMP TABLE _imp AS
    WITH d AS (
        SELECT x._file, x._line, btrim(x.external_id) AS xid, btrim(x.name) AS name,
               coalesce(p.pipeline_id, CASE WHEN coalesce(btrim(x.pipeline), '') = '' THEN v_pipeline END) AS pipeline_id,
               nullif(btrim(x.pipeline), '') AS pipeline_name, btrim(x.stage) AS crm_stage,
               @extschema@.import_number(x.amount) AS amount,
               coalesce(nullif(upper(btrim(x.currency)), ''), v_base) AS currency,
               @extschema@.import_timestamp(x.created_at, date_formats) AS created_at,
               @extschema@.import_timestamp(x.expected_close, date_formats)::date AS expected_close,
               coalesce(btrim(x.expected_close), '') = '' AS no_expected_close,
               nullif(btrim(x.owner), '') AS owner_xid, nullif(btrim(x.account), '') AS account_xid,
               nullif(btrim(x.product), '') AS product,
               coalesce(nullif(lower(btrim(x.kind)), ''), 'new') AS kind,
               nullif(btrim(x.source), '') AS source, nullif(btrim(x.lost_reason), '') AS lost_reason,
               first_value(x._line) OVER (PARTITION BY btrim(x.external_id) ORDER BY x._line) AS first_line
          FROM pg_temp.import_deals_rows x
          LEFT JOIN @extschema@.pipeline p ON lower(p.name) = lower(btrim(x.pipeline))
    )
    SELECT d.*, s.stage_id, s.kind AS stage_kind, rp.rep_id AS owner_id, ac.account_id,
           CASE WHEN coalesce(d.xid, '') = '' THEN 'no external_id'
                WHEN d.first_line <> d._line THEN format('duplicate of line %s (same external_id %s)', d.first_line, d.xid)
                WHEN coalesce(d.name, '') = '' THEN 'no name'
                WHEN d.pipeline_id IS NULL AND d.pipeline_name IS NULL THEN 'no pipeline (and no default pipeline given)'
                WHEN d.pipeline_id IS NULL THEN format('unknown pipeline "%s"', d.pipeline_name)
                WHEN ex.pipeline_id <> d.pipeline_id
                THEN format('pipeline "%s", but the deal loaded before is in "%s": a deal keeps its pipeline (its stage history is in it)',
                            (SELECT p.name FROM @extschema@.pipeline p WHERE p.pipeline_id = d.pipeline_id),
                            (SELECT p.name FROM @extschema@.pipeline p WHERE p.pipeline_id = ex.pipeline_id))
                WHEN d.created_at IS NULL THEN format('created_at "%s" matches none of the date formats', (SELECT y.created_at FROM pg_temp.import_deals_rows y WHERE y._line = d._line))
                WHEN d.created_at > now() + @extschema@.future_tolerance() THEN format('created_at %s is in the future', d.created_at)
                WHEN d.expected_close IS NULL AND NOT d.no_expected_close
                THEN format('expected_close "%s" matches none of the date formats', (SELECT y.expected_close FROM pg_temp.import_deals_rows y WHERE y._line = d._line))
                WHEN d.amount = 'NaN' THEN format('amount "%s" is not a number', (SELECT y.amount FROM pg_temp.import_deals_rows y WHERE y._line = d._line))
                WHEN d.amount < 0 THEN format('amount %s is negative', d.amount)
                WHEN d.currency !~ '^[A-Z]{3}$' THEN format('currency "%s" is not a three-letter code', d.currency)
                WHEN d.currency <> v_base AND NOT EXISTS (SELECT 1 FROM @extschema@.fx_rate f WHERE f.currency = d.currency)
                THEN format('currency %s has no exchange rate in sales_kpi.fx_rate', d.currency)
                WHEN d.kind NOT IN ('new', 'expansion', 'renewal') THEN format('kind "%s" is not new, expansion or renewal', d.kind)
                WHEN d.crm_stage IS NULL OR d.crm_stage = '' THEN 'no stage'
                WHEN s.stage_id IS NULL
                THEN format('unknown stage "%s" in pipeline "%s": add it to sales_kpi.stage_mapping', d.crm_stage,
                            (SELECT p.name FROM @extschema@.pipeline p WHERE p.pipeline_id = d.pipeline_id))
           END AS reason
      FROM d
      LEFT JOIN LATERAL (
            SELECT st.stage_id, st.kind
              FROM @extschema@.stage st
             WHERE st.pipeline_id = d.pipeline_id
               AND (st.stage_id = (SELECT m.stage_id FROM @extschema@.stage_mapping m
                                    WHERE m.crm_source = v_src AND m.pipeline_id = d.pipeline_id
                                      AND lower(btrim(m.crm_stage)) = lower(d.crm_stage))
                    OR (NOT EXISTS (SELECT 1 FROM @extschema@.stage_mapping m
                                     WHERE m.crm_source = v_src AND m.pipeline_id = d.pipeline_id
                                       AND lower(btrim(m.crm_stage)) = lower(d.crm_stage))
                        AND lower(st.name) = lower(d.crm_stage)))
             LIMIT 1) s ON true
      LEFT JOIN @extschema@.rep rp ON rp.crm_source = v_src AND rp.external_id = d.owner_xid
      LEFT JOIN @extschema@.account ac ON ac.crm_source = v_src AND ac.external_id = d.account_xid
      LEFT JOIN @extschema@.opportunity ex ON ex.crm_source = v_src AND ex.external_id = d.xid;
    ANALYZE _imp;
    INSERT INTO @extschema@.import_error (import_id, file, line, reason)
    SELECT v_id, i._file, i._line, i.reason FROM _imp i WHERE i.reason IS NOT NULL;
    GET DIAGNOSTICS v_bad = ROW_COUNT;
    SELECT count(*) INTO v_read FROM _imp;
    -- a rerun updates what the CRM says now; the triggers snapshot the
    -- forecast fields that change.  The pipeline of a deal with history
    -- does not change.
    INSERT INTO @extschema@.opportunity AS t
           (pipeline_id, account_id, owner_id, name, kind, amount, currency, source, created_at,
            expected_close, lost_reason, product, crm_source, external_id)
    SELECT i.pipeline_id, i.account_id, i.owner_id, i.name, i.kind, coalesce(i.amount, 0), i.currency, i.source,
           i.created_at, i.expected_close, i.lost_reason, i.product, v_src, i.xid
      FROM _imp i WHERE i.reason IS NULL
        ON CONFLICT (crm_source, external_id) DO UPDATE
       SET account_id = excluded.account_id, owner_id = excluded.owner_id, name = excluded.name,
           kind = excluded.kind, amount = excluded.amount, currency = excluded.currency, source = excluded.source,
           created_at = excluded.created_at, expected_close = excluded.expected_close,
           lost_reason = excluded.lost_reason, product = excluded.product
     WHERE (t.account_id, t.owner_id, t.name, t.kind, t.amount, t.currency, t.source, t.created_at,
            t.expected_close, t.lost_reason, t.product)
           IS DISTINCT FROM
           (excluded.account_id, excluded.owner_id, excluded.name, excluded.kind, excluded.amount, excluded.currency,
            excluded.source, excluded.created_at, excluded.expected_close, excluded.lost_reason, excluded.product);
    GET DIAGNOSTICS v_written = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('deals', jsonb_build_object('read', v_read, 'written', v_written, 'refused', v_bad));
    v_t := sales_kpi_internal.import_progress('deals', v_read, v_t);

    ---------------------------------------------------------------- stage changes
    IF to_regclass('pg_temp._imp_ev') IS NOT NULL THEN
        DROP TABLE pg_temp._imp_ev;
    END IF;
    CREATE TEMP TABLE _imp_ev AS
    WITH c AS (
        SELECT x._file, x._line, btrim(x.deal) AS deal_xid, btrim(x.stage) AS crm_stage,
               @extschema@.import_timestamp(x.entered_at, date_formats) AS entered_at, x.entered_at AS entered_text,
               @extschema@.import_number(x.amount) AS amount, x.amount AS amount_text,
               nullif(btrim(x.external_id), '') AS given_xid
          FROM pg_temp.import_stage_changes_rows x
    ), k AS (
        SELECT c.*, o.opportunity_id, o.pipeline_id, o.created_at,
               -- (the instant in a fixed format: a rerun under another
               -- DateStyle or TimeZone makes the same key)
               coalesce(c.given_xid, c.deal_xid || '|' || c.crm_stage || '|'
                        || coalesce(to_char(c.entered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '')) AS xid
          FROM c
          LEFT JOIN @extschema@.opportunity o ON o.crm_source = v_src AND o.external_id = c.deal_xid
    )
    SELECT k.*, s.stage_id,
           CASE WHEN coalesce(k.deal_xid, '') = '' THEN 'no deal'
                WHEN k.opportunity_id IS NULL THEN format('deal %s is not loaded', k.deal_xid)
                WHEN k.entered_at IS NULL THEN format('entered_at "%s" matches none of the date formats', k.entered_text)
                WHEN k.entered_at > now() + @extschema@.future_tolerance() THEN format('entered_at %s is in the future', k.entered_at)
                WHEN k.amount = 'NaN' THEN format('amount "%s" is not a number', k.amount_text)
                WHEN k.amount < 0 THEN format('amount %s is negative', k.amount)
                WHEN coalesce(k.crm_stage, '') = '' THEN 'no stage'
                WHEN s.stage_id IS NULL
                THEN format('unknown stage "%s" in pipeline "%s": add it to sales_kpi.stage_mapping', k.crm_stage,
                            (SELECT p.name FROM @extschema@.pipeline p WHERE p.pipeline_id = k.pipeline_id))
                WHEN first_value(k._line) OVER w <> k._line
                THEN format('duplicate of line %s (same deal, stage and instant)', first_value(k._line) OVER w)
           END AS reason
      FROM k
      LEFT JOIN LATERAL (
            SELECT st.stage_id
              FROM @extschema@.stage st
             WHERE st.pipeline_id = k.pipeline_id
               AND (st.stage_id = (SELECT m.stage_id FROM @extschema@.stage_mapping m
                                    WHERE m.crm_source = v_src AND m.pipeline_id = k.pipeline_id
                                      AND lower(btrim(m.crm_stage)) = lower(k.crm_stage))
                    OR (NOT EXISTS (SELECT 1 FROM @extschema@.stage_mapping m
                                     WHERE m.crm_source = v_src AND m.pipeline_id = k.pipeline_id
                                       AND lower(btrim(m.crm_stage)) = lower(k.crm_stage))
                        AND lower(st.name) = lower(k.crm_stage)))
             LIMIT 1) s ON true
    WINDOW w AS (PARTITION BY k.xid ORDER BY k._line);
    INSERT INTO @extschema@.import_error (import_id, file, line, reason)
    SELECT v_id, e._file, e._line, e.reason FROM _imp_ev e WHERE e.reason IS NOT NULL;
    GET DIAGNOSTICS v_bad = ROW_COUNT;
    SELECT count(*) INTO v_read FROM _imp_ev;
    -- a deal loaded without any stage change enters its current stage when
    -- it was created (a closed one: at its expected close, its close date)
    INSERT INTO _imp_ev (_file, _line, deal_xid, crm_stage, entered_at, opportunity_id, pipeline_id, xid, stage_id)
    SELECT i._file, i._line, i.xid, i.crm_stage,
           CASE WHEN i.stage_kind <> 'open' AND i.expected_close IS NOT NULL
                     AND i.expected_close::timestamptz >= i.created_at
                THEN least(i.expected_close::timestamptz, now()) ELSE i.created_at END,
           o.opportunity_id, o.pipeline_id, i.xid || '|current', i.stage_id
      FROM _imp i
      JOIN @extschema@.opportunity o ON o.crm_source = v_src AND o.external_id = i.xid
     WHERE i.reason IS NULL
       AND NOT EXISTS (SELECT 1 FROM _imp_ev e WHERE e.deal_xid = i.xid AND e.reason IS NULL)
       AND NOT EXISTS (SELECT 1 FROM @extschema@.stage_event se WHERE se.opportunity_id = o.opportunity_id);
    -- a change the CRM corrected (same id, another stage, instant or
    -- amount) updates the event
    INSERT INTO @extschema@.stage_event AS t (opportunity_id, stage_id, entered_at, amount, crm_source, external_id)
    SELECT e.opportunity_id, e.stage_id, e.entered_at, e.amount, v_src, e.xid
      FROM _imp_ev e
     WHERE e.reason IS NULL
     ORDER BY e.opportunity_id, e.entered_at
        ON CONFLICT (crm_source, external_id) DO UPDATE
       SET stage_id = excluded.stage_id, entered_at = excluded.entered_at, amount = excluded.amount
     WHERE (t.opportunity_id, t.stage_id, t.entered_at, t.amount)
           IS DISTINCT FROM (excluded.opportunity_id, excluded.stage_id, excluded.entered_at, excluded.amount);
    GET DIAGNOSTICS v_written = ROW_COUNT;
    -- a deal whose current stage in the deals file is not the one its
    -- history gives moved since: it enters that stage now (a close, at
    -- its close date when that is later than its stage)
    INSERT INTO @extschema@.stage_event (opportunity_id, stage_id, entered_at, crm_source, external_id)
    SELECT m.opportunity_id, m.stage_id, m.at, v_src,
           m.xid || '|' || m.stage_id || '|' || to_char(m.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
      FROM (SELECT o.opportunity_id, i.stage_id, i.xid,
                   CASE WHEN i.stage_kind <> 'open' AND i.expected_close IS NOT NULL
                             AND i.expected_close::timestamptz > o.stage_entered_at
                             AND i.expected_close::timestamptz <= now()
                        THEN i.expected_close::timestamptz ELSE greatest(now(), o.stage_entered_at) END AS at
              FROM _imp i
              JOIN @extschema@.opportunity o ON o.crm_source = v_src AND o.external_id = i.xid
             WHERE i.reason IS NULL AND o.stage_id IS DISTINCT FROM i.stage_id) m
        ON CONFLICT (crm_source, external_id) DO NOTHING;
    GET DIAGNOSTICS v_bad = ROW_COUNT;
    v_written := v_written + v_bad;
    SELECT count(*) INTO v_bad FROM _imp_ev e WHERE e.reason IS NOT NULL;
    v_counts := v_counts || jsonb_build_object('stage_changes', jsonb_build_object('read', v_read, 'written', v_written, 'refused', v_bad));
    v_t := sales_kpi_internal.import_progress('stage changes', v_read, v_t);

    ---------------------------------------------------------------- activities
    DROP TABLE pg_temp._imp;
    CREATE TEMP TABLE _imp AS
    SELECT x._file, x._line, btrim(x.external_id) AS xid, rp.rep_id, o.opportunity_id, o.account_id,
           lower(btrim(x.kind)) AS kind,
           @extschema@.import_timestamp(x.occurred_at, date_formats) AS occurred_at,
           @extschema@.import_number(x.duration_s) AS duration_s,
           CASE lower(btrim(coalesce(x.connected, ''))) WHEN '' THEN NULL
                WHEN 'true' THEN true WHEN 't' THEN true WHEN 'yes' THEN true WHEN '1' THEN true
                WHEN 'false' THEN false WHEN 'f' THEN false WHEN 'no' THEN false WHEN '0' THEN false END AS connected,
           CASE WHEN coalesce(btrim(x.external_id), '') = '' THEN 'no external_id'
                WHEN first_value(x._line) OVER w <> x._line
                THEN format('duplicate of line %s (same external_id %s)', first_value(x._line) OVER w, btrim(x.external_id))
                WHEN rp.rep_id IS NULL THEN format('rep "%s" is not loaded', x.rep)
                WHEN coalesce(btrim(x.deal), '') <> '' AND o.opportunity_id IS NULL THEN format('deal %s is not loaded', btrim(x.deal))
                WHEN lower(btrim(x.kind)) NOT IN ('call', 'email', 'meeting', 'demo', 'proposal', 'content', 'other')
                THEN format('kind "%s" is not call, email, meeting, demo, proposal, content or other', x.kind)
                WHEN @extschema@.import_timestamp(x.occurred_at, date_formats) IS NULL
                THEN format('occurred_at "%s" matches none of the date formats', x.occurred_at)
                WHEN @extschema@.import_number(x.duration_s) = 'NaN' OR @extschema@.import_number(x.duration_s) < 0
                     OR @extschema@.import_number(x.duration_s) > 2147483647
                THEN format('duration_s "%s" is not a number of seconds', x.duration_s)
                WHEN lower(btrim(coalesce(x.connected, ''))) NOT IN ('', 'true', 't', 'yes', '1', 'false', 'f', 'no', '0')
                THEN format('connected "%s" is not true or false', x.connected)
                WHEN lower(btrim(coalesce(x.connected, ''))) <> '' AND lower(btrim(x.kind)) <> 'call'
                THEN 'connected is only for calls'
           END AS reason
      FROM pg_temp.import_activities_rows x
      LEFT JOIN @extschema@.rep rp ON rp.crm_source = v_src AND rp.external_id = btrim(x.rep)
      LEFT JOIN @extschema@.opportunity o ON o.crm_source = v_src AND o.external_id = btrim(x.deal)
    WINDOW w AS (PARTITION BY btrim(x.external_id) ORDER BY x._line);
    INSERT INTO @extschema@.import_error (import_id, file, line, reason)
    SELECT v_id, i._file, i._line, i.reason FROM _imp i WHERE i.reason IS NOT NULL;
    GET DIAGNOSTICS v_bad = ROW_COUNT;
    SELECT count(*) INTO v_read FROM _imp;
    INSERT INTO @extschema@.activity AS t (rep_id, opportunity_id, account_id, kind, occurred_at, duration_s, connected,
                                           crm_source, external_id)
    SELECT i.rep_id, i.opportunity_id, i.account_id, i.kind, i.occurred_at, round(i.duration_s)::integer, i.connected,
           v_src, i.xid
      FROM _imp i WHERE i.reason IS NULL
        ON CONFLICT (crm_source, external_id) DO UPDATE
       SET rep_id = excluded.rep_id, opportunity_id = excluded.opportunity_id, account_id = excluded.account_id,
           kind = excluded.kind, occurred_at = excluded.occurred_at, duration_s = excluded.duration_s,
           connected = excluded.connected
     WHERE (t.rep_id, t.opportunity_id, t.account_id, t.kind, t.occurred_at, t.duration_s, t.connected)
           IS DISTINCT FROM (excluded.rep_id, excluded.opportunity_id, excluded.account_id, excluded.kind,
                             excluded.occurred_at, excluded.duration_s, excluded.connected);
    GET DIAGNOSTICS v_written = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('activities', jsonb_build_object('read', v_read, 'written', v_written, 'refused', v_bad));
    v_t := sales_kpi_internal.import_progress('activities', v_read, v_t);

    DROP TABLE pg_temp._imp;
    DROP TABLE pg_temp._imp_ev;
    UPDATE @extschema@.import_run r SET finished_at = clock_timestamp(), counts = v_counts WHERE r.import_id = v_id;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION @extschema@.import_generic(text, text[], text, text) IS
    'Imports the generic staging tables of the session (import_deals, and optionally import_reps, import_accounts, import_stage_changes, import_activities) as crm_source: bad rows go to import_error, good rows are inserted or updated by (crm_source, external_id). Returns the import_id.';

-- A staging table of a layout turned into one of the generic layout:
-- pg_temp.<target> is made from a query over pg_temp.<source> whose rows
-- keep their file and line.  An absent source file gives an empty table.
CREATE FUNCTION sales_kpi_internal.import_convert(source text, target text, query text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('pg_temp.' || quote_ident(target)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE pg_temp.%I CASCADE', target);
    END IF;
    IF to_regclass('pg_temp.' || quote_ident(source)) IS NULL THEN
        RETURN;
    END IF;
    -- j: the row as jsonb, so that a column the export lacks reads as null
    EXECUTE format('CREATE TEMP TABLE %I AS SELECT q.* FROM (SELECT s._file, s._record, to_jsonb(s) AS j FROM pg_temp.%I s) r,
                    LATERAL (%s) q', target, source, query);
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.import_convert(text, text, text) IS
    'Internal: makes a generic staging table from a layout''s staging table with a query over r._file, r._record and r.j (the row as jsonb).';

-- Salesforce exports (Data Loader or Data Export, API field names as the
-- header): User, Account, Opportunity, OpportunityHistory, Task, Event.
-- Opportunity.Type maps to the kind (New Business: new, Existing Business
-- and Upgrade: expansion, Renewal: renewal); the product is the column
-- Product__c, Product or Product_Name when there is one.  Each change of
-- StageName in OpportunityHistory is a stage event; every history row is
-- also a snapshot of Amount, CloseDate and ForecastCategory.  A Task or
-- Event is tied to a deal when its WhatId is an exported opportunity.
CREATE FUNCTION @extschema@.import_salesforce(crm_source text, date_formats text[], default_pipeline text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF to_regclass('pg_temp.sf_opportunity') IS NULL THEN
        RAISE EXCEPTION 'no staging table pg_temp.sf_opportunity in this session'
            USING ERRCODE = 'undefined_table', HINT = 'Load Opportunity.csv with scripts/crm_import.sh --layout salesforce.';
    END IF;
    PERFORM sales_kpi_internal.import_convert('sf_user', 'import_reps', $q$
        SELECT r._file, r._record, r.j->>'id' AS external_id,
               coalesce(nullif(r.j->>'name', ''), btrim(concat_ws(' ', r.j->>'firstname', r.j->>'lastname'))) AS name,
               coalesce(r.j->>'department', r.j->>'division') AS team, r.j->>'managerid' AS manager, NULL::text AS role $q$);
    PERFORM sales_kpi_internal.import_convert('sf_account', 'import_accounts', $q$
        SELECT r._file, r._record, r.j->>'id' AS external_id, r.j->>'name' AS name, r.j->>'industry' AS industry,
               r.j->>'type' AS segment, coalesce(r.j->>'billingcountry', r.j->>'shippingcountry') AS region $q$);
    PERFORM sales_kpi_internal.import_convert('sf_opportunity', 'import_deals', $q$
        SELECT r._file, r._record, r.j->>'id' AS external_id, r.j->>'name' AS name,
               coalesce(r.j->>'recordtypename', r.j->>'pipeline') AS pipeline, r.j->>'stagename' AS stage,
               r.j->>'amount' AS amount, r.j->>'currencyisocode' AS currency, r.j->>'createddate' AS created_at,
               r.j->>'closedate' AS expected_close, r.j->>'ownerid' AS owner, r.j->>'accountid' AS account,
               coalesce(r.j->>'product_c', r.j->>'product', r.j->>'product_name') AS product,
               CASE WHEN r.j->>'type' ILIKE '%renewal%' THEN 'renewal'
                    WHEN r.j->>'type' ILIKE 'existing%' OR r.j->>'type' ILIKE '%upgrade%' OR r.j->>'type' ILIKE '%expansion%'
                    THEN 'expansion' ELSE 'new' END AS kind,
               r.j->>'leadsource' AS source, r.j->>'loss_reason_c' AS lost_reason $q$);
    -- a stage event where StageName changes, in the order of CreatedDate
    PERFORM sales_kpi_internal.import_convert('sf_opportunity_history', 'import_stage_changes', $q$
        SELECT r._file, r._record, r.j->>'opportunityid' AS deal, r.j->>'stagename' AS stage,
               r.j->>'createddate' AS entered_at, r.j->>'amount' AS amount, r.j->>'id' AS external_id,
               r.j->>'closedate' AS close_date, r.j->>'forecastcategory' AS forecast_category $q$);
    IF to_regclass('pg_temp.import_stage_changes') IS NOT NULL THEN
        -- keep for the snapshots below; the events are the changes of stage
        CREATE TEMP TABLE _sf_history AS
        SELECT h.*, @extschema@.import_timestamp(h.entered_at, date_formats) AS at FROM pg_temp.import_stage_changes h;
        DELETE FROM pg_temp.import_stage_changes h
         USING (SELECT x._record,
                       lag(x.stage) OVER (PARTITION BY x.deal ORDER BY x.at, x._record) AS prev_stage
                  FROM _sf_history x
                 WHERE x.at IS NOT NULL) p
         WHERE h._record = p._record AND p.prev_stage IS NOT DISTINCT FROM h.stage;
    END IF;
    PERFORM sales_kpi_internal.import_convert('sf_task', 'import_activities', $q$
        SELECT r._file, r._record, r.j->>'id' AS external_id, r.j->>'ownerid' AS rep,
               CASE WHEN EXISTS (SELECT 1 FROM pg_temp.sf_opportunity o WHERE o.id = r.j->>'whatid') THEN r.j->>'whatid' END AS deal,
               CASE WHEN lower(coalesce(r.j->>'tasksubtype', r.j->>'type', '')) IN ('call', 'email', 'meeting', 'demo')
                    THEN lower(coalesce(r.j->>'tasksubtype', r.j->>'type')) ELSE 'other' END AS kind,
               coalesce(nullif(r.j->>'activitydate', ''), r.j->>'createddate') AS occurred_at,
               r.j->>'calldurationinseconds' AS duration_s, NULL::text AS connected $q$);
    IF to_regclass('pg_temp.sf_event') IS NOT NULL THEN
        IF to_regclass('pg_temp.import_activities') IS NULL THEN
            PERFORM sales_kpi_internal.import_columns('import_activities', ARRAY['external_id', 'rep', 'deal', 'kind', 'occurred_at',
                                                                         'duration_s', 'connected']);
        END IF;
        -- events keep their own file and line
        ALTER TABLE pg_temp.import_activities ALTER COLUMN _record DROP IDENTITY IF EXISTS;
        INSERT INTO pg_temp.import_activities (_file, _record, external_id, rep, deal, kind, occurred_at, duration_s, connected)
        SELECT e._file, e._record, j->>'id', j->>'ownerid',
               CASE WHEN EXISTS (SELECT 1 FROM pg_temp.sf_opportunity o WHERE o.id = j->>'whatid') THEN j->>'whatid' END,
               CASE WHEN lower(coalesce(j->>'type', '')) IN ('call', 'email', 'meeting', 'demo') THEN lower(j->>'type')
                    ELSE 'meeting' END,
               coalesce(nullif(j->>'startdatetime', ''), j->>'activitydatetime'),
               (nullif(j->>'durationinminutes', '')::numeric * 60)::text, NULL
          FROM (SELECT s._file, s._record, to_jsonb(s) AS j FROM pg_temp.sf_event s) e;
    END IF;
    v_id := @extschema@.import_generic(crm_source, date_formats, default_pipeline, 'salesforce');
    -- every valid history row of a loaded deal is a snapshot of its
    -- forecast fields (the newest one sets the deal's)
    IF to_regclass('pg_temp._sf_history') IS NOT NULL THEN
        INSERT INTO @extschema@.opportunity_history (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id)
        SELECT DISTINCT ON (o.opportunity_id, h.at)
               o.opportunity_id, h.at, coalesce(@extschema@.import_number(h.amount), o.amount),
               coalesce(@extschema@.import_timestamp(h.close_date, date_formats)::date, o.expected_close),
               CASE lower(btrim(coalesce(h.forecast_category, '')))
                    WHEN 'pipeline' THEN 'pipeline' WHEN 'best case' THEN 'best_case' WHEN 'bestcase' THEN 'best_case'
                    WHEN 'commit' THEN 'commit' WHEN 'forecast' THEN 'commit' WHEN 'closed' THEN 'closed'
                    WHEN 'omitted' THEN 'omitted' END,
               o.owner_id
          FROM _sf_history h
          JOIN @extschema@.opportunity o ON o.crm_source = import_salesforce.crm_source AND o.external_id = btrim(h.deal)
         WHERE h.at IS NOT NULL AND h.at <= now() + @extschema@.future_tolerance()
           AND coalesce(@extschema@.import_number(h.amount), 0) >= 0
         ORDER BY o.opportunity_id, h.at, h._record DESC;
        DROP TABLE _sf_history;
    END IF;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION @extschema@.import_salesforce(text, text[], text) IS
    'Imports the Salesforce staging tables of the session (sf_opportunity, and optionally sf_user, sf_account, sf_opportunity_history, sf_task, sf_event) through the generic import; returns the import_id.';

-- HubSpot deal exports (internal property names as the header, as the CRM
-- API and the "export with internal names" option give them): deals with
-- hs_object_id (or record_id), dealname, pipeline, dealstage, amount,
-- createdate, closedate, hubspot_owner_id, associatedcompanyid, and
-- hs_date_entered_<stage> columns, each the instant the deal entered that
-- stage (its internal name, mapped like any stage name).  Optional files:
-- owners (id, firstname, lastname or name, team), companies (hs_object_id
-- or record_id, name, industry, country) and deal_stage_history (deal_id,
-- stage, entered_at), which replaces the hs_date_entered_ columns.
CREATE FUNCTION @extschema@.import_hubspot(crm_source text, date_formats text[], default_pipeline text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    IF to_regclass('pg_temp.hs_deals') IS NULL THEN
        RAISE EXCEPTION 'no staging table pg_temp.hs_deals in this session'
            USING ERRCODE = 'undefined_table', HINT = 'Load deals.csv with scripts/crm_import.sh --layout hubspot.';
    END IF;
    PERFORM sales_kpi_internal.import_convert('hs_owners', 'import_reps', $q$
        SELECT r._file, r._record, coalesce(r.j->>'id', r.j->>'owner_id') AS external_id,
               coalesce(nullif(r.j->>'name', ''), btrim(concat_ws(' ', r.j->>'firstname', r.j->>'lastname'))) AS name,
               r.j->>'team' AS team, NULL::text AS manager, NULL::text AS role $q$);
    PERFORM sales_kpi_internal.import_convert('hs_companies', 'import_accounts', $q$
        SELECT r._file, r._record, coalesce(r.j->>'hs_object_id', r.j->>'record_id') AS external_id, r.j->>'name' AS name,
               r.j->>'industry' AS industry, r.j->>'type' AS segment, r.j->>'country' AS region $q$);
    PERFORM sales_kpi_internal.import_convert('hs_deals', 'import_deals', $q$
        SELECT r._file, r._record, coalesce(r.j->>'hs_object_id', r.j->>'record_id') AS external_id,
               r.j->>'dealname' AS name, r.j->>'pipeline' AS pipeline, r.j->>'dealstage' AS stage,
               r.j->>'amount' AS amount, r.j->>'deal_currency_code' AS currency, r.j->>'createdate' AS created_at,
               r.j->>'closedate' AS expected_close, r.j->>'hubspot_owner_id' AS owner,
               r.j->>'associatedcompanyid' AS account, r.j->>'product' AS product,
               CASE WHEN r.j->>'dealtype' ILIKE '%renewal%' THEN 'renewal'
                    WHEN r.j->>'dealtype' ILIKE 'existing%' THEN 'expansion' ELSE 'new' END AS kind,
               r.j->>'hs_analytics_source' AS source, r.j->>'closed_lost_reason' AS lost_reason $q$);
    IF to_regclass('pg_temp.hs_deal_stage_history') IS NOT NULL THEN
        PERFORM sales_kpi_internal.import_convert('hs_deal_stage_history', 'import_stage_changes', $q$
            SELECT r._file, r._record, coalesce(r.j->>'deal_id', r.j->>'deal') AS deal, r.j->>'stage' AS stage,
                   r.j->>'entered_at' AS entered_at, NULL::text AS amount, NULL::text AS external_id $q$);
    ELSE
        -- one stage change per filled hs_date_entered_<stage> column
        PERFORM sales_kpi_internal.import_convert('hs_deals', 'import_stage_changes', $q$
            SELECT r._file, r._record, coalesce(r.j->>'hs_object_id', r.j->>'record_id') AS deal,
                   substr(e.key, length('hs_date_entered_') + 1) AS stage, e.value AS entered_at,
                   NULL::text AS amount, NULL::text AS external_id
              FROM jsonb_each_text(r.j) e
             WHERE e.key LIKE 'hs\_date\_entered\_%' AND coalesce(btrim(e.value), '') <> '' $q$);
    END IF;
    RETURN @extschema@.import_generic(crm_source, date_formats, default_pipeline, 'hubspot');
END;
$$;
COMMENT ON FUNCTION @extschema@.import_hubspot(text, text[], text) IS
    'Imports the HubSpot staging tables of the session (hs_deals, and optionally hs_owners, hs_companies, hs_deal_stage_history) through the generic import; returns the import_id.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.check_stage_event_pipeline(stage_event_ids bigint[])
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

CREATE OR REPLACE FUNCTION sales_kpi_internal.check_opportunity_stage(opportunity_ids bigint[])
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

CREATE OR REPLACE FUNCTION sales_kpi_internal.closed_by_owner(p_start timestamptz, p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (owner_id bigint, won bigint, lost bigint, won_amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT o.owner_id, @extschema@.won_count(o.w), @extschema@.lost_count(o.w),
           CASE WHEN @extschema@.won_count(o.w) > 0 THEN @extschema@.won_amount(o.w) END
      FROM (SELECT cp.dimension_key::bigint AS owner_id, @extschema@.rollup(cp.outcomes) AS w
              FROM sales_kpi_internal.closed_partials(ARRAY[p_start, p_end], p_as_of, 'rep', false) cp
             GROUP BY cp.dimension_key) o
$$;
COMMENT ON FUNCTION sales_kpi_internal.closed_by_owner(timestamptz, timestamptz, timestamptz) IS
    'Internal: deals closed in a period as of an instant, totalled per owner at the close: won, lost and won amount in the base currency.';

CREATE OR REPLACE FUNCTION sales_kpi_internal.funnel_stage_ranks()
RETURNS TABLE (stage_id bigint, pipeline_id bigint, name text, "position" integer, kind text,
               rank integer, open_stages integer)
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 30
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.stage_id, s.pipeline_id, s.name, s.position, s.kind,
           CASE WHEN s.kind = 'open'
                THEN (row_number() OVER (PARTITION BY s.pipeline_id, s.kind = 'open' ORDER BY s.position))::integer
           END,
           (count(*) FILTER (WHERE s.kind = 'open') OVER (PARTITION BY s.pipeline_id))::integer
      FROM @extschema@.stage s
$$;
COMMENT ON FUNCTION sales_kpi_internal.funnel_stage_ranks() IS
    'Internal: every stage with its rank among the open stages of its pipeline (1..n, NULL for won and lost) and the number of open stages.';

CREATE OR REPLACE FUNCTION @extschema@.stage_conversion(period_start timestamptz DEFAULT NULL,
                                             period_end timestamptz DEFAULT NULL,
                                             dimension text DEFAULT 'company',
                                             as_of timestamptz DEFAULT now(),
                                             variant text DEFAULT 'all')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, "position" integer, step integer,
               reached bigint, advanced bigint, open_deals bigint, won bigint,
               conversion_rate double precision, cumulative_rate double precision,
               win_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiling these plans takes longer (about 0.9 s) than running them, and
-- their sorts and hashes of a period's deals or events fit in 64 MB
SET jit = off
SET work_mem = '64MB'
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(stage_conversion.as_of, stage_conversion.dimension, stage_conversion.variant);

    WITH per AS MATERIALIZED (
        SELECT * FROM sales_kpi_internal.resolve_period(stage_conversion.period_start, stage_conversion.period_end,
                                                 stage_conversion.as_of)
    ), parts AS MATERIALIZED (
        SELECT fp.dimension_value AS value, fp.pipeline_id, fp.reached, fp.reached_open, fp.reached_won
          FROM per,
               sales_kpi_internal.funnel_partials(ARRAY[per.period_start, per.period_end], stage_conversion.as_of,
                                           stage_conversion.dimension, stage_conversion.variant = 'strict') fp
    ), agg AS (
        SELECT parts.value, parts.pipeline_id,
               @extschema@.rollup(parts.reached) AS f_all,
               @extschema@.rollup(parts.reached_open) AS f_open,
               @extschema@.rollup(parts.reached_won) AS f_won
          FROM parts
         GROUP BY parts.value, parts.pipeline_id
        UNION ALL
        -- by company or pipeline, pipelines without deals still show their stages, with zeros
        SELECT CASE WHEN stage_conversion.dimension = 'company' THEN 'all' ELSE pl.name END,
               pl.pipeline_id, NULL, NULL, NULL
          FROM @extschema@.pipeline pl
         WHERE stage_conversion.dimension IN ('company', 'pipeline')
           AND NOT EXISTS (SELECT 1 FROM parts WHERE parts.pipeline_id = pl.pipeline_id)
    ), counts AS (
        SELECT agg.value, pl.pipeline_id, pl.name AS pipeline_name, s.stage_id, s.name AS stage_name,
               s.position AS stage_position, s.rank, s.open_stages,
               coalesce(@extschema@.reached(agg.f_all, s.rank), 0) AS reached_k,
               CASE WHEN s.rank < s.open_stages THEN coalesce(@extschema@.reached(agg.f_all, s.rank + 1), 0) END
                   AS reached_next,
               coalesce(@extschema@.reached(agg.f_all, 1), 0) AS reached_first,
               coalesce(@extschema@.reached(agg.f_open, s.rank), 0) AS open_reached_k,
               coalesce(@extschema@.reached(agg.f_open, s.rank)
                        - CASE WHEN s.rank < 64 THEN @extschema@.reached(agg.f_open, s.rank + 1) ELSE 0 END, 0)
                   AS open_top_k,
               coalesce(@extschema@.reached(agg.f_open, 1), 0) AS open_first,
               coalesce(@extschema@.reached(agg.f_won, s.rank), 0) AS won_k
          FROM agg
          JOIN @extschema@.pipeline pl ON pl.pipeline_id = agg.pipeline_id
          JOIN sales_kpi_internal.funnel_stage_ranks() s ON s.pipeline_id = agg.pipeline_id AND s.rank IS NOT NULL
    )
    SELECT stage_conversion.dimension, c.value, per.period_start, per.period_end,
           c.pipeline_id, c.pipeline_name, c.stage_id, c.stage_name, c.stage_position, c.rank,
           c.reached_k, c.reached_next, c.open_top_k, c.won_k,
           -- next step; decided leaves out the deals still open with k as their highest stage
           c.reached_next::float8
               / nullif(c.reached_k - CASE WHEN stage_conversion.variant = 'decided' THEN c.open_top_k ELSE 0 END, 0),
           -- first stage to k; decided leaves out the open deals that have not reached k yet
           c.reached_k::float8
               / nullif(c.reached_first - CASE WHEN stage_conversion.variant = 'decided'
                                               THEN c.open_first - c.open_reached_k ELSE 0 END, 0),
           -- stage to win; decided counts only the closed deals that reached k
           c.won_k::float8
               / nullif(c.reached_k - CASE WHEN stage_conversion.variant = 'decided' THEN c.open_reached_k ELSE 0 END, 0)
      FROM counts c, per
     ORDER BY c.value, c.pipeline_name, c.rank;
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.deal_probability(as_of timestamptz DEFAULT now(), lookback interval DEFAULT '365 days',
                                             min_sample integer DEFAULT 20)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, stage_id bigint, owner_id bigint,
               amount numeric, expected_close date, forecast_category text,
               time_in_stage_days double precision, stage_probability numeric,
               milestones_done integer, milestones_required integer, milestone_probability numeric,
               historical_deals bigint, historical_won bigint, historical_probability numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(deal_probability.as_of, 'company', 'stage',
                                                 deal_probability.lookback, deal_probability.min_sample);
    SELECT od.opportunity_id, od.pipeline_id, od.stage_id, od.owner_id, od.amount, od.expected_close,
           od.forecast_category, od.time_in_stage_days, od.stage_probability, od.milestones_done,
           od.milestones_required, od.milestone_probability, od.historical_deals, od.historical_won,
           od.historical_probability
      FROM sales_kpi_internal.pipeline_value_open_deals(deal_probability.as_of, deal_probability.lookback,
                                                 deal_probability.min_sample, true, true) od
     ORDER BY 1;
$$;

CREATE OR REPLACE FUNCTION @extschema@.pipeline_as_of(at timestamptz DEFAULT now(), team text DEFAULT NULL,
                                           open_only boolean DEFAULT false)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               stage_position integer, stage_kind text, is_open boolean, entered_stage_at timestamptz,
               amount numeric, currency character(3), amount_base numeric,
               expected_close date, forecast_category text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_day date := (pipeline_as_of.at AT TIME ZONE @extschema@.reporting_timezone())::date;
    v_reps bigint[];
BEGIN
    IF pipeline_as_of.at IS NULL THEN
        RETURN;
    END IF;
    PERFORM sales_kpi_internal.finite_instant(pipeline_as_of.at, 'at');
    PERFORM sales_kpi_internal.check_team(pipeline_as_of.team);
    IF pipeline_as_of.team IS NULL THEN
        RETURN QUERY
        WITH changed_since AS MATERIALIZED (
            -- the deals with a snapshot after `at` (their row is newer)
            SELECT o.opportunity_id
              FROM @extschema@.opportunity o
             WHERE o.snapshot_at > pipeline_as_of.at
        ), staged AS (
            SELECT o.opportunity_id, o.pipeline_id, o.currency,
                   CASE WHEN o.stage_entered_at <= pipeline_as_of.at THEN o.stage_id
                        ELSE e.stage_id END AS stage_id,
                   CASE WHEN o.stage_entered_at <= pipeline_as_of.at THEN o.stage_entered_at
                        ELSE e.entered_at END AS entered_at,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.amount ELSE h.amount END AS amount,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.expected_close ELSE h.expected_close END
                       AS expected_close,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.forecast_category ELSE h.forecast_category END
                       AS forecast_category,
                   CASE WHEN cs.opportunity_id IS NULL THEN o.owner_id ELSE h.owner_id END AS owner_id
              FROM @extschema@.opportunity o
              -- moved since (its newest event, which the row keeps the time
              -- of, is after the instant): the newest event not after it
              LEFT JOIN LATERAL (
                    SELECT ev.stage_id, ev.entered_at
                      FROM @extschema@.stage_event ev
                     WHERE o.stage_entered_at > pipeline_as_of.at
                       AND ev.opportunity_id = o.opportunity_id AND ev.entered_at <= pipeline_as_of.at
                     ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                     LIMIT 1) e ON true
              -- changed since: the newest snapshot not after the instant
              LEFT JOIN changed_since cs ON cs.opportunity_id = o.opportunity_id
              LEFT JOIN LATERAL (
                    SELECT hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
                      FROM @extschema@.opportunity_history hi
                     WHERE cs.opportunity_id IS NOT NULL
                       AND hi.opportunity_id = o.opportunity_id AND hi.changed_at <= pipeline_as_of.at
                     ORDER BY hi.changed_at DESC
                     LIMIT 1) h ON true
             WHERE o.created_at <= pipeline_as_of.at
               -- open at the instant: open now, or closed after it
               AND (NOT pipeline_as_of.open_only OR o.closed_at IS NULL OR o.closed_at > pipeline_as_of.at)
        )
        SELECT st.opportunity_id, st.pipeline_id, st.owner_id, st.stage_id, s.position, s.kind,
               s.kind = 'open', st.entered_at,
               st.amount, st.currency,
               @extschema@.to_base(st.amount, st.currency, v_day),
               st.expected_close,
               coalesce(st.forecast_category, s.forecast_category)
          FROM staged st
          JOIN @extschema@.stage s ON s.stage_id = st.stage_id
         WHERE NOT pipeline_as_of.open_only OR s.kind = 'open';
    ELSE
        -- the team's reps as a constant, so that the plan can use the owner index
        v_reps := ARRAY(SELECT r.rep_id FROM @extschema@.rep r WHERE r.team = pipeline_as_of.team);
        RETURN QUERY
        WITH candidate AS (
            -- deals some rep of the team owned at or before the instant
            SELECT DISTINCT hi.opportunity_id
              FROM @extschema@.opportunity_history hi
             WHERE hi.owner_id = ANY (v_reps)
               AND hi.changed_at <= pipeline_as_of.at
        )
        SELECT o.opportunity_id, o.pipeline_id, h.owner_id, e.stage_id, s.position, s.kind,
               s.kind = 'open', e.entered_at,
               h.amount, o.currency,
               @extschema@.to_base(h.amount, o.currency, v_day),
               h.expected_close,
               coalesce(h.forecast_category, s.forecast_category)
          FROM candidate c
          CROSS JOIN LATERAL (
                SELECT o.opportunity_id, o.pipeline_id, o.currency
                  FROM @extschema@.opportunity o
                 WHERE o.opportunity_id = c.opportunity_id AND o.created_at <= pipeline_as_of.at
                OFFSET 0) o
          CROSS JOIN LATERAL (
                SELECT hi.amount, hi.expected_close, hi.forecast_category, hi.owner_id
                  FROM @extschema@.opportunity_history hi
                 WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= pipeline_as_of.at
                 ORDER BY hi.changed_at DESC
                 LIMIT 1) h
          CROSS JOIN LATERAL (
                SELECT ev.stage_id, ev.entered_at
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = o.opportunity_id AND ev.entered_at <= pipeline_as_of.at
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id
         WHERE h.owner_id = ANY (v_reps)
           AND (NOT pipeline_as_of.open_only OR s.kind = 'open');
    END IF;
END;
$$;

-- The partials of loss_stage: the deals lost in each period [bounds[i],
-- bounds[i+1]) as of as_of, per dimension key, pipeline, the last open
-- stage the deal entered before its loss (NULL: none), lost_reason and
-- competitor (the deal's current values, which the history does not keep;
-- '(none)' for NULL): how many and their amount in the base
-- currency at the close-date rate.  The stage is one short probe of the
-- deal's events per lost deal (the deal index read backward from the
-- loss to the first open stage), in the same pass that finds the deals.
CREATE FUNCTION sales_kpi_internal.loss_partials(bounds timestamptz[], as_of timestamptz,
                                                 dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, stage_id bigint, lost_reason text, competitor text,
               deals bigint, amount numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- one probe per lost deal: a cache of probe results would never hit
SET enable_memoize = off
-- by rep over a year, nearly a group per lost deal: hashed in memory
SET work_mem = '64MB'
-- parallel workers only where they pay for their start (closed_partials)
SET parallel_setup_cost = 20000
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    RETURN QUERY EXECUTE sales_kpi_internal.partials_sql(
            dim,
            format($sql$
        SELECT c.owner_id, c.pipeline_id, c.dimension_value, c.closed_at, c.amount_base,
               c.pipeline_id AS lost_pipeline_id, le.stage_id AS lost_stage_id,
               coalesce(c.lost_reason, '(none)') AS lost_reason,
               coalesce(c.competitor, '(none)') AS lost_competitor
          FROM (%s) c
          LEFT JOIN LATERAL (
                SELECT e.stage_id
                  FROM @extschema@.stage_event e
                 WHERE e.opportunity_id = c.opportunity_id AND e.entered_at <= c.closed_at
                   AND e.stage_id = ANY ($7)
                 ORDER BY e.entered_at DESC, e.stage_event_id DESC
                 LIMIT 1) le ON true$sql$,
                sales_kpi_internal.closed_deal_query(sales_kpi_internal.row_dimension(dim),
                                                     sales_kpi_internal.moved_since(as_of), 'lost')),
            sales_kpi_internal.period_column(bounds, 'r.closed_at'),
            'count(*) AS deals, sum(r.amount_base) AS amount',
            'sum(l.deals)::bigint, sum(l.amount)',
            ARRAY['lost_pipeline_id', 'lost_stage_id', 'lost_reason', 'lost_competitor'])
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, @extschema@.reporting_timezone(),
              ARRAY(SELECT s.stage_id FROM @extschema@.stage s WHERE s.kind = 'open');
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.loss_partials(timestamptz[], timestamptz, text) IS
    'Internal: per period [bounds[i], bounds[i+1]) and dimension key, the deals lost as of as_of per pipeline, last open stage before the loss, lost_reason and competitor: count and amount in the base currency at the close-date rate.';

CREATE OR REPLACE FUNCTION @extschema@.loss_stage(period_start timestamptz DEFAULT NULL,
                                       period_end timestamptz DEFAULT NULL,
                                       dimension text DEFAULT 'company',
                                       as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, "position" integer, breakdown text,
               lost_reason text, competitor text,
               deals bigint, amount numeric, share_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiling these plans takes longer (about 0.9 s) than running them, and
-- their sorts and hashes of a period's deals or events fit in 64 MB
SET jit = off
SET work_mem = '64MB'
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(loss_stage.as_of, loss_stage.dimension);

    WITH per AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe
          FROM sales_kpi_internal.resolve_period(loss_stage.period_start, loss_stage.period_end, loss_stage.as_of) r
    ), lp AS (
        -- the losses per breakdown value, pipeline, stage, reason and rival
        SELECT lp.dimension_value AS value, lp.pipeline_id, lp.stage_id, lp.lost_reason AS reason,
               lp.competitor AS rival, lp.deals, lp.amount
          FROM per, sales_kpi_internal.loss_partials(ARRAY[per.ps, per.pe], loss_stage.as_of, loss_stage.dimension) lp
    ), g AS (
        -- per pipeline and stage (names joined to the groups below)
        SELECT x.value, x.pipeline_id, x.stage_id,
               CASE WHEN GROUPING(x.reason) = 0 THEN 'lost_reason'
                    WHEN GROUPING(x.rival) = 0 THEN 'competitor' ELSE 'stage' END AS breakdown,
               CASE WHEN GROUPING(x.reason) = 0 THEN x.reason END AS reason,
               CASE WHEN GROUPING(x.rival) = 0 THEN x.rival END AS rival,
               sum(x.deals)::bigint AS n, sum(x.amount) AS amt
          FROM lp x
         GROUP BY GROUPING SETS ((x.value, x.pipeline_id, x.stage_id),
                                 (x.value, x.pipeline_id, x.stage_id, x.reason),
                                 (x.value, x.pipeline_id, x.stage_id, x.rival))
    )
    SELECT loss_stage.dimension, g.value, per.ps, per.pe, g.pipeline_id, pl.name, g.stage_id,
           ls.name, ls.position,
           g.breakdown, g.reason, g.rival, g.n, g.amt,
           g.n::float8 / sum(g.n) FILTER (WHERE g.breakdown = 'stage')
                              OVER (PARTITION BY g.value, g.pipeline_id)
      FROM g
     CROSS JOIN per
      JOIN @extschema@.pipeline pl ON pl.pipeline_id = g.pipeline_id
      LEFT JOIN @extschema@.stage ls ON ls.stage_id = g.stage_id
     ORDER BY g.value, pl.name, ls.position NULLS FIRST, g.breakdown DESC, g.reason, g.rival;
$fn$;

CREATE FUNCTION @extschema@.compact(@extschema@.survival) RETURNS @extschema@.survival
    AS 'MODULE_PATHNAME', 'survival_compact' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.compact(@extschema@.survival) IS
    'The same summary holding only its non-empty age bins (16 bytes each, where the full form takes 6 kB in memory; the full form itself past 390 bins), for summaries passed on between query steps in numbers. Every function reads both forms with the same results; the text and binary forms do not change.';

-- Deals created in [$1, $2) and by $3 as they were created (first snapshot
-- by $3: amount, and owner for the breakdown, else the deal's own), with
-- "reached the second open stage by $3": entered one of the stages $6
-- (rank 2 and up of a pipeline with two open stages or more, and won), for
-- deals of the pipelines $7 (NULL for the others): a deal in one of those
-- stages since before $3 did, the others cost one index probe, stopping
-- at the first entry.  The first snapshot is one probe per deal.  $4 is
-- the dimension, $5 the period bounds, $8 the reporting time zone (the
-- creation date's rate).
CREATE FUNCTION sales_kpi_internal.creation_deal_query(dimension text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $query$
    SELECT format($sql$
SELECT cr.opportunity_id, cr.pipeline_id, cr.owner_id, cr.created_at,
       @extschema@.to_base(cr.amount, cr.currency, (cr.created_at AT TIME ZONE $8)::date) AS amount_base,
       cr.reached_second,
       sales_kpi_internal.dimension_key($4, cr.pipeline_id, cr.owner_id, v.value) AS dimension_key,
       v.value AS dimension_value
  FROM (SELECT o.opportunity_id, o.pipeline_id, o.account_id, o.source, o.competitor, o.kind, o.product,
               o.created_at, o.currency,
               coalesce(h.amount, o.amount) AS amount, coalesce(h.owner_id, o.owner_id) AS owner_id,
               CASE WHEN o.pipeline_id = ANY($7) THEN r2.hit IS NOT NULL END AS reached_second
          FROM @extschema@.opportunity o
          -- a deal in one of those stages since before $3 entered it: no probe
          LEFT JOIN LATERAL (
                SELECT 1 AS hit
                 WHERE o.stage_id = ANY($6) AND o.stage_entered_at <= $3
                UNION ALL
                (SELECT 1
                   FROM @extschema@.stage_event e
                  WHERE NOT (o.stage_id = ANY($6) AND o.stage_entered_at <= $3)
                    AND e.opportunity_id = o.opportunity_id AND e.entered_at <= $3 AND e.stage_id = ANY($6)
                  LIMIT 1)) r2 ON o.pipeline_id = ANY($7)
          LEFT JOIN LATERAL (
                -- the deal as created: its first snapshot (the one the history trigger takes at created_at)
                SELECT hi.amount, hi.owner_id
                  FROM @extschema@.opportunity_history hi
                 WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= $3
                 ORDER BY hi.changed_at
                 LIMIT 1) h ON true
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.created_at <= $3) cr
  %s
 CROSS JOIN LATERAL (SELECT %s AS value) v
$sql$, d.joins, d.value)
      FROM sales_kpi_internal.dimension_sql(dimension, 'cr', 'cr.owner_id') d
$query$;
COMMENT ON FUNCTION sales_kpi_internal.creation_deal_query(text) IS
    'Internal: the query of the deals created in [$1, $2) and by $3 as created (first snapshot: amount in the base currency at the creation-date rate, owner credited), whether each reached the second open stage by $3, and their breakdown for a dimension ($4), run by creation_partials().';

CREATE FUNCTION sales_kpi_internal.creation_partials(bounds timestamptz[], as_of timestamptz,
                                              dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opps bigint, amount numeric, reached_second @extschema@.winloss)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 1000
SET search_path = pg_catalog, pg_temp
SET jit = off
-- one index probe per deal and history: a cache of probe results would never hit
SET enable_memoize = off
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    second_stages bigint[];
    two_stage_pipelines bigint[];
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    -- only pipelines with two open stages or more have a stage 1 -> 2 step
    SELECT ARRAY(SELECT st.stage_id FROM sales_kpi_internal.funnel_stage_ranks() st
                  WHERE st.open_stages >= 2 AND (st.rank >= 2 OR st.kind = 'won')),
           ARRAY(SELECT DISTINCT st.pipeline_id FROM sales_kpi_internal.funnel_stage_ranks() st WHERE st.open_stages >= 2)
      INTO second_stages, two_stage_pipelines;
    RETURN QUERY EXECUTE format($sql$
        SELECT cd.dimension_key, cd.dimension_value, $5[%2$s], $5[%2$s + 1], count(*), sum(cd.amount_base),
               @extschema@.winloss_agg(cd.reached_second)
          FROM (%3$s) cd
         GROUP BY %1$s, cd.dimension_key, cd.dimension_value, %2$s$sql$,
        sales_kpi_internal.key_column(dim, 'cd'),
        sales_kpi_internal.period_column(bounds, 'cd.created_at'),
        sales_kpi_internal.creation_deal_query(dim))
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, second_stages, two_stage_pipelines,
              @extschema@.reporting_timezone();
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.creation_partials(timestamptz[], timestamptz, text) IS
    'Internal: per creation period [bounds[i], bounds[i+1]) and dimension key, the deals created then (by as_of) as created: count, amount in the base currency at the creation-date rate (rep credited: the owner at creation), and a winloss summary of "reached the second open stage by as_of" over the deals of pipelines with two open stages or more.';

-- The partials of funnel_rates: per period [bounds[i], bounds[i+1]) and
-- dimension key, as of as_of: the leads created in the period, those
-- converted into a deal by as_of and those whose deal qualified by then;
-- the deals created in it and those qualified by as_of; the qualified
-- deals closed in it (won and lost, a winloss summary); the deals won in
-- it.  Qualified: entered by as_of a stage from its pipeline's
-- qualified_position on, or a won stage (a won deal did); one index probe
-- of the deal's events, stopping at the first such entry, for each deal
-- that needs it.  The rep credited is the lead's SDR, the owner at as_of
-- of a created deal, the owner at the close of a closed one.  Leads have a
-- source, an SDR and an account, no pipeline, competitor, kind or product:
-- for those dimensions the lead counts are 0 (funnel_rates shows NULL).
--
-- One query: the three row sources (closed_deal_query, created_deal_query
-- and the leads) are text in it, so that it is planned with the actual
-- dates and its branches run in parallel workers.
CREATE FUNCTION sales_kpi_internal.qualification_partials(bounds timestamptz[], as_of timestamptz,
                                                          dimension text DEFAULT 'company')
RETURNS TABLE (dimension_key text, dimension_value text, period_start timestamptz, period_end timestamptz,
               leads bigint, converted_leads bigint, qualified_leads bigint, opps bigint, qualified_opps bigint,
               qops @extschema@.winloss, deals_won bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100
SET search_path = pg_catalog, pg_temp
SET jit = off
-- one index probe per deal: a cache of probe results would never hit
SET enable_memoize = off
-- unlike closed_partials, index scans stay on: the probes read the deal
-- index of stage_event alone, and a range of closes read by index costs
-- less than those probes as bitmap heap scans
AS $$
DECLARE
    dim text := sales_kpi_internal.outcome_dimension(dimension);
    row_dim text := sales_kpi_internal.row_dimension(dim);
    lead_dims boolean := dim IN ('company', 'rep', 'team', 'source', 'industry', 'segment', 'region');
    lead_label record;
    qualifying bigint[];
    rows text;
BEGIN
    PERFORM sales_kpi_internal.required_instant(as_of, 'as_of');
    PERFORM sales_kpi_internal.check_bounds(bounds);
    SELECT ARRAY(SELECT s.stage_id
                   FROM @extschema@.stage s
                   JOIN @extschema@.pipeline pl ON pl.pipeline_id = s.pipeline_id
                  WHERE s.kind = 'won' OR (s.kind = 'open' AND s.position >= pl.qualified_position))
      INTO qualifying;
    -- rows: owner and pipeline ids (for rep, team and pipeline), the
    -- breakdown value (for the others), the instant that places the row in
    -- a period, what it is (1 closed deal, 2 created deal, 3 lead), whether
    -- it qualified when that is known without the history (a won deal, a
    -- deal in a qualifying stage since before as_of, a lead not converted
    -- by as_of), and the deal whose history tells otherwise
    rows := format($sql$
        SELECT c.owner_id, c.pipeline_id, c.dimension_value, c.closed_at AS at, 1 AS what,
               c.outcome = 'won' AS won, false AS converted,
               CASE WHEN c.outcome = 'won' THEN true END AS known, c.opportunity_id AS deal_id
          FROM (%1$s) c
        UNION ALL
        SELECT n.owner_id, n.pipeline_id, n.dimension_value, n.created_at, 2, false, false,
               CASE WHEN n.stage_id = ANY ($7) AND n.stage_entered_at <= $3 THEN true END, n.opportunity_id
          FROM (%2$s) n$sql$,
        sales_kpi_internal.closed_deal_query(row_dim, sales_kpi_internal.moved_since(as_of)),
        sales_kpi_internal.created_deal_query(row_dim, false, true));
    IF lead_dims THEN
        lead_label := sales_kpi_internal.dimension_sql(row_dim, 'l', 'l.rep_id');
        rows := rows || format($sql$
        UNION ALL
        SELECT l.rep_id, NULL::bigint, %1$s, l.created_at, 3, false, coalesce(l.converted_at <= $3, false),
               CASE WHEN l.converted_at <= $3 THEN NULL ELSE false END, l.opportunity_id
          FROM @extschema@.lead l
          %2$s
         WHERE l.created_at >= $1 AND l.created_at < $2 AND l.created_at <= $3$sql$,
            lead_label.value, lead_label.joins);
    END IF;
    -- whether the deal entered a qualifying stage by as_of, stopping at the
    -- first such entry, asked only where it is not known (coalesce stops
    -- at the first value): one expression over all three kinds of rows, and
    -- the outer OFFSET 0 keeps it a column computed once per row.  The
    -- inner OFFSET 0 keeps it a probe of the deal's events: given enough
    -- work_mem, the planner would rather read every qualifying event of
    -- the history into a hash (3M at 1M deals), which costs what the whole
    -- history costs, 2-4 times the probes of a quarter's or a year's deals
    -- (PostgreSQL never hashes an EXISTS whose subquery has an OFFSET).
    rows := format($sql$
        SELECT u.owner_id, u.pipeline_id, u.dimension_value, u.at, u.what, u.won, u.converted,
               coalesce(u.known,
                        EXISTS (SELECT FROM @extschema@.stage_event e
                                 WHERE e.opportunity_id = u.deal_id AND e.entered_at <= $3
                                   AND e.stage_id = ANY ($7)
                                OFFSET 0)) AS qualified
          FROM (%s) u
        OFFSET 0$sql$, rows);
    RETURN QUERY EXECUTE sales_kpi_internal.partials_sql(
            dim, rows,
            sales_kpi_internal.period_column(bounds, 'r.at'),
            $agg$count(*) FILTER (WHERE r.what = 3) AS leads, count(*) FILTER (WHERE r.converted) AS converted_leads,
                 count(*) FILTER (WHERE r.what = 3 AND r.qualified) AS qualified_leads,
                 count(*) FILTER (WHERE r.what = 2) AS opps,
                 count(*) FILTER (WHERE r.what = 2 AND r.qualified) AS qualified_opps,
                 @extschema@.winloss_agg(CASE WHEN r.what = 1 AND r.qualified THEN r.won END) AS qops,
                 count(*) FILTER (WHERE r.won) AS deals_won$agg$,
            $agg$sum(l.leads)::bigint, sum(l.converted_leads)::bigint, sum(l.qualified_leads)::bigint,
                 sum(l.opps)::bigint, sum(l.qualified_opps)::bigint, @extschema@.rollup(l.qops),
                 sum(l.deals_won)::bigint$agg$)
        USING bounds[1], bounds[cardinality(bounds)], as_of, dim, bounds, @extschema@.reporting_timezone(),
              qualifying;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.qualification_partials(timestamptz[], timestamptz, text) IS
    'Internal: per period [bounds[i], bounds[i+1]) and dimension key, as of as_of: leads created, converted and converted into a qualified deal; deals created and qualified; qualified deals closed (winloss summary); deals won.';

CREATE OR REPLACE FUNCTION @extschema@.funnel_rates(period_start timestamptz DEFAULT NULL,
                                         period_end timestamptz DEFAULT NULL,
                                         dimension text DEFAULT 'company',
                                         as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               leads bigint, converted_leads bigint, lead_to_opp_rate double precision,
               qualified_leads bigint, lead_to_qop_rate double precision,
               opps bigint, qualified_opps bigint, opp_to_qop_rate double precision,
               qops_won bigint, qops_lost bigint, qop_win_rate double precision,
               qop_win_rate_lower double precision, qop_win_rate_upper double precision,
               deals_won bigint, qops_per_win double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(funnel_rates.as_of, funnel_rates.dimension);

    WITH per AS MATERIALIZED (
        SELECT r.period_start AS ps, r.period_end AS pe,
               -- leads have a source, an SDR and an account, but no pipeline, competitor or deal kind
               funnel_rates.dimension IN ('company', 'rep', 'team', 'source', 'industry', 'segment', 'region')
                   AS lead_dims
          FROM sales_kpi_internal.resolve_period(funnel_rates.period_start, funnel_rates.period_end, funnel_rates.as_of) r
    ), grouped AS MATERIALIZED (
        SELECT qp.dimension_value AS value,
               sum(qp.leads) AS leads, sum(qp.converted_leads) AS converted, sum(qp.qualified_leads) AS qualified_leads,
               sum(qp.opps) AS opps, sum(qp.qualified_opps) AS qualified_opps,
               @extschema@.rollup(qp.qops) AS w, sum(qp.deals_won) AS won
          FROM per, sales_kpi_internal.qualification_partials(ARRAY[per.ps, per.pe], funnel_rates.as_of,
                                                              funnel_rates.dimension) qp
         GROUP BY qp.dimension_value
    ), agg AS (
        SELECT * FROM grouped
        UNION ALL
        SELECT 'all', 0, 0, 0, 0, 0, NULL, 0
         WHERE funnel_rates.dimension = 'company' AND NOT EXISTS (SELECT 1 FROM grouped)
    )
    SELECT funnel_rates.dimension, g.value, per.ps, per.pe,
           CASE WHEN per.lead_dims THEN g.leads::bigint END,
           CASE WHEN per.lead_dims THEN g.converted::bigint END,
           CASE WHEN per.lead_dims THEN g.converted::float8 / nullif(g.leads, 0) END,
           CASE WHEN per.lead_dims THEN g.qualified_leads::bigint END,
           CASE WHEN per.lead_dims THEN g.qualified_leads::float8 / nullif(g.leads, 0) END,
           g.opps::bigint, g.qualified_opps::bigint, g.qualified_opps::float8 / nullif(g.opps, 0),
           coalesce(@extschema@.won_count(g.w), 0), coalesce(@extschema@.lost_count(g.w), 0),
           @extschema@.win_rate(g.w), @extschema@.wilson_lower(g.w), @extschema@.wilson_upper(g.w),
           g.won::bigint,
           (coalesce(@extschema@.won_count(g.w), 0) + coalesce(@extschema@.lost_count(g.w), 0))::float8
               / nullif(g.won, 0)
      FROM agg g, per
     ORDER BY g.value;
$fn$;
COMMENT ON FUNCTION @extschema@.funnel_rates(timestamptz, timestamptz, text, timestamptz) IS
    'Lead to opportunity, opportunity to qualified opportunity (Qop) and lead to Qop rates of the leads and deals created in the period, the win rate of the Qops closed in it with a Wilson interval, and Qops closed per deal won.';

CREATE OR REPLACE FUNCTION @extschema@.pipeline_creation(from_at timestamptz DEFAULT NULL,
                                              to_at timestamptz DEFAULT NULL,
                                              grain text DEFAULT 'week',
                                              dimension text DEFAULT 'company',
                                              as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opps bigint, amount numeric, two_stage_opps bigint, reached_second bigint,
               stage_one_to_two_rate double precision,
               stage_one_to_two_lower double precision, stage_one_to_two_upper double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(pipeline_creation.as_of, pipeline_creation.dimension,
                                         grain => pipeline_creation.grain);

    WITH per AS MATERIALIZED (
        SELECT r.period_start AS p_start, r.period_end AS p_end
          FROM sales_kpi_internal.resolve_series(from_at, to_at, grain, as_of) r
    ), b AS (
        -- the series' periods are consecutive: their starts and the last end
        SELECT array_agg(per.p_start ORDER BY per.p_start) || max(per.p_end) AS bounds FROM per
    ), agg AS (
        SELECT cp.dimension_value AS value, cp.period_start AS p_start, sum(cp.opps) AS n,
               sum(cp.amount) AS amt, @extschema@.rollup(cp.reached_second) AS w
          FROM b, sales_kpi_internal.creation_partials(b.bounds, pipeline_creation.as_of, pipeline_creation.dimension) cp
         GROUP BY 1, 2
    ), vals AS (
        SELECT DISTINCT agg.value FROM agg
        UNION
        SELECT 'all' WHERE pipeline_creation.dimension = 'company'
    )
    SELECT pipeline_creation.dimension, v.value, per.p_start, per.p_end,
           coalesce(a.n, 0)::bigint, coalesce(a.amt, 0),
           coalesce(@extschema@.won_count(a.w) + @extschema@.lost_count(a.w), 0),
           coalesce(@extschema@.won_count(a.w), 0),
           @extschema@.win_rate(a.w), @extschema@.wilson_lower(a.w), @extschema@.wilson_upper(a.w)
      FROM vals v
     CROSS JOIN per
      LEFT JOIN agg a ON a.value = v.value AND a.p_start = per.p_start
     ORDER BY v.value, per.p_start;
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.conversion_alerts(as_of timestamptz DEFAULT now(),
                                              dimension text DEFAULT 'company',
                                              weeks integer DEFAULT 12,
                                              horizon interval DEFAULT '30 days')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, "position" integer, next_stage text,
               entered bigint, converted bigint, conversion_rate double precision,
               baseline_entered bigint, baseline_rate double precision,
               control_lower double precision, control_upper double precision, alert text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- JIT compiling these plans takes longer (about 0.9 s) than running them, and
-- their sorts and hashes of a period's deals or events fit in 64 MB
SET jit = off
SET work_mem = '64MB'
-- weeks of stage events: a bitmap scan of the time range beats an index scan
SET enable_indexscan = off
AS $fn$
    SELECT sales_kpi_internal.funnel_check_args(conversion_alerts.as_of, conversion_alerts.dimension,
                                         weeks => conversion_alerts.weeks, horizon => conversion_alerts.horizon);

    WITH tz AS MATERIALIZED (
        SELECT @extschema@.reporting_timezone() AS tz,
               -- local end of the latest week whose horizon has passed by as_of
               date_trunc('week', (conversion_alerts.as_of - conversion_alerts.horizon)
                                  AT TIME ZONE @extschema@.reporting_timezone()) AS latest_end_local
    ), b AS MATERIALIZED (
        SELECT tz.tz,
               (tz.latest_end_local - interval '7 days') AT TIME ZONE tz.tz AS latest_start,
               tz.latest_end_local AT TIME ZONE tz.tz AS latest_end,
               (tz.latest_end_local - (conversion_alerts.weeks + 1) * interval '7 days') AT TIME ZONE tz.tz
                   AS trail_start,
               (tz.latest_end_local AT TIME ZONE tz.tz) + conversion_alerts.horizon AS window_end
          FROM tz
    ), st AS (
        SELECT * FROM sales_kpi_internal.funnel_stage_ranks()
    ), codes AS MATERIALIZED (
        -- each stage's rank and its order for "later": won above every open stage, lost below all
        SELECT st.stage_id, st.rank,
               CASE st.kind WHEN 'open' THEN st.rank WHEN 'won' THEN st.open_stages + 1 ELSE 0 END AS code
          FROM st
    ), ev AS (
        SELECT e.opportunity_id, e.entered_at, e.stage_id, c.rank, c.code
          FROM b
          JOIN @extschema@.stage_event e ON e.entered_at >= b.trail_start AND e.entered_at < b.window_end
          JOIN codes c ON c.stage_id = e.stage_id
    ), entries AS NOT MATERIALIZED (
        -- every entry into an open stage in the trailing or latest weeks, and
        -- whether the deal entered a later open stage or won within horizon.
        -- Not stored: the company breakdown counts the entries as they come
        -- (the deals' breakdown, which reads them once more, is not needed then)
        SELECT a.opportunity_id, a.stage_id, a.entered_at >= b.latest_start AS is_latest,
               a.best_within > a.rank AS conv
          FROM (SELECT ev.*,
                       max(ev.code) OVER (PARTITION BY ev.opportunity_id ORDER BY ev.entered_at
                                          RANGE BETWEEN CURRENT ROW AND conversion_alerts.horizon FOLLOWING)
                           AS best_within
                  FROM ev) a, b
         WHERE a.rank IS NOT NULL AND a.entered_at < b.latest_end
    ), bd AS (
        -- the rep credited is the owner at as_of
        SELECT bd.opportunity_id, bd.dimension_value
          FROM sales_kpi_internal.deal_breakdowns(
                   CASE WHEN conversion_alerts.dimension = 'company' THEN '{}'
                        ELSE ARRAY(SELECT DISTINCT en.opportunity_id FROM entries en) END,
                   conversion_alerts.as_of, conversion_alerts.dimension) bd
    ), dv AS (
        SELECT 'all' AS value, en.stage_id, en.is_latest, en.conv
          FROM entries en
         WHERE conversion_alerts.dimension = 'company'
        UNION ALL
        SELECT bd.dimension_value, en.stage_id, en.is_latest, en.conv
          FROM entries en
          JOIN bd ON bd.opportunity_id = en.opportunity_id
         WHERE conversion_alerts.dimension <> 'company'
    ), agg AS (
        -- per stage first, named after: a few dozen groups
        SELECT dv.value, dv.stage_id,
               count(*) FILTER (WHERE dv.is_latest) AS n,
               count(*) FILTER (WHERE dv.is_latest AND dv.conv) AS x,
               count(*) FILTER (WHERE NOT dv.is_latest) AS bn,
               count(*) FILTER (WHERE NOT dv.is_latest AND dv.conv) AS bx
          FROM dv
         GROUP BY 1, 2
    ), lim AS (
        SELECT agg.*, agg.x::float8 / nullif(agg.n, 0) AS p,
               agg.bx::float8 / nullif(agg.bn, 0) AS pbar
          FROM agg
    ), bands AS (
        SELECT lim.*,
               greatest(0, lim.pbar - 3 * sqrt(lim.pbar * (1 - lim.pbar) / nullif(lim.n, 0))) AS lcl,
               least(1, lim.pbar + 3 * sqrt(lim.pbar * (1 - lim.pbar) / nullif(lim.n, 0))) AS ucl
          FROM lim
    )
    SELECT conversion_alerts.dimension, x.value, b.latest_start, b.latest_end,
           pl.pipeline_id, pl.name, s.stage_id, s.name, s.position, coalesce(nx.name, 'won'),
           x.n, x.x, x.p, x.bn, x.pbar, x.lcl, x.ucl,
           CASE WHEN x.p > x.ucl THEN 'above' WHEN x.p < x.lcl THEN 'below' END
      FROM bands x
     CROSS JOIN b
      JOIN st s ON s.stage_id = x.stage_id
      JOIN @extschema@.pipeline pl ON pl.pipeline_id = s.pipeline_id
      LEFT JOIN st nx ON nx.pipeline_id = s.pipeline_id AND nx.rank = s.rank + 1
     ORDER BY x.value, pl.name, s.rank;
$fn$;

-- the per-deal breakdown look-up of 0.1.0: the KPIs read the breakdown in
-- their own pass now (created_deal_rows, deal_breakdowns, closed_deal_rows)
DROP FUNCTION @extschema@.deal_dimension(bigint[], text, timestamptz, bigint[]);

CREATE OR REPLACE FUNCTION sales_kpi_internal.check_health_rep_args(dimension text, as_of timestamptz, grain text DEFAULT NULL,
                                                  from_at timestamptz DEFAULT NULL,
                                                  to_at timestamptz DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- as_of, dimension and grain as every KPI checks them
    PERFORM sales_kpi_internal.check_kpi_args(as_of, dimension, coalesce(grain, 'month'));
    IF to_at <= from_at THEN
        RAISE EXCEPTION 'argument "to_at" (%) must be later than "from_at" (%)', to_at, from_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN true;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.forecast(period_start timestamptz DEFAULT NULL,
                                     period_end timestamptz DEFAULT NULL,
                                     dimension text DEFAULT 'company',
                                     as_of timestamptz DEFAULT now(),
                                     lookback interval DEFAULT '365 days',
                                     min_sample integer DEFAULT 20)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               bookings numeric, open_deals bigint, open_amount numeric,
               stage_forecast numeric, milestone_forecast numeric, historical_forecast numeric,
               forecast_lower numeric, forecast_upper numeric,
               closed numeric, commit numeric, best_case numeric, pipeline numeric, omitted numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(forecast.as_of, forecast.dimension, 'stage',
                                                 forecast.lookback, forecast.min_sample);
    SELECT forecast.dimension, x.dimension_value, x.period_start, x.period_end,
           x.bookings, x.open_deals, x.open_amount,
           x.bookings + x.stage_weighted, x.bookings + x.milestone_weighted, x.bookings + x.historical_weighted,
           x.bookings + least(x.stage_weighted, x.historical_weighted),
           x.bookings + greatest(x.stage_weighted, x.historical_weighted),
           c.closed, c.closed + x.commit_amount, c.closed + x.commit_amount + x.best_case_amount,
           c.closed + x.commit_amount + x.best_case_amount + x.pipeline_amount,
           x.omitted_amount
      FROM sales_kpi_internal.pipeline_value_period_parts(forecast.period_start, forecast.period_end,
                                                   forecast.dimension, forecast.as_of,
                                                   forecast.lookback, forecast.min_sample, true, true) x
      CROSS JOIN LATERAL (SELECT x.bookings + x.closed_amount AS closed) c
     ORDER BY x.dimension_value;
$$;

CREATE OR REPLACE FUNCTION @extschema@.forecast_accuracy(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                              grain text DEFAULT 'quarter', dimension text DEFAULT 'rep',
                                              as_of timestamptz DEFAULT now(), cutoff interval DEFAULT '0')
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               period_complete boolean, commit_amount numeric, commit_submitted_at timestamptz,
               bookings numeric, accuracy double precision, bias double precision,
               mean_accuracy double precision, mean_bias double precision, periods_measured bigint,
               calibrated_commit numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM sales_kpi_internal.forecast_accuracy_rows(from_at, to_at, grain, dimension, as_of, cutoff)
$$;

CREATE OR REPLACE FUNCTION sales_kpi_internal.funnel_check_args(as_of timestamptz, dimension text, variant text DEFAULT 'all',
                                              grain text DEFAULT 'week', weeks integer DEFAULT 1,
                                              horizon interval DEFAULT '1 day')
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sales_kpi_internal.check_kpi_args(as_of, dimension, grain);
    IF variant IS NULL OR variant NOT IN ('all', 'decided', 'strict') THEN
        RAISE EXCEPTION 'argument "variant" must be all, decided or strict, got "%"', variant
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF weeks IS NULL OR weeks < 1 THEN
        RAISE EXCEPTION 'argument "weeks" must be at least 1, got "%"', weeks
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon IS NULL OR horizon <= interval '0' THEN
        RAISE EXCEPTION 'argument "horizon" must be a positive interval, got "%"', horizon
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.gate_violations(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                            dimension text DEFAULT 'company', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, stage_event_id bigint, pipeline_id bigint, gate_mode text,
               from_stage text, to_stage text, moved_at timestamptz, rep_id bigint,
               missing_milestones text, missing_count bigint, completed_late_count bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT dimension, t.* FROM sales_kpi_internal.gate_violation_rows(from_at, to_at, dimension, as_of) t
$$;

CREATE OR REPLACE FUNCTION @extschema@.period_end(at timestamptz, grain text DEFAULT 'quarter')
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (sales_kpi_internal.local_period_start(at AT TIME ZONE @extschema@.reporting_timezone(), grain)
            + sales_kpi_internal.grain_length(grain))
           AT TIME ZONE @extschema@.reporting_timezone()
$$;

CREATE OR REPLACE FUNCTION @extschema@.period_start(at timestamptz, grain text DEFAULT 'quarter')
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sales_kpi_internal.local_period_start(at AT TIME ZONE @extschema@.reporting_timezone(), grain)
           AT TIME ZONE @extschema@.reporting_timezone()
$$;

CREATE OR REPLACE FUNCTION @extschema@.pipeline_coverage(period_start timestamptz DEFAULT NULL,
                                              period_end timestamptz DEFAULT NULL,
                                              dimension text DEFAULT 'company',
                                              as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               pipeline_deals bigint, pipeline_amount numeric, quota numeric, bookings numeric,
               remaining_quota numeric, coverage double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(pipeline_coverage.as_of, pipeline_coverage.dimension);
    SELECT pipeline_coverage.dimension, x.dimension_value, x.period_start, x.period_end,
           x.open_deals, x.open_amount, x.quota, x.bookings, x.quota - x.bookings,
           CASE WHEN x.quota - x.bookings > 0
                THEN (x.open_amount / (x.quota - x.bookings))::double precision END
      FROM sales_kpi_internal.pipeline_value_period_parts(pipeline_coverage.period_start, pipeline_coverage.period_end,
                                                   pipeline_coverage.dimension, pipeline_coverage.as_of,
                                                   '0 days', 1, false, false) x
     ORDER BY x.dimension_value;
$$;

CREATE OR REPLACE FUNCTION @extschema@.pipeline_flow(from_at timestamptz DEFAULT NULL,
                                          to_at timestamptz DEFAULT NULL,
                                          mode text DEFAULT 'primary',
                                          dimension text DEFAULT 'company',
                                          team text DEFAULT NULL,
                                          close_before date DEFAULT NULL)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               step integer, category text, deals bigint, deal_change bigint, amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH t AS MATERIALIZED (
        SELECT r.dimension_value, r.category, r.deals, r.deal_change, r.amount
          FROM sales_kpi_internal.pipeline_flow_rows(from_at, to_at, mode, dimension, team, close_before, true) r
    ), a AS (
        SELECT * FROM sales_kpi_internal.pipeline_flow_args(from_at, to_at, mode, dimension, close_before)
    ), dv AS (
        SELECT DISTINCT t.dimension_value FROM t
        UNION
        SELECT 'all' WHERE pipeline_flow.dimension = 'company'
    ), cat(step, category) AS (
        VALUES (1, 'start'), (2, 'created'), (3, 'reopened'), (4, 'pulled_in'), (5, 'moved_in'),
               (6, 'amount_up'), (7, 'amount_down'), (8, 'advanced'), (9, 'regressed'), (10, 'unchanged'),
               (11, 'pushed'), (12, 'won'), (13, 'lost'), (14, 'moved_out'), (15, 'end')
    )
    SELECT pipeline_flow.dimension, dv.dimension_value, a.from_at_r, a.to_at_r, cat.step, cat.category,
           coalesce(t.deals, 0),
           CASE WHEN cat.category NOT IN ('start', 'end') THEN coalesce(t.deal_change, 0) END,
           coalesce(t.amount, 0)
      FROM a CROSS JOIN dv CROSS JOIN cat
      LEFT JOIN t ON t.dimension_value = dv.dimension_value AND t.category = cat.category
     ORDER BY dv.dimension_value, cat.step
$$;

CREATE OR REPLACE FUNCTION @extschema@.pipeline_flow_deals(from_at timestamptz DEFAULT NULL,
                                                to_at timestamptz DEFAULT NULL,
                                                mode text DEFAULT 'primary',
                                                dimension text DEFAULT 'company',
                                                team text DEFAULT NULL,
                                                close_before date DEFAULT NULL)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               opportunity_id bigint, category text, deal_change integer, amount numeric,
               stage_kind_start text, stage_position_start integer, amount_start numeric,
               expected_close_start date, owner_id_start bigint,
               stage_kind_end text, stage_position_end integer, amount_end numeric,
               expected_close_end date, owner_id_end bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT r.dimension, r.dimension_value, r.period_start, r.period_end, r.opportunity_id, r.category,
           r.deal_change::integer, r.amount, r.stage_kind_start, r.stage_position_start, r.amount_start,
           r.expected_close_start, r.owner_id_start, r.stage_kind_end, r.stage_position_end, r.amount_end,
           r.expected_close_end, r.owner_id_end
      FROM sales_kpi_internal.pipeline_flow_rows(from_at, to_at, mode, dimension, team, close_before, false) r
$$;

CREATE OR REPLACE FUNCTION sales_kpi_internal.pipeline_value_check_args(as_of timestamptz, dimension text,
                                                      weighting text DEFAULT 'stage',
                                                      lookback interval DEFAULT '0 days',
                                                      min_sample integer DEFAULT 1)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    -- as_of, dimension and lookback as every KPI checks them
    PERFORM sales_kpi_internal.check_kpi_args(as_of, dimension, lookback => lookback);
    IF weighting IS NULL OR weighting NOT IN ('stage', 'milestone', 'historical') THEN
        RAISE EXCEPTION 'argument "weighting" must be stage, milestone or historical, got "%"', weighting
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_sample IS NULL OR min_sample < 1 THEN
        RAISE EXCEPTION 'argument "min_sample" must be at least 1, got "%"', min_sample
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.quota_attainment(period_start timestamptz DEFAULT NULL, period_end timestamptz DEFAULT NULL,
                                             dimension text DEFAULT 'rep', as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               reps bigint, reps_with_quota bigint, bookings numeric, quota numeric,
               attainment double precision, reps_at_quota bigint, at_quota_rate double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH p AS (
        SELECT r.period_start, r.period_end,
               sales_kpi_internal.rep_dimension(quota_attainment.dimension,
                                          'Quotas are set per rep, so attainment breaks down by rep or team only.') AS dim
          FROM sales_kpi_internal.resolve_period(quota_attainment.period_start, quota_attainment.period_end,
                                          quota_attainment.as_of) r
    ), b AS (
        -- the won deals' partials per owner at the close (bookings)
        SELECT cp.dimension_key::bigint AS rep_id, @extschema@.won_amount(@extschema@.rollup(cp.outcomes)) AS bookings
          FROM p
         CROSS JOIN sales_kpi_internal.closed_partials(ARRAY[p.period_start, p.period_end], quota_attainment.as_of,
                                                       'rep', with_cycles => false, won_only => true) cp
         WHERE cp.dimension_key IS NOT NULL
         GROUP BY cp.dimension_key
    ), q AS (
        SELECT qp.rep_id, qp.quota
          FROM p CROSS JOIN @extschema@.quota_in_period(p.period_start, p.period_end) qp
    ), per_rep AS (
        SELECT r.rep_id,
               CASE quota_attainment.dimension WHEN 'rep' THEN r.name
                                               WHEN 'team' THEN coalesce(r.team, '(none)')
                                               ELSE 'all' END AS value,
               coalesce(b.bookings, 0) AS bookings,
               q.quota,
               q.quota > 0 AS has_quota
          FROM b
          FULL JOIN q ON q.rep_id = b.rep_id
          JOIN @extschema@.rep r ON r.rep_id = coalesce(b.rep_id, q.rep_id)
    ), g AS (
        SELECT pr.value,
               count(*) AS reps,
               count(*) FILTER (WHERE pr.has_quota) AS reps_with_quota,
               sum(pr.bookings) AS bookings,
               sum(pr.quota) AS quota,
               sum(pr.bookings) FILTER (WHERE pr.has_quota) AS quota_bookings,
               sum(pr.quota) FILTER (WHERE pr.has_quota) AS positive_quota,
               count(*) FILTER (WHERE pr.has_quota AND pr.bookings >= pr.quota) AS reps_at_quota
          FROM per_rep pr
         GROUP BY pr.value, CASE WHEN quota_attainment.dimension = 'rep' THEN pr.rep_id END
    ), g1 AS (
        SELECT g.value, g.reps, g.reps_with_quota, g.bookings, g.quota, g.quota_bookings,
               g.positive_quota, g.reps_at_quota
          FROM g
        UNION ALL
        -- the company row also when no rep has a quota or a booking
        SELECT 'all', 0::bigint, 0::bigint, 0::numeric, NULL::numeric, NULL::numeric, NULL::numeric, 0::bigint
         WHERE quota_attainment.dimension = 'company' AND NOT EXISTS (SELECT FROM g)
    )
    SELECT p.dim, g1.value, p.period_start, p.period_end,
           g1.reps, g1.reps_with_quota, g1.bookings, g1.quota,
           (g1.quota_bookings / g1.positive_quota)::double precision,
           g1.reps_at_quota,
           g1.reps_at_quota::double precision / nullif(g1.reps_with_quota, 0)
      FROM p CROSS JOIN g1
     ORDER BY 2
$$;

CREATE OR REPLACE FUNCTION @extschema@.quota_pace(period_start timestamptz DEFAULT NULL,
                                       period_end timestamptz DEFAULT NULL,
                                       dimension text DEFAULT 'company',
                                       as_of timestamptz DEFAULT now(),
                                       weighting text DEFAULT 'stage',
                                       lookback interval DEFAULT '365 days',
                                       min_sample integer DEFAULT 20)
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               bookings numeric, quota numeric, elapsed_share double precision, pace double precision,
               weighted_pipeline numeric, projected numeric, gap numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT sales_kpi_internal.pipeline_value_check_args(quota_pace.as_of, quota_pace.dimension, quota_pace.weighting,
                                                 quota_pace.lookback, quota_pace.min_sample);
    SELECT quota_pace.dimension, x.dimension_value, x.period_start, x.period_end,
           x.bookings, x.quota, e.share,
           CASE WHEN x.quota * e.share::numeric > 0
                THEN x.bookings::double precision / (x.quota::double precision * e.share) END,
           w.weighted, x.bookings + w.weighted, x.quota - (x.bookings + w.weighted)
      FROM sales_kpi_internal.pipeline_value_period_parts(quota_pace.period_start, quota_pace.period_end,
                                                   quota_pace.dimension, quota_pace.as_of,
                                                   quota_pace.lookback, quota_pace.min_sample,
                                                   quota_pace.weighting = 'milestone',
                                                   quota_pace.weighting = 'historical') x
      CROSS JOIN LATERAL (
            SELECT least(greatest(extract(epoch FROM quota_pace.as_of - x.period_start)
                                  / extract(epoch FROM x.period_end - x.period_start), 0), 1)::double precision
                   AS share) e
      CROSS JOIN LATERAL (
            SELECT CASE quota_pace.weighting WHEN 'stage' THEN x.stage_weighted
                        WHEN 'milestone' THEN x.milestone_weighted ELSE x.historical_weighted END AS weighted) w
     ORDER BY x.dimension_value;
$$;

CREATE OR REPLACE FUNCTION @extschema@.rep_timeline(from_at timestamptz DEFAULT NULL, to_at timestamptz DEFAULT NULL,
                                         grain text DEFAULT 'month', dimension text DEFAULT 'rep',
                                         as_of timestamptz DEFAULT now())
RETURNS TABLE (dimension text, dimension_value text, period_start timestamptz, period_end timestamptz,
               peer_group text, bookings numeric, won bigint, lost bigint, win_rate double precision,
               mean_cycle_days double precision, activities bigint, peers bigint,
               bookings_percentile double precision, win_rate_percentile double precision,
               cycle_percentile double precision, activity_percentile double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT dimension, t.* FROM sales_kpi_internal.rep_timeline_rows(from_at, to_at, grain, dimension, as_of) t
$$;

CREATE OR REPLACE FUNCTION sales_kpi_internal.rep_timeline_rows(from_at timestamptz, to_at timestamptz, grain text,
                                              dim text, as_of timestamptz)
RETURNS TABLE (dimension_value text, period_start timestamptz, period_end timestamptz,
               peer_group text, bookings numeric, won bigint, lost bigint, win_rate double precision,
               mean_cycle_days double precision, activities bigint, peers bigint,
               bookings_percentile double precision, win_rate_percentile double precision,
               cycle_percentile double precision, activity_percentile double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
-- the sorts of the window functions stay in memory
SET work_mem = '64MB'
-- JIT compiles for longer than these queries run
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    starts timestamptz[];
    ends timestamptz[];
    lo timestamptz;
    hi timestamptz;
BEGIN
    PERFORM sales_kpi_internal.check_health_rep_args(dim, as_of, grain, from_at, to_at);
    SELECT array_agg(s.period_start ORDER BY s.period_start), array_agg(s.period_end ORDER BY s.period_start),
           min(s.period_start), max(s.period_end)
      INTO starts, ends, lo, hi
      FROM sales_kpi_internal.resolve_series(from_at, to_at, grain, as_of) s;
    IF lo IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH parts AS MATERIALIZED (
        -- the closed deals and the activities, each read in one pass and
        -- counted per period, dimension value and peer group: two
        -- independent branches, which parallel workers run at once
        SELECT c.b, c.dv, c.peer, c.wl, c.cycle_days, NULL::numeric AS n
          FROM sales_kpi_internal.rep_timeline_closed(lo, hi, as_of, starts, dim) c
        UNION ALL
        SELECT a.b, a.dv, a.peer, NULL, NULL, a.n
          FROM sales_kpi_internal.rep_timeline_activity(lo, hi, as_of, starts, dim) a
    ), measures AS (
        -- one closed row and one activity row at most per key
        SELECT starts[p.b] AS ps, ends[p.b] AS pe, p.dv, p.peer,
               coalesce(sum(@extschema@.won_amount(p.wl)), 0) AS bookings,
               coalesce(sum(@extschema@.won_count(p.wl)), 0)::bigint AS won,
               coalesce(sum(@extschema@.lost_count(p.wl)), 0)::bigint AS lost,
               max(@extschema@.win_rate(p.wl)) AS win_rate,
               max(p.cycle_days)::double precision AS cycle_days,
               coalesce(sum(p.n), 0)::bigint AS activities
          FROM parts p
         GROUP BY p.b, p.dv, p.peer
    )
    SELECT m.dv, m.ps, m.pe, m.peer, m.bookings, m.won, m.lost, m.win_rate, m.cycle_days,
           m.activities,
           count(*) OVER (PARTITION BY m.ps, m.peer),
           percent_rank() OVER (PARTITION BY m.ps, m.peer ORDER BY m.bookings),
           CASE WHEN m.win_rate IS NOT NULL
                THEN percent_rank() OVER (PARTITION BY m.ps, m.peer, m.win_rate IS NULL ORDER BY m.win_rate) END,
           CASE WHEN m.cycle_days IS NOT NULL
                THEN percent_rank() OVER (PARTITION BY m.ps, m.peer, m.cycle_days IS NULL
                                          ORDER BY m.cycle_days DESC) END,
           percent_rank() OVER (PARTITION BY m.ps, m.peer ORDER BY m.activities)
      FROM measures m;
END;
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.stage_durations(as_of timestamptz DEFAULT now(),
                                            dimension text DEFAULT 'company',
                                            opportunity_ids bigint[] DEFAULT NULL)
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, stage_position integer,
               is_open boolean, is_current boolean, stays bigint,
               latest_entered_at timestamptz, latest_left_at timestamptz,
               latest_stay_days double precision, total_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM sales_kpi_internal.stage_time_durations_rows(as_of, dimension, opportunity_ids)
$$;

CREATE OR REPLACE FUNCTION @extschema@.stage_norms(as_of timestamptz DEFAULT now(),
                                        dimension text DEFAULT 'company',
                                        lookback interval DEFAULT '365 days')
RETURNS TABLE (dimension text, dimension_value text, pipeline_id bigint, pipeline text,
               stage_id bigint, stage text, stage_position integer,
               stays bigint, mean_days double precision,
               p50_days double precision, p75_days double precision, p90_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM sales_kpi_internal.stage_time_norms_rows(as_of, dimension, lookback)
$$;

CREATE OR REPLACE FUNCTION @extschema@.stalled_deals(as_of timestamptz DEFAULT now(),
                                          dimension text DEFAULT 'company',
                                          lookback interval DEFAULT '365 days')
RETURNS TABLE (dimension text, dimension_value text, opportunity_id bigint,
               pipeline_id bigint, pipeline text, stage_id bigint, stage text, owner_id bigint,
               amount_base numeric, reasons text[],
               stage_entered_at timestamptz, stage_days double precision, norm_p75_days double precision,
               missing_milestones text[], expected_close date, overdue_days double precision)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM sales_kpi_internal.stage_time_stalled_rows(as_of, dimension, lookback)
$$;

-- trigger functions: EXECUTE for nobody but the owner (see 98_privileges.sql)
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

CREATE FUNCTION sales_kpi_internal.changed_since(as_of timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET enable_indexscan = on
AS $$
DECLARE
    changed boolean;
BEGIN
    IF as_of IS NULL THEN
        RETURN true;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM @extschema@.opportunity o WHERE o.snapshot_at OPERATOR(pg_catalog.>) $1)'
        INTO changed USING as_of;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.changed_since(timestamptz) IS
    'Internal: true when a deal has a snapshot after as_of, or as_of is null (a pass at as_of must then read the snapshots of the deals that changed since).';

-- stage_time_deals: the open deals from the engine's open-deal pass
CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_time_deals(as_of timestamptz, opportunity_ids bigint[])
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               is_open boolean, expected_close date, amount_base numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    as_of_date date := (as_of AT TIME ZONE @extschema@.reporting_timezone())::date;
BEGIN
    IF opportunity_ids IS NOT NULL THEN
        RETURN QUERY
        SELECT o.opportunity_id, o.pipeline_id, h.owner_id, e.stage_id, s.kind = 'open', h.expected_close,
               @extschema@.to_base(h.amount, o.currency, as_of_date)
          FROM (SELECT DISTINCT u.id FROM unnest(opportunity_ids) u(id)) d
          JOIN @extschema@.opportunity o ON o.opportunity_id = d.id AND o.created_at <= as_of
         CROSS JOIN LATERAL (
                SELECT ev.stage_id
                  FROM @extschema@.stage_event ev
                 WHERE ev.opportunity_id = o.opportunity_id AND ev.entered_at <= as_of
                 ORDER BY ev.entered_at DESC, ev.stage_event_id DESC
                 LIMIT 1) e
          JOIN @extschema@.stage s ON s.stage_id = e.stage_id
          LEFT JOIN LATERAL (
                SELECT hi.amount, hi.expected_close, hi.owner_id
                  FROM @extschema@.opportunity_history hi
                 WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= as_of
                 ORDER BY hi.changed_at DESC
                 LIMIT 1) h ON true;
        RETURN;
    END IF;

    RETURN QUERY
    SELECT p.opportunity_id, p.pipeline_id, p.owner_id, p.stage_id, true, p.expected_close, p.amount
      FROM sales_kpi_internal.open_deal_rows(as_of) p;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_deals(timestamptz, bigint[]) IS
    'Internal: the given deals (null: every deal open at as_of) as they stood at as_of, with the owner, expected close and amount in the base currency then.';

-- open_deal_rows compares expected close dates with the dates whose local
-- midnight bounds the range
CREATE FUNCTION sales_kpi_internal.first_local_date(at timestamptz, tz text)
RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d date := (at AT TIME ZONE tz)::date;
BEGIN
    IF at IS NULL OR at IN ('-infinity', 'infinity') THEN
        RETURN d;
    END IF;
    WHILE (d - 1)::timestamp AT TIME ZONE tz >= at LOOP
        d := d - 1;
    END LOOP;
    WHILE d::timestamp AT TIME ZONE tz < at LOOP
        d := d + 1;
    END LOOP;
    RETURN d;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.first_local_date(timestamptz, text) IS
    'Internal: the first date whose midnight in the time zone tz is not before the instant (NULL: NULL).';

-- stalled_deals reads the open deals from the engine's open-deal pass
CREATE OR REPLACE FUNCTION sales_kpi_internal.stage_time_open_deals(at_time timestamptz)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, owner_id bigint, stage_id bigint,
               expected_close date, amount_base numeric, entered_at timestamptz, missing_milestones text[])
LANGUAGE plpgsql STABLE PARALLEL SAFE
ROWS 100000
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH deal AS MATERIALIZED (
        SELECT p.opportunity_id, p.pipeline_id, p.owner_id, p.stage_id, p.expected_close,
               p.amount AS amount_base, p.entered_stage_at
          FROM sales_kpi_internal.open_deal_rows(at_time) p
    ), missing AS (
        SELECT d.opportunity_id, array_agg(m.name ORDER BY m.position, m.milestone_id) AS names
          FROM deal d
          JOIN @extschema@.milestone m ON m.stage_id = d.stage_id AND m.required
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.milestone_event me
                            WHERE me.opportunity_id = d.opportunity_id AND me.milestone_id = m.milestone_id
                              AND me.completed_at <= at_time)
         GROUP BY d.opportunity_id
    )
    SELECT d.opportunity_id, d.pipeline_id, d.owner_id, d.stage_id, d.expected_close, d.amount_base,
           d.entered_stage_at, mi.names
      FROM deal d
      LEFT JOIN missing mi ON mi.opportunity_id = d.opportunity_id;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.stage_time_open_deals(timestamptz) IS
    'Internal: the deals open at as_of with the time they entered their stage and the required milestones of that stage not completed by as_of.';
