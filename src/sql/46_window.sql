-- Window functions that label each row of a history by what happened.

CREATE FUNCTION @extschema@.stage_transition("position" integer, kind text) RETURNS text
    AS 'MODULE_PATHNAME', 'stage_transition' LANGUAGE C WINDOW IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.stage_transition(integer, text) IS
    'Use OVER (PARTITION BY opportunity_id ORDER BY entered_at, stage_event_id) with the stage''s position and kind: labels each stage event created, advanced, skipped, regressed, won, lost or reopened. NULL kind gives NULL.';

CREATE FUNCTION @extschema@.mrr_movement(mrr numeric) RETURNS text
    AS 'MODULE_PATHNAME', 'mrr_movement' LANGUAGE C WINDOW IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mrr_movement(numeric) IS
    'Use OVER (PARTITION BY account_id ORDER BY month) over consecutive months: labels each month new, expansion, contraction, churn, reactivation or flat. A NULL mrr counts as zero.';

CREATE FUNCTION @extschema@.mrr_movement(mrr numeric, month date) RETURNS text
    AS 'MODULE_PATHNAME', 'mrr_movement' LANGUAGE C WINDOW IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mrr_movement(numeric, date) IS
    'As mrr_movement(mrr), and a month missing from the series counts as zero (revenue after a gap is a reactivation).';
