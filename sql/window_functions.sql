-- stage_transition and mrr_movement on histories labelled by hand.
\set SHOW_CONTEXT never

-- deal 1: created at 1, advanced to 2, skipped to 4, regressed to 3, won,
-- reopened at 2, lost; deal 2: created at 2, same position again, lost
SELECT opportunity_id, seq, pos, kind,
       sales_kpi.stage_transition(pos, kind) OVER (PARTITION BY opportunity_id ORDER BY seq) AS transition
  FROM (VALUES (1, 1, 1, 'open'), (1, 2, 2, 'open'), (1, 3, 4, 'open'), (1, 4, 3, 'open'),
               (1, 5, NULL, 'won'), (1, 6, 2, 'open'), (1, 7, NULL, 'lost'),
               (2, 1, 2, 'open'), (2, 2, 2, 'open'), (2, 3, 99, 'lost')) v(opportunity_id, seq, pos, kind)
 ORDER BY 1, 2;

-- account 1: new, expansion, flat, contraction, churn, flat (zero), reactivation;
-- account 2 has a gap (March missing): with the month it is a reactivation
SELECT account_id, month, mrr,
       sales_kpi.mrr_movement(mrr) OVER w AS consecutive,
       sales_kpi.mrr_movement(mrr, month) OVER w AS with_month
  FROM (VALUES (1, date '2026-01-01', 100), (1, '2026-02-01', 150), (1, '2026-03-01', 150),
               (1, '2026-04-01', 120), (1, '2026-05-01', 0), (1, '2026-06-01', 0), (1, '2026-07-01', 90),
               (2, '2026-01-01', 0), (2, '2026-02-01', 50), (2, '2026-04-01', 50),
               (3, '2026-01-01', NULL), (3, '2026-02-01', 10)) v(account_id, month, mrr)
WINDOW w AS (PARTITION BY account_id ORDER BY month)
 ORDER BY 1, 2;

-- errors
SELECT sales_kpi.stage_transition(1, 'pending') OVER ();
SELECT sales_kpi.stage_transition(NULL, 'open') OVER ();
SELECT sales_kpi.mrr_movement(-5) OVER ();
SELECT sales_kpi.mrr_movement('NaN') OVER ();
