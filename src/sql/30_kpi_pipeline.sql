-- Pipeline KPIs (kpis.md section 1).

CREATE VIEW @extschema@.stage_pipeline_value AS
WITH open_deal AS (
    SELECT o.opportunity_id, o.stage_id,
           @extschema@.to_base(o.amount, o.currency,
                               (pg_catalog.now() AT TIME ZONE @extschema@.reporting_timezone())::date) AS amount
      FROM @extschema@.opportunity o
     WHERE o.closed_at IS NULL
)
SELECT p.pipeline_id,
       p.name AS pipeline,
       s.stage_id,
       s.name AS stage,
       s.position,
       s.probability,
       count(d.opportunity_id) AS deals,
       coalesce(sum(d.amount), 0) AS amount,
       coalesce(sum(d.amount * s.probability), 0) AS weighted_amount
  FROM @extschema@.pipeline p
  JOIN @extschema@.stage s
    ON s.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id AND s.kind OPERATOR(pg_catalog.=) 'open'
  LEFT JOIN open_deal d ON d.stage_id OPERATOR(pg_catalog.=) s.stage_id
 GROUP BY p.pipeline_id, p.name, s.stage_id, s.name, s.position, s.probability
 ORDER BY p.name, s.position;
COMMENT ON VIEW @extschema@.stage_pipeline_value IS
    'Open deals now, per pipeline and open stage: count, amount and amount x stage probability, in the base currency at today''s rate. Stages without deals show zeros.';
