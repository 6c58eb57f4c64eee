-- Every constraint of the data model refuses its bad row, with an error that
-- names the constraint.
\i sql/fixture.psql
\set VERBOSITY terse

-- pipeline
INSERT INTO sales_kpi.pipeline (name) VALUES ('Direct');
INSERT INTO sales_kpi.pipeline (name, qualified_position) VALUES ('X', 0);
INSERT INTO sales_kpi.pipeline (name, gate_mode) VALUES ('X', 'strict');
-- stage
INSERT INTO sales_kpi.stage (pipeline_id, name, position, probability) VALUES (1, 'X', 5, 1.5);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, probability) VALUES (1, 'X', 5, -0.1);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability) VALUES (1, 'X', 5, 'pending', 0.5);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, probability, forecast_category) VALUES (1, 'X', 5, 0.5, 'maybe');
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability, forecast_category) VALUES (1, 'X', 98, 'won', 0.9, 'closed');
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability, forecast_category) VALUES (1, 'X', 98, 'lost', 0, 'commit');
INSERT INTO sales_kpi.stage (pipeline_id, name, position, probability) VALUES (1, 'X', 2, 0.3);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, probability) VALUES (1, 'Propose', 5, 0.3);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, probability) VALUES (1, 'X', 0, 0.3);
INSERT INTO sales_kpi.stage (pipeline_id, name, position, probability) VALUES (42, 'X', 1, 0.3);
-- a terminal stage may share a position with an open one: it takes no part in the order
INSERT INTO sales_kpi.stage (pipeline_id, name, position, kind, probability, forecast_category) VALUES (1, 'Disqualified', 1, 'lost', 0, 'omitted');
-- milestone
INSERT INTO sales_kpi.milestone (stage_id, name, position) VALUES (2, 'Pain confirmed', 9);
INSERT INTO sales_kpi.milestone (stage_id, name, position) VALUES (2, 'X', 1);
INSERT INTO sales_kpi.milestone (stage_id, name, position) VALUES (2, 'X', 0);
-- rep
INSERT INTO sales_kpi.rep (name, role) VALUES ('X', 'ceo');
INSERT INTO sales_kpi.rep (name, timezone) VALUES ('X', 'Mars/Olympus_Mons');
INSERT INTO sales_kpi.rep (name, timezone) VALUES ('Dee', 'Asia/Shanghai');
UPDATE sales_kpi.rep SET manager_id = rep_id WHERE rep_id = 2;
INSERT INTO sales_kpi.rep (name, manager_id) VALUES ('X', 42);
UPDATE sales_kpi.rep SET db_role = 'ben' WHERE rep_id IN (2, 3);
-- contact
INSERT INTO sales_kpi.contact (account_id, name, role) VALUES (1, 'X', 'boss');
INSERT INTO sales_kpi.contact (account_id, name) VALUES (42, 'X');
-- opportunity
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, amount) VALUES (1, 1, 2, 'X', -1);
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, kind) VALUES (1, 1, 2, 'X', 'upsell');
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, currency) VALUES (1, 1, 2, 'X', 'usd');
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, forecast_category) VALUES (1, 1, 2, 'X', 'maybe');
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name) VALUES (1, 42, 2, 'X');
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name) VALUES (1, 1, 42, 'X');
-- stage 7 is in pipeline 2
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, stage_id) VALUES (1, 1, 2, 'X', 7);
-- closed_at goes with a won or lost stage and only with it
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, stage_id, closed_at) VALUES (1, 1, 2, 'X', 1, '2026-02-01');
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, stage_id) VALUES (1, 1, 2, 'X', 5);
INSERT INTO sales_kpi.opportunity (pipeline_id, account_id, owner_id, name, closed_at) VALUES (1, 1, 2, 'X', '2026-02-01');
-- a good one, for the rows below (failed inserts consume identity values,
-- so the rows referred to below get explicit ids)
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, currency, created_at)
    VALUES (100, 1, 1, 2, 'Good', 100, 'EUR', '2026-01-10');
-- lead
INSERT INTO sales_kpi.lead (created_at, qualified_at) VALUES ('2026-02-01', '2026-01-01');
INSERT INTO sales_kpi.lead (created_at, disqualified_at) VALUES ('2026-02-01', '2026-01-01');
INSERT INTO sales_kpi.lead (created_at, converted_at) VALUES ('2026-02-01', '2026-01-01');
INSERT INTO sales_kpi.lead (created_at, opportunity_id) VALUES ('2026-02-01', 100);
-- stage_event
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at, amount) VALUES (100, 1, '2026-01-10', -5);
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (42, 1, '2026-01-10');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (100, 42, '2026-01-10');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (100, 7, '2026-01-10');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id) VALUES (100, 1);
-- dated beyond future_tolerance() (a day): refused, by insert, update and move_stage
SELECT sales_kpi.future_tolerance();
INSERT INTO sales_kpi.stage_event (stage_event_id, opportunity_id, stage_id, entered_at) VALUES (900, 100, 1, '9999-12-31');
DO $$
BEGIN
    INSERT INTO sales_kpi.stage_event (stage_event_id, opportunity_id, stage_id, entered_at)
        VALUES (900, 100, 1, now() + interval '25 hours');
EXCEPTION WHEN check_violation THEN
    RAISE NOTICE '25 hours ahead: refused (%)', SQLSTATE;
END;
$$;
INSERT INTO sales_kpi.stage_event (stage_event_id, opportunity_id, stage_id, entered_at)
    VALUES (900, 100, 1, now() + interval '23 hours');
UPDATE sales_kpi.stage_event SET entered_at = '3000-01-01' WHERE stage_event_id = 900;
SELECT sales_kpi.move_stage(100, 2, '9999-12-31');
INSERT INTO sales_kpi.stage_event (stage_event_id, opportunity_id, stage_id, entered_at) VALUES (901, 100, 1, '-infinity');
DELETE FROM sales_kpi.stage_event WHERE stage_event_id = 900;
-- opportunity_history
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, amount) VALUES (100, '2026-01-11', -1);
INSERT INTO sales_kpi.opportunity_history (opportunity_id, changed_at, forecast_category) VALUES (100, '2026-01-11', 'maybe');
-- milestone_event
INSERT INTO sales_kpi.milestone_event (opportunity_id, milestone_id, completed_at) VALUES (100, 42, '2026-01-11');
INSERT INTO sales_kpi.milestone_event (opportunity_id, milestone_id) VALUES (100, 1);
-- activity
INSERT INTO sales_kpi.activity (rep_id, kind, occurred_at) VALUES (2, 'fax', '2026-01-11');
INSERT INTO sales_kpi.activity (rep_id, kind, occurred_at, duration_s) VALUES (2, 'call', '2026-01-11', -30);
INSERT INTO sales_kpi.activity (rep_id, kind, occurred_at, connected) VALUES (2, 'email', '2026-01-11', true);
INSERT INTO sales_kpi.activity (rep_id, kind, occurred_at) VALUES (42, 'call', '2026-01-11');
INSERT INTO sales_kpi.activity (activity_id, rep_id, kind, occurred_at, duration_s, connected) VALUES (100, 2, 'call', '2026-01-11', 300, true);
-- utterance
INSERT INTO sales_kpi.utterance (activity_id, seq, speaker, start_ms, end_ms, text) VALUES (100, 1, 'rep', 5000, 4000, 'Hello?');
INSERT INTO sales_kpi.utterance (activity_id, seq, speaker, start_ms, end_ms, text) VALUES (100, 1, 'bot', 0, 4000, 'Hello?');
INSERT INTO sales_kpi.utterance (activity_id, seq, speaker, start_ms, end_ms, text) VALUES (100, 1, 'rep', -1, 4000, 'Hello?');
INSERT INTO sales_kpi.utterance (activity_id, seq, speaker, start_ms, end_ms, text) VALUES (100, 1, 'rep', 0, 4000, 'Hello?');
INSERT INTO sales_kpi.utterance (activity_id, seq, speaker, start_ms, end_ms, text) VALUES (100, 1, 'customer', 4000, 6000, 'Hi.');
-- price_term
INSERT INTO sales_kpi.price_term (term) VALUES ('  ');
INSERT INTO sales_kpi.price_term (term) VALUES ('价格');
INSERT INTO sales_kpi.price_term (term) VALUES ('Pricing');
-- quota: periods of one rep never overlap
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES (2, '2026-01-01', '2026-04-01', 1000);
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES (2, '2026-03-01', '2026-06-01', 1000);
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES (3, '2026-03-01', '2026-06-01', 1000);
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES (2, '2026-04-01', '2026-04-01', 1000);
INSERT INTO sales_kpi.quota (rep_id, period_start, period_end, amount) VALUES (2, '2026-04-01', '2026-07-01', -1);
-- forecast_submission
INSERT INTO sales_kpi.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount)
    VALUES (2, '2026-01-01', '2026-04-01', '2026-01-02', 'hope', 10);
INSERT INTO sales_kpi.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount)
    VALUES (2, '2026-04-01', '2026-01-01', '2026-01-02', 'commit', 10);
-- recurring_revenue
INSERT INTO sales_kpi.recurring_revenue (account_id, month, mrr) VALUES (1, '2026-01-15', 10);
INSERT INTO sales_kpi.recurring_revenue (account_id, month, mrr) VALUES (1, '2026-01-01', -10);
-- collection
INSERT INTO sales_kpi.collection (opportunity_id, due_on, amount_due, amount_paid) VALUES (100, '2026-03-01', 100, 50);
INSERT INTO sales_kpi.collection (opportunity_id, due_on, amount_due, currency) VALUES (100, '2026-03-01', 100, 'eur');
INSERT INTO sales_kpi.collection (opportunity_id, due_on, amount_due) VALUES (100, '2026-03-01', -100);
-- fx_rate
INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate) VALUES ('GBP', '2026-01-01', 0);
INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate) VALUES ('EUR', '2026-01-01', 1.3);

-- currency conversion: newest rate not after the date, and before the
-- first rate the first; base currency needs no row; a currency without any
-- rate is an error naming it, with no internal context
SELECT sales_kpi.to_base(100, 'EUR', '2026-02-28') AS feb, sales_kpi.to_base(100, 'EUR', '2026-03-01') AS mar,
       sales_kpi.to_base(100, 'USD', '1990-01-01') AS base;
SELECT sales_kpi.to_base(100, 'EUR', '2025-12-31') AS before_first,
       sales_kpi.fx_rate_on('EUR', '2025-12-31') AS rate_before_first, sales_kpi.fx_rate_on('EUR', '2026-03-02') AS rate_mar;
SELECT sales_kpi.to_base(100, 'GBP', '2026-05-01');
SELECT sales_kpi.fx_rate_on('GBP', '2026-05-01');
-- a deal or invoice in a currency without a rate is refused, naming the
-- row; so is a change to such a currency
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, currency, created_at)
    VALUES (101, 1, 1, 2, 'In francs', 100, 'CHF', '2026-01-10');
UPDATE sales_kpi.opportunity SET currency = 'CHF' WHERE opportunity_id = 100;
INSERT INTO sales_kpi.collection (collection_id, opportunity_id, due_on, amount_due, currency) VALUES (7, 100, '2026-03-01', 100, 'CHF');
INSERT INTO sales_kpi.collection (collection_id, opportunity_id, due_on, amount_due, currency) VALUES (7, 100, '2026-03-01', 100, 'EUR');
UPDATE sales_kpi.collection SET currency = 'CHF' WHERE collection_id = 7;
-- a deal without an account is allowed (a data-quality finding)
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, created_at)
    VALUES (102, 1, NULL, 2, 'No account', '2026-01-10');
-- the last rate of a currency in use cannot go, by delete, update or truncate
DELETE FROM sales_kpi.fx_rate WHERE currency = 'EUR';
UPDATE sales_kpi.fx_rate SET currency = 'CHF' WHERE currency = 'EUR';
TRUNCATE sales_kpi.fx_rate;
-- one of several can, and so can all of them replaced in one statement
DELETE FROM sales_kpi.fx_rate WHERE currency = 'EUR' AND valid_from = '2026-03-01';
WITH gone AS (DELETE FROM sales_kpi.fx_rate WHERE currency = 'EUR' RETURNING currency)
INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate)
SELECT DISTINCT currency, date '2026-01-01', 1.10 FROM gone
UNION ALL
SELECT 'EUR', '2026-03-01', 1.20;
SELECT currency, valid_from, rate FROM sales_kpi.fx_rate ORDER BY 1, 2;
-- while a dump loads (check_function_bodies off) the rates may come later
BEGIN;
SET LOCAL check_function_bodies = off;
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, account_id, owner_id, name, amount, currency, created_at)
    VALUES (103, 1, 1, 2, 'Restored in francs', 100, 'CHF', '2026-01-10');
SELECT key, rule, detail FROM sales_kpi.data_quality_findings('2026-02-01')
 WHERE rule IN ('missing_fx_rate', 'missing_account') ORDER BY key;
ROLLBACK;
SET sales_kpi.base_currency = 'EUR';
SELECT sales_kpi.to_base(100, 'EUR', '1990-01-01') AS base;
RESET sales_kpi.base_currency;
