-- to_base (C, rates cached per query) against the row-by-row look-up
-- fx_rate_on, on random amounts, currencies and dates; and its errors.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(7);

TRUNCATE sales_kpi.fx_rate;
INSERT INTO sales_kpi.fx_rate (currency, valid_from, rate)
SELECT c, date '2024-01-01' + m * interval '1 month', round((base * (1 + 0.05 * sin(m)))::numeric, 6)
  FROM (VALUES ('EUR', 1.08), ('GBP', 1.27), ('JPY', 0.0067), ('CNY', 0.14)) r(c, base),
       generate_series(0, 35) m;

CREATE TEMP TABLE conv AS
SELECT g, round((sales_kpi.demo_random(5, g * 3) * 100000)::numeric, 2) AS amount,
       (ARRAY['EUR', 'GBP', 'JPY', 'CNY', 'USD'])[1 + floor(sales_kpi.demo_random(5, g * 3 + 1) * 5)::int]::character(3) AS currency,
       date '2024-01-01' + floor(sales_kpi.demo_random(5, g * 3 + 2) * 1090)::int AS d
  FROM generate_series(1, 20000) g;

SELECT is((SELECT count(*) FROM conv
            WHERE sales_kpi.to_base(amount, currency, d) IS DISTINCT FROM amount * sales_kpi.fx_rate_on(currency, d)),
          0::bigint, 'to_base equals amount x fx_rate_on for 20000 random conversions');
SELECT is((SELECT count(*) FROM conv WHERE currency = 'USD' AND sales_kpi.to_base(amount, currency, d)::text <> amount::text),
          0::bigint, 'the base currency converts 1:1 without a rate row, keeping the scale');
SELECT is(sales_kpi.to_base(10, 'EUR', '2023-12-31'),
          10 * (SELECT rate FROM sales_kpi.fx_rate WHERE currency = 'EUR' ORDER BY valid_from LIMIT 1),
          'a date before the first rate converts at the first rate');
SELECT throws_ok($$SELECT sales_kpi.to_base(10, 'CHF', '2025-01-01')$$, 'P0002',
                 'no exchange rate for currency CHF', 'a currency without rates is an error naming it');
SELECT throws_ok($$SELECT sales_kpi.to_base(10, 'EURO', '2025-01-01')$$, 'P0002', NULL,
                 'a longer code is not taken as its first three letters');
-- the base currency is read per query: after a change, EUR is 1:1 and USD needs a rate
SET LOCAL sales_kpi.base_currency = 'EUR';
SELECT is((SELECT sales_kpi.to_base(12.34, 'EUR', '2020-01-01')), 12.34, 'after SET base_currency = EUR, EUR converts 1:1');
SELECT throws_ok($$SELECT sales_kpi.to_base(10, 'USD', '2025-01-01')$$, 'P0002', NULL,
                 'and USD, now a foreign currency without rates, is an error');

SELECT * FROM finish();
ROLLBACK;
