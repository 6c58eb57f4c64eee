-- Consistency of the stored data, for DBAs: after a load with triggers off,
-- a restore with --disable-triggers, an upgrade or a crash-recovery drill,
-- check_consistency() lists every row that breaks a rule the triggers and
-- foreign keys keep.  On healthy data it returns no row.

CREATE FUNCTION @extschema@.check_consistency()
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
