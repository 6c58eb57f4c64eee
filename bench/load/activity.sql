-- A rep logs an activity on a deal (hot or random): a call, meeting or demo
-- with its transcript (4 to 40 turns, some mentioning price), or an email
-- without one.  The activity refers to the deal (KEY SHARE), which does not
-- wait for movers of the deal (NO KEY UPDATE).
\set p random(1, 100)
\set r random(1, :deals)
\set k random(1, 4)
\set turns random(4, 40)
\set dur random(60, 3600)
BEGIN;
SELECT coalesce(
         CASE WHEN :p <= :hot_share THEN
              (SELECT h.opportunity_id FROM public.bench_hot h ORDER BY random() LIMIT 1) END,
         (SELECT o.opportunity_id FROM sales_kpi.opportunity o
           WHERE o.opportunity_id >= :r ORDER BY o.opportunity_id LIMIT 1),
         (SELECT min(o.opportunity_id) FROM sales_kpi.opportunity o),
         0) AS deal \gset
\if :k = 4
INSERT INTO sales_kpi.activity (rep_id, opportunity_id, account_id, kind, occurred_at)
SELECT coalesce(o.owner_id, (SELECT min(rep_id) FROM sales_kpi.rep)), o.opportunity_id, o.account_id,
       'email', clock_timestamp()
  FROM sales_kpi.opportunity o
 WHERE o.opportunity_id = :deal;
\else
WITH a AS (
    INSERT INTO sales_kpi.activity (rep_id, opportunity_id, account_id, kind, occurred_at, duration_s, connected)
    SELECT coalesce(o.owner_id, (SELECT min(rep_id) FROM sales_kpi.rep)), o.opportunity_id, o.account_id,
           (ARRAY['call', 'meeting', 'demo'])[:k], clock_timestamp(), :dur,
           CASE WHEN :k = 1 THEN true END
      FROM sales_kpi.opportunity o
     WHERE o.opportunity_id = :deal
    RETURNING activity_id)
INSERT INTO sales_kpi.utterance (activity_id, seq, speaker, start_ms, end_ms, text)
SELECT a.activity_id, g, CASE WHEN g % 2 = 1 THEN 'rep' ELSE 'customer' END,
       (g - 1) * (:dur * 1000 / :turns), g * (:dur * 1000 / :turns) - 1,
       (ARRAY['Thanks for making the time today.',
              'Can you walk me through the pricing for the team plan?',
              'We would need a discount to fit this into the budget.',
              'The integration with our CRM is the main requirement.',
              'Let me share the proposal and the quote after the call.',
              'Who else needs to sign off on this decision?',
              '我们需要看一下报价和折扣。'])[1 + (g * 7 + :k) % 7]
  FROM a, generate_series(1, :turns) g;
\endif
COMMIT;
