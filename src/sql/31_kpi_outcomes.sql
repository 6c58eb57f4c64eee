-- Outcome KPIs (kpis.md section 2).

CREATE VIEW @extschema@.win_rate_by_rep AS
WITH closed_deal AS (
    SELECT o.owner_id,
           s.kind,
           @extschema@.to_base(o.amount, o.currency,
                               (o.closed_at AT TIME ZONE @extschema@.reporting_timezone())::date) AS amount
      FROM @extschema@.opportunity o
      JOIN @extschema@.stage s ON s.stage_id OPERATOR(pg_catalog.=) o.stage_id
     WHERE o.closed_at IS NOT NULL
), per_rep AS (
    SELECT r.rep_id, r.name, r.team,
           count(*) FILTER (WHERE d.kind OPERATOR(pg_catalog.=) 'won') AS won,
           count(*) FILTER (WHERE d.kind OPERATOR(pg_catalog.=) 'lost') AS lost,
           coalesce(sum(d.amount) FILTER (WHERE d.kind OPERATOR(pg_catalog.=) 'won'), 0) AS won_amount
      FROM @extschema@.rep r
      LEFT JOIN closed_deal d ON d.owner_id OPERATOR(pg_catalog.=) r.rep_id
     GROUP BY r.rep_id, r.name, r.team
)
SELECT rep_id,
       name AS rep,
       team,
       won,
       lost,
       won::double precision OPERATOR(pg_catalog./) nullif(won OPERATOR(pg_catalog.+) lost, 0) AS win_rate,
       won_amount
  FROM per_rep
 ORDER BY rep_id;
COMMENT ON VIEW @extschema@.win_rate_by_rep IS
    'Per rep, deals closed so far: won, lost, win rate = won / (won + lost) (null with no closed deal), and won amount in the base currency at the close-date rate.';
