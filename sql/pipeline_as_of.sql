-- pipeline_as_of on a history worked out by hand.
\i sql/fixture.psql

INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount, currency, created_at, expected_close)
VALUES (1, 1, 2, 'A', 1000, 'USD', '2026-01-05', '2026-03-31'),
       (1, 2, 3, 'B', 500, 'EUR', '2026-01-10', '2026-02-28'),
       (1, 1, 2, 'C', 800, 'USD', '2026-02-20', '2026-04-30');
SELECT sales_kpi.move_stage(1, 1, '2026-01-05');
SELECT sales_kpi.move_stage(1, 3, '2026-01-20', 1500);    -- skip to Propose with a bigger amount
SELECT sales_kpi.move_stage(1, 5, '2026-02-15');          -- won
SELECT sales_kpi.move_stage(2, 1, '2026-01-10');
SELECT sales_kpi.move_stage(2, 6, '2026-02-01');          -- lost
SELECT sales_kpi.move_stage(2, 2, '2026-02-10');          -- reopened
SELECT sales_kpi.move_stage(3, 1, '2026-02-20');
-- deal B changes hands on 2026-02-12 (recorded now, so written as history here)
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount, expected_close, owner_id)
VALUES (2, '2026-02-12', 500, '2026-03-31', 2);

-- 2026-01-15: A in Qualify (1000), B in Qualify; C does not exist yet
SELECT opportunity_id, stage_position, stage_kind, is_open, amount, amount_base, owner_id, expected_close
  FROM sales_kpi.pipeline_as_of('2026-01-15') ORDER BY 1;
-- 2026-02-05: A in Propose (1500), B lost
SELECT opportunity_id, stage_position, stage_kind, is_open, amount, amount_base, owner_id
  FROM sales_kpi.pipeline_as_of('2026-02-05') ORDER BY 1;
-- 2026-03-01: A won, B reopened in Discover and now owned by Ben, C in Qualify;
-- EUR at the March rate (1.20)
SELECT opportunity_id, stage_position, stage_kind, is_open, amount, amount_base, owner_id, expected_close
  FROM sales_kpi.pipeline_as_of('2026-03-01') ORDER BY 1;
-- one team: Cy (West) owned B until 2026-02-12
SELECT opportunity_id FROM sales_kpi.pipeline_as_of('2026-02-05', 'West');
SELECT opportunity_id FROM sales_kpi.pipeline_as_of('2026-03-01', 'West');
-- before anything happened
SELECT count(*) FROM sales_kpi.pipeline_as_of('2025-12-31');
