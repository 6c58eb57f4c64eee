-- A new deal: an opportunity on a random account, owned by a random AE,
-- then its creation stage with move_stage (inserting a deal creates no
-- stage event by itself).
\set acc random(1, :accounts)
\set pl random(1, 4)
\set amt random(1000, 250000)
\set days random(20, 180)
BEGIN;
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, expected_close, source)
SELECT p.pipeline_id, a.account_id,
       (SELECT r.rep_id FROM sales_kpi.rep r WHERE r.role = 'ae' ORDER BY random() LIMIT 1),
       'Load test deal ' || a.account_id, :amt, current_date + :days, 'inbound'
  FROM (SELECT pipeline_id FROM sales_kpi.pipeline ORDER BY pipeline_id LIMIT 1 OFFSET :pl - 1) p,
       (SELECT account_id FROM sales_kpi.account WHERE account_id >= :acc ORDER BY account_id LIMIT 1) a
RETURNING opportunity_id AS new_deal \gset
SELECT sales_kpi.move_stage(o.opportunity_id,
         (SELECT n.stage_id FROM sales_kpi.stage n
           WHERE n.pipeline_id = o.pipeline_id AND n.kind = 'open' ORDER BY n.position LIMIT 1),
         clock_timestamp())
  FROM sales_kpi.opportunity o
 WHERE o.opportunity_id = :new_deal;
COMMIT;
