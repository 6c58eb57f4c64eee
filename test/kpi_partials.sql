-- The two-step KPI engine: each public KPI equals the rollup of its
-- partials, whatever the split of its period into consecutive pieces, and
-- the partials keep each dimension key apart.  Splits are drawn at random
-- (fixed seed) inside the period, plus splits at every month.  Before
-- comparing, some closed deals change owner and amount after their close
-- and one is reopened after as_of, so the history paths are covered too.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(95);
SET LOCAL TimeZone = 'UTC';
SELECT lives_ok($$SELECT * FROM sales_kpi.load_demo(4000, 23, '2026-10-31', replace => true)$$, 'demo data loads');

-- owner and amount changed after the close for every 9th deal closed in
-- Q2 2026; one of them reopened on 2026-09-15, between the two as_of instants
UPDATE sales_kpi.opportunity o
   SET owner_id = (SELECT min(r.rep_id) FROM sales_kpi.rep r WHERE r.rep_id <> o.owner_id AND r.role = 'ae'),
       amount = o.amount + 500
 WHERE o.closed_at >= '2026-04-01' AND o.closed_at < '2026-07-01' AND o.opportunity_id % 9 = 0;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, (SELECT min(st.stage_id) FROM sales_kpi.stage st
                           WHERE st.pipeline_id = o.pipeline_id AND st.kind = 'open'), '2026-09-15'
  FROM sales_kpi.opportunity o
 WHERE o.closed_at >= '2026-04-01' AND o.closed_at < '2026-07-01' AND o.opportunity_id % 9 = 0
 ORDER BY o.opportunity_id LIMIT 1;

-- a deal that entered ranks 1 and 2 of its funnel in the same instant
-- (a tie counts as in order in the strict funnel)
UPDATE sales_kpi.stage_event e
   SET entered_at = f.entered_at
  FROM (SELECT e1.opportunity_id, e1.entered_at, e2.stage_event_id
          FROM sales_kpi.stage_event e1
          JOIN sales_kpi_internal.funnel_stage_ranks() r1 ON r1.stage_id = e1.stage_id AND r1.rank = 1
          JOIN sales_kpi.stage_event e2 ON e2.opportunity_id = e1.opportunity_id
          JOIN sales_kpi_internal.funnel_stage_ranks() r2 ON r2.stage_id = e2.stage_id AND r2.rank = 2
         WHERE e2.entered_at > e1.entered_at AND e1.entered_at < '2026-06-01'
           AND NOT EXISTS (SELECT FROM sales_kpi.stage_event x
                            WHERE x.opportunity_id = e1.opportunity_id AND x.entered_at > e1.entered_at
                              AND x.entered_at < e2.entered_at)
         ORDER BY e1.opportunity_id LIMIT 1) f
 WHERE e.stage_event_id = f.stage_event_id;

-- The reference the funnel walk is compared with: each listed deal's
-- progress grouped from its events in SQL (the funnel pass before the walk).
CREATE FUNCTION pg_temp.deal_funnel_progress(opportunity_ids bigint[], as_of timestamptz,
                                                 strict boolean DEFAULT false)
RETURNS TABLE (opportunity_id bigint, pipeline_id bigint, outcome text, ever_won boolean,
               top_rank integer, top_position integer, reached_rank integer, open_stages integer,
               strict_rank integer)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH st AS (
        SELECT * FROM sales_kpi_internal.funnel_stage_ranks()
    ), ev AS NOT MATERIALIZED (
        SELECT e.opportunity_id, e.entered_at, e.stage_event_id, st.pipeline_id, st.kind, st.rank,
               st.position, st.open_stages
          FROM unnest(opportunity_ids) AS i(id)
          JOIN sales_kpi.stage_event e ON e.opportunity_id = i.id
          JOIN st ON st.stage_id = e.stage_id
         WHERE e.entered_at <= as_of
    ), deal AS (
        SELECT ev.opportunity_id, min(ev.pipeline_id) AS pipeline_id, min(ev.open_stages) AS open_stages,
               max(ev.rank) AS top_rank,
               max(ev.position) FILTER (WHERE ev.kind = 'open') AS top_position,
               coalesce(bool_or(ev.kind = 'won'), false) AS ever_won,
               -- the newest event without sorting: arrays compare element by
               -- element, so the greatest (time, id, kind code) is the newest
               -- (epoch seconds as float8 keep every microsecond distinct)
               (max(ARRAY[date_part('epoch', ev.entered_at), ev.stage_event_id::float8,
                          CASE ev.kind WHEN 'open' THEN 0 WHEN 'won' THEN 1 ELSE 2 END]))[3] AS last_code
          FROM ev
         GROUP BY ev.opportunity_id
    ), firsts AS (
        SELECT ev.opportunity_id, ev.rank, min(ev.entered_at) AS first_at
          FROM ev
         WHERE strict AND ev.kind = 'open'
         GROUP BY ev.opportunity_id, ev.rank
    ), strict_prefix AS (
        -- the prefix 1..k of ranks first entered in order ends before the
        -- first rank that is missing or was first entered too early
        SELECT f.opportunity_id,
               coalesce(min(f.rn) FILTER (WHERE f.broken) - 1, count(*))::integer AS strict_rank
          FROM (SELECT firsts.opportunity_id,
                       row_number() OVER w AS rn,
                       firsts.rank <> row_number() OVER w
                           OR firsts.first_at < lag(firsts.first_at) OVER w AS broken
                  FROM firsts
                WINDOW w AS (PARTITION BY firsts.opportunity_id ORDER BY firsts.rank)) f
         GROUP BY f.opportunity_id
    )
    SELECT d.opportunity_id, d.pipeline_id,
           CASE d.last_code WHEN 0 THEN 'open' WHEN 1 THEN 'won' ELSE 'lost' END,
           d.ever_won, d.top_rank, d.top_position,
           CASE WHEN d.ever_won THEN d.open_stages ELSE d.top_rank END,
           d.open_stages,
           nullif(sp.strict_rank, 0)
      FROM deal d
      LEFT JOIN strict_prefix sp ON sp.opportunity_id = d.opportunity_id
$$;

-- random splits: the period's bounds with k random instants between them
SELECT setseed(0.23);
CREATE TEMP TABLE split AS
SELECT n, ARRAY(SELECT b FROM (SELECT timestamptz '2025-10-01' AS b
                               UNION SELECT timestamptz '2026-10-01'
                               UNION SELECT timestamptz '2025-10-01' + random() * interval '365 days'
                                 FROM generate_series(1, n * 3)) x ORDER BY b) AS bounds
  FROM generate_series(1, 4) n
UNION ALL
SELECT 0, ARRAY(SELECT g FROM generate_series(timestamptz '2025-10-01', '2026-10-01', '1 month') g);

CREATE TEMP TABLE case_ AS
SELECT d, a::timestamptz AS as_of
  FROM unnest(ARRAY['company', 'pipeline', 'rep', 'team', 'industry', 'source', 'deal_size_band']) d,
       unnest(ARRAY['2026-10-31', '2026-08-01']) a;

-- win_rate: counts, won amount and closed amount per value
SELECT is((SELECT count(*) FROM case_ c, split s,
                  LATERAL (
                      SELECT w.dimension_value, w.won, w.lost, w.won_amount, w.closed_amount
                        FROM sales_kpi.win_rate('2025-10-01', '2026-10-01', c.d, c.as_of) w
                      EXCEPT
                      SELECT p.dimension_value, sales_kpi.won_count(sales_kpi.rollup(p.outcomes)),
                             sales_kpi.lost_count(sales_kpi.rollup(p.outcomes)),
                             sales_kpi.won_amount(sales_kpi.rollup(p.outcomes)),
                             sum(p.closed_amount)
                        FROM sales_kpi_internal.closed_partials(s.bounds, c.as_of, c.d) p
                       GROUP BY p.dimension_value) x),
          0::bigint, 'win_rate equals the rollup of its partials over every split, breakdown and as_of');

-- the partials of a split hold every deal once: the counts add up
SELECT is((SELECT count(*) FROM case_ c, split s,
                  LATERAL (SELECT sum(sales_kpi.won_count(p.outcomes) + sales_kpi.lost_count(p.outcomes)) AS n
                             FROM sales_kpi_internal.closed_partials(s.bounds, c.as_of, c.d) p) x
            WHERE x.n IS DISTINCT FROM (SELECT count(*) FROM sales_kpi.closed_deals('2025-10-01', '2026-10-01', c.as_of))),
          0::bigint, 'the partials of every split count each closed deal once');

-- sales_cycle: the won deals' cycle summary (count, mean, median, p90)
SELECT is((SELECT count(*) FROM case_ c, split s,
                  LATERAL (
                      SELECT sc.dimension_value, sc.won, sc.mean_days, sc.median_days, sc.p90_days
                        FROM sales_kpi.sales_cycle('2025-10-01', '2026-10-01', c.d, c.as_of) sc
                       WHERE sc.won > 0 AND c.d <> 'deal_size_band'
                      EXCEPT
                      SELECT p.dimension_value, sales_kpi.duration_count(sales_kpi.rollup(p.won_cycles)),
                             extract(epoch FROM sales_kpi.mean(sales_kpi.rollup(p.won_cycles)))::float8 / 86400,
                             extract(epoch FROM sales_kpi.median(sales_kpi.rollup(p.won_cycles)))::float8 / 86400,
                             extract(epoch FROM sales_kpi.percentile(sales_kpi.rollup(p.won_cycles), 0.9))::float8 / 86400
                        FROM sales_kpi_internal.closed_partials(s.bounds, c.as_of, c.d) p
                       GROUP BY p.dimension_value) x),
          0::bigint, 'sales_cycle (won deals) equals the rollup of its partials over every split');

-- quota_attainment: bookings per rep are the rep partials' won amounts
SELECT is((SELECT count(*) FROM split s,
                  LATERAL (
                      SELECT q.dimension_value, q.bookings
                        FROM sales_kpi.quota_attainment('2025-10-01', '2026-10-01', 'rep', '2026-10-31') q
                       WHERE q.bookings > 0
                      EXCEPT
                      SELECT r.name, sum(sales_kpi.won_amount(p.outcomes))
                        FROM sales_kpi_internal.closed_partials(s.bounds, '2026-10-31', 'rep') p
                        JOIN sales_kpi.rep r ON r.rep_id::text = p.dimension_key
                       GROUP BY r.rep_id, r.name
                      HAVING sum(sales_kpi.won_count(p.outcomes)) > 0) x),
          0::bigint, 'quota_attainment bookings equal the won amounts of the rep partials over every split');

-- the won deals' pass (bookings): the won counts and amounts of the full
-- pass, no lost deal, and the won deals' amount as the closed amount, at
-- both as_of (one deal reopened between them)
CREATE TEMP TABLE won_only_case AS
SELECT c.d, c.as_of, w.won_only, p.dimension_key, p.period_start, sales_kpi.won_count(p.outcomes) AS won,
       sales_kpi.won_amount(p.outcomes) AS amount, sales_kpi.lost_count(p.outcomes) AS lost,
       CASE WHEN w.won_only THEN p.closed_amount END AS won_closed_amount
  FROM case_ c, (VALUES (false), (true)) w(won_only),
       sales_kpi_internal.closed_partials('{2025-10-01,2026-01-01,2026-10-01}', c.as_of, c.d, false, w.won_only) p
 WHERE c.d IN ('company', 'rep', 'industry') AND sales_kpi.won_count(p.outcomes) > 0;
SELECT is((SELECT count(*) FROM
             ((SELECT d, as_of, dimension_key, period_start, won, amount, 0::bigint, amount
                 FROM won_only_case WHERE NOT won_only
               EXCEPT ALL
               SELECT d, as_of, dimension_key, period_start, won, amount, lost, won_closed_amount
                 FROM won_only_case WHERE won_only)
              UNION ALL
              (SELECT d, as_of, dimension_key, period_start, won, amount, lost, won_closed_amount
                 FROM won_only_case WHERE won_only
               EXCEPT ALL
               SELECT d, as_of, dimension_key, period_start, won, amount, 0::bigint, amount
                 FROM won_only_case WHERE NOT won_only)) x)
          + (SELECT count(*) FILTER (WHERE won_only) - count(*) FILTER (WHERE NOT won_only) FROM won_only_case)
          + (SELECT CASE WHEN count(DISTINCT d) = 3 AND count(*) > 100 THEN 0 ELSE 1 END FROM won_only_case),
          0::bigint, 'closed_partials with won_only: the won deals of the full pass alone, their amount as the closed amount');

-- loss_stage: per value, pipeline and stage, and per lost_reason and
-- competitor beside it, the counts and amounts of the loss partials
-- rolled up, over every split, breakdown and as_of (and no row more)
CREATE TEMP TABLE loss_part AS
SELECT c.d, c.as_of, s.n, p.*
  FROM case_ c, split s, sales_kpi_internal.loss_partials(s.bounds, c.as_of, c.d) p
 WHERE c.d <> 'deal_size_band';
CREATE TEMP TABLE loss_case AS
SELECT c.d, c.as_of, s.n, l.dimension_value, l.pipeline_id, l.stage_id, l.breakdown, l.lost_reason,
       l.competitor, l.deals, l.amount
  FROM case_ c, split s, sales_kpi.loss_stage('2025-10-01', '2026-10-01', c.d, c.as_of) l
 WHERE c.d <> 'deal_size_band';
CREATE TEMP TABLE loss_rollup AS
SELECT p.d, p.as_of, p.n, p.dimension_value, p.pipeline_id, p.stage_id,
       CASE WHEN GROUPING(p.lost_reason) = 0 THEN 'lost_reason'
            WHEN GROUPING(p.competitor) = 0 THEN 'competitor' ELSE 'stage' END AS breakdown,
       CASE WHEN GROUPING(p.lost_reason) = 0 THEN p.lost_reason END AS lost_reason,
       CASE WHEN GROUPING(p.competitor) = 0 THEN p.competitor END AS competitor,
       sum(p.deals)::bigint AS deals, sum(p.amount) AS amount
  FROM loss_part p
 GROUP BY GROUPING SETS ((p.d, p.as_of, p.n, p.dimension_value, p.pipeline_id, p.stage_id),
                         (p.d, p.as_of, p.n, p.dimension_value, p.pipeline_id, p.stage_id, p.lost_reason),
                         (p.d, p.as_of, p.n, p.dimension_value, p.pipeline_id, p.stage_id, p.competitor));
SELECT is((SELECT count(*) FROM ((TABLE loss_case EXCEPT ALL TABLE loss_rollup)
                                 UNION ALL (TABLE loss_rollup EXCEPT ALL TABLE loss_case)) x)
          + (SELECT CASE WHEN count(DISTINCT d) = 6 AND count(DISTINCT breakdown) = 3 AND count(*) > 1000
                         THEN 0 ELSE 1 END FROM loss_case),
          0::bigint, 'loss_stage equals the rollup of its partials over every split, breakdown and as_of');
SELECT is((SELECT count(*) FROM case_ c, split s,
                  LATERAL (SELECT sum(p.deals) AS n FROM loss_part p WHERE p.d = c.d AND p.as_of = c.as_of AND p.n = s.n) x
            WHERE c.d <> 'deal_size_band'
              AND x.n IS DISTINCT FROM (SELECT count(*) FROM sales_kpi.closed_deals('2025-10-01', '2026-10-01', c.as_of) cd
                                         WHERE cd.outcome = 'lost')),
          0::bigint, 'the loss partials of every split count each lost deal once');

-- stage_conversion: per value, pipeline and step, the deals that reached
-- the step, those still open at it and those won, in every variant
CREATE TEMP TABLE partials_ AS
SELECT c.d, c.as_of, v.variant, s.n, p.*
  FROM case_ c, split s, unnest(ARRAY['all', 'strict']) v(variant),
       sales_kpi_internal.funnel_partials(s.bounds, c.as_of, c.d, v.variant = 'strict') p
 WHERE c.d <> 'deal_size_band';
CREATE TEMP TABLE funnel_from_partials AS
SELECT p.d, p.as_of, p.variant, p.n, p.dimension_value, pl.name AS pipeline, r.rank AS step,
       coalesce(sales_kpi.reached(sales_kpi.rollup(p.reached), r.rank), 0) AS reached,
       coalesce(sales_kpi.reached(sales_kpi.rollup(p.reached_open), r.rank)
                - CASE WHEN r.rank < 64 THEN sales_kpi.reached(sales_kpi.rollup(p.reached_open), r.rank + 1)
                       ELSE 0 END, 0) AS open_deals,
       coalesce(sales_kpi.reached(sales_kpi.rollup(p.reached_won), r.rank), 0) AS won
  FROM partials_ p
  JOIN sales_kpi_internal.funnel_stage_ranks() r ON r.pipeline_id = p.pipeline_id AND r.rank IS NOT NULL
  JOIN sales_kpi.pipeline pl ON pl.pipeline_id = p.pipeline_id
 GROUP BY p.d, p.as_of, p.variant, p.n, p.dimension_value, pl.name, r.rank;
CREATE TEMP TABLE funnel_from_kpi AS
SELECT c.d, c.as_of, v.variant, k.dimension_value, k.pipeline, k.step, k.reached, k.open_deals, k.won
  FROM case_ c, unnest(ARRAY['all', 'strict']) v(variant),
       sales_kpi.stage_conversion('2025-10-01', '2026-10-01', c.d, c.as_of, v.variant) k
 WHERE c.d <> 'deal_size_band';
SELECT cmp_ok((SELECT count(*) FROM funnel_from_kpi WHERE reached > 0), '>', 100::bigint,
              'stage_conversion has steps reached to compare');
SELECT is((SELECT count(*) FROM split s,
                  LATERAL (SELECT k.d, k.as_of, k.variant, k.dimension_value, k.pipeline, k.step, k.reached,
                                  k.open_deals, k.won
                             FROM funnel_from_kpi k WHERE k.reached > 0
                           EXCEPT
                           SELECT f.d, f.as_of, f.variant, f.dimension_value, f.pipeline, f.step, f.reached,
                                  f.open_deals, f.won
                             FROM funnel_from_partials f WHERE f.n = s.n) x),
          0::bigint, 'stage_conversion equals the rollup of its partials over every split, breakdown, variant and as_of');
SELECT is((SELECT count(*) FROM (SELECT f.d, f.as_of, f.variant, f.dimension_value, f.pipeline, f.step, f.reached,
                                        f.open_deals, f.won
                                   FROM funnel_from_partials f WHERE f.reached > 0
                                 EXCEPT
                                 SELECT k.d, k.as_of, k.variant, k.dimension_value, k.pipeline, k.step, k.reached,
                                        k.open_deals, k.won
                                   FROM funnel_from_kpi k) x),
          0::bigint, 'every step the partials reach is in stage_conversion');

-- each partial lies inside its period, and its period is one of the split's
SELECT is((SELECT count(*) FROM split s, sales_kpi_internal.closed_partials(s.bounds, '2026-10-31', 'pipeline') p
            WHERE (p.period_start = ANY (s.bounds) AND p.period_end = ANY (s.bounds)
                   AND p.period_end > p.period_start) IS NOT TRUE),
          0::bigint, 'every partial''s period is a piece of the split');

-- a partial holds exactly the deals closed in its own piece
SELECT is((SELECT count(*) FROM split s, sales_kpi_internal.closed_partials(s.bounds, '2026-10-31', 'company') p
            WHERE sales_kpi.won_count(p.outcomes) + sales_kpi.lost_count(p.outcomes)
                  <> (SELECT count(*) FROM sales_kpi.closed_deals(p.period_start, p.period_end, '2026-10-31'))),
          0::bigint, 'each partial counts the deals closed in its piece');

-- the closed-deal text without the deals moved since as_of (which the
-- partials run when moved_since() finds none) gives the rows of the whole
-- text; at the earlier as_of, deals did move since
CREATE FUNCTION pg_temp.closed_text_rows(dim text, as_of timestamptz, moved boolean)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT x::text FROM (%s) x', sales_kpi_internal.closed_deal_query(dim, moved))
        USING timestamptz '2025-10-01', timestamptz '2026-10-01', as_of, dim, NULL::timestamptz[], 'UTC';
END;
$$;
SELECT is(ARRAY[sales_kpi_internal.moved_since('2026-10-31'), sales_kpi_internal.moved_since('2026-08-01'),
                sales_kpi_internal.moved_since((SELECT max(entered_at) FROM sales_kpi.stage_event)),
                sales_kpi_internal.moved_since((SELECT max(entered_at) FROM sales_kpi.stage_event) - interval '1 microsecond')],
          ARRAY[false, true, false, true], 'moved_since tells whether a stage was entered after the instant');
SELECT ok(sales_kpi_internal.moved_since(NULL), 'moved_since of no instant is true: the pass keeps its history part');
SELECT is((SELECT count(*) FROM unnest(ARRAY['company', 'rep', 'team', 'industry']) d,
                  LATERAL ((SELECT * FROM pg_temp.closed_text_rows(d, '2026-10-31', true)
                            EXCEPT ALL SELECT * FROM pg_temp.closed_text_rows(d, '2026-10-31', false))
                           UNION ALL
                           (SELECT * FROM pg_temp.closed_text_rows(d, '2026-10-31', false)
                            EXCEPT ALL SELECT * FROM pg_temp.closed_text_rows(d, '2026-10-31', true))) x),
          0::bigint, 'with nothing moved since as_of, the closed-deal text without that part gives the same rows');
SELECT cmp_ok((SELECT count(*) FROM ((SELECT * FROM pg_temp.closed_text_rows('rep', '2026-08-01', true)
                                      EXCEPT ALL SELECT * FROM pg_temp.closed_text_rows('rep', '2026-08-01', false))) x),
              '>', 0::bigint, 'with deals moved since as_of, that part adds rows (the control of the test above)');

-- keys: the rep key is the owner at the close, pipeline the pipeline id
SELECT is((SELECT count(*) FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-10-31', 'rep') d
            WHERE d.dimension_key IS DISTINCT FROM d.owner_id::text),
          0::bigint, 'the rep key is the id of the owner at the close');
SELECT is((SELECT count(*) FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-10-31', 'pipeline') d
            JOIN sales_kpi.pipeline pl ON pl.pipeline_id = d.pipeline_id
            WHERE d.dimension_key IS DISTINCT FROM d.pipeline_id::text OR d.dimension_value <> pl.name),
          0::bigint, 'the pipeline key is the pipeline id and the value its name');

-- only_outcome: the won (or lost) rows alone, each with its deal's kind
SELECT is((SELECT count(*) FROM (
              (SELECT * FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-08-01', 'rep', 'won')
               EXCEPT ALL
               SELECT * FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-08-01', 'rep')
                WHERE outcome = 'won')
              UNION ALL
              (SELECT * FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-08-01', 'rep')
                WHERE outcome = 'won'
               EXCEPT ALL
               SELECT * FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-08-01', 'rep', 'won'))) x),
          0::bigint, 'closed_deal_rows with only_outcome won gives the won rows of both outcomes, as they stood at a past instant');
SELECT cmp_ok((SELECT count(*) FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-08-01', 'rep', 'won')),
              '>', 100::bigint, 'there are won rows to compare (the control of the test above)');
SELECT ok((SELECT count(*) > 100 AND bool_and(d.deal_kind IS NOT DISTINCT FROM o.kind AND d.outcome = 'lost')
                   AND count(DISTINCT d.deal_kind) > 1
             FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-10-31', 'team', 'lost') d
             JOIN sales_kpi.opportunity o ON o.opportunity_id = d.opportunity_id),
          'closed_deal_rows with only_outcome lost gives lost deals (over 100, of several kinds), each with its kind');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', '2026-10-31', 'rep', 'open')$$,
                 '22023', NULL, 'an only_outcome other than won, lost or null is refused');

-- two reps with one name: two keys, one value in the KPI
UPDATE sales_kpi.rep SET name = 'Same Name'
 WHERE rep_id IN (SELECT d.owner_id FROM sales_kpi.closed_deals('2025-10-01', '2026-10-01', '2026-10-31') d
                   WHERE d.owner_id IS NOT NULL GROUP BY d.owner_id ORDER BY d.owner_id LIMIT 2);
SELECT is((SELECT count(DISTINCT p.dimension_key)
             FROM sales_kpi_internal.closed_partials('{2025-10-01,2026-10-01}', '2026-10-31', 'rep') p
            WHERE p.dimension_value = 'Same Name'),
          2::bigint, 'two reps with the same name keep two keys in the partials');
SELECT is((SELECT w.closed FROM sales_kpi.win_rate('2025-10-01', '2026-10-01', 'rep', '2026-10-31') w
            WHERE w.dimension_value = 'Same Name'),
          (SELECT count(*) FROM sales_kpi.closed_deals('2025-10-01', '2026-10-01', '2026-10-31') d
             JOIN sales_kpi.rep r ON r.rep_id = d.owner_id WHERE r.name = 'Same Name'),
          'the KPI groups the two reps under their one name');

-- the funnel's two ways to each deal's reached rank give the same
-- partials: one ordered pass over the history (walk) and grouping the
-- events of the deals in the periods (group)
SELECT is((SELECT count(*) FROM case_ c, unnest(ARRAY[false, true]) strict_, split s,
                  LATERAL (
                      (SELECT f.dimension_key, f.dimension_value, f.period_start, f.pipeline_id, f.reached::text,
                              f.reached_open::text, f.reached_won::text
                         FROM sales_kpi_internal.funnel_partials(s.bounds, c.as_of, c.d, strict_, 'walk') f
                       EXCEPT ALL
                       SELECT f.dimension_key, f.dimension_value, f.period_start, f.pipeline_id, f.reached::text,
                              f.reached_open::text, f.reached_won::text
                         FROM sales_kpi_internal.funnel_partials(s.bounds, c.as_of, c.d, strict_, 'group') f)
                      UNION ALL
                      (SELECT f.dimension_key, f.dimension_value, f.period_start, f.pipeline_id, f.reached::text,
                              f.reached_open::text, f.reached_won::text
                         FROM sales_kpi_internal.funnel_partials(s.bounds, c.as_of, c.d, strict_, 'group') f
                       EXCEPT ALL
                       SELECT f.dimension_key, f.dimension_value, f.period_start, f.pipeline_id, f.reached::text,
                              f.reached_open::text, f.reached_won::text
                         FROM sales_kpi_internal.funnel_partials(s.bounds, c.as_of, c.d, strict_, 'walk') f)) x
            WHERE c.d <> 'deal_size_band' AND s.n IN (0, 2)),
          0::bigint, 'funnel_partials by walk equals funnel_partials by group, all and strict');

-- periods holding every deal: the walk over the primary key's id span,
-- without counting the deals first, gives what grouping their events does
SELECT is((SELECT count(*) FROM unnest(ARRAY['company', 'rep', 'industry']) d,
                  LATERAL ((SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text, f.reached_won::text
                              FROM sales_kpi_internal.funnel_partials('{1900-01-01,2100-01-01}', '2100-01-01', d) f
                            EXCEPT ALL
                            SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text, f.reached_won::text
                              FROM sales_kpi_internal.funnel_partials('{1900-01-01,2100-01-01}', '2100-01-01', d,
                                                                      false, 'group') f)
                           UNION ALL
                           (SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text, f.reached_won::text
                              FROM sales_kpi_internal.funnel_partials('{1900-01-01,2100-01-01}', '2100-01-01', d,
                                                                      false, 'group') f
                            EXCEPT ALL
                            SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text, f.reached_won::text
                              FROM sales_kpi_internal.funnel_partials('{1900-01-01,2100-01-01}', '2100-01-01', d) f)) x),
          0::bigint, 'funnel_partials over periods holding every deal equals grouping their events');
SELECT cmp_ok((SELECT sum(sales_kpi.reached(f.reached, 1))
                 FROM sales_kpi_internal.funnel_partials('{1900-01-01,2100-01-01}', '2100-01-01') f),
              '>', 0::numeric, 'periods holding every deal count deals');

-- the walk agrees deal by deal with deal_funnel_progress
SELECT is((SELECT count(*) FROM (SELECT DISTINCT c.as_of FROM case_ c) c,
                  LATERAL (
                      (SELECT w.opportunity_id, w.reached_rank, w.strict_rank
                         FROM sales_kpi_internal.funnel_deals(c.as_of, '-infinity', 'infinity') w
                       EXCEPT ALL
                       SELECT f.opportunity_id, f.reached_rank, f.strict_rank
                         FROM pg_temp.deal_funnel_progress(
                                  (SELECT array_agg(o.opportunity_id) FROM sales_kpi.opportunity o), c.as_of, true) f)
                      UNION ALL
                      (SELECT f.opportunity_id, f.reached_rank, f.strict_rank
                         FROM pg_temp.deal_funnel_progress(
                                  (SELECT array_agg(o.opportunity_id) FROM sales_kpi.opportunity o), c.as_of, true) f
                       EXCEPT ALL
                       SELECT w.opportunity_id, w.reached_rank, w.strict_rank
                         FROM sales_kpi_internal.funnel_deals(c.as_of, '-infinity', 'infinity') w)) x),
          0::bigint, 'funnel_deals gives each deal the reached and strict ranks of deal_funnel_progress');

-- halves of the deal ids add up to the whole
SELECT is((SELECT count(*) FROM sales_kpi_internal.funnel_deals('2026-10-31', '-infinity', 'infinity', NULL, 2000))
          + (SELECT count(*) FROM sales_kpi_internal.funnel_deals('2026-10-31', '-infinity', 'infinity', 2001, NULL)),
          (SELECT count(*) FROM sales_kpi_internal.funnel_deals('2026-10-31', '-infinity', 'infinity')),
          'funnel_deals over two ranges of deal ids reads each deal once');

-- the deals of a creation period, each with its own row's columns: those
-- created in it (and by as_of) with a stage event by as_of, no other
SELECT is((SELECT count(*) FROM (VALUES (timestamptz '2026-08-01'), ('2026-10-31')) a(as_of),
                  LATERAL ((SELECT w.opportunity_id, w.pipeline_id, w.created_at, w.stage_id, w.stage_entered_at
                              FROM sales_kpi_internal.funnel_deals(a.as_of, '2026-03-01', '2026-09-15', 1500, NULL) w
                            EXCEPT ALL
                            SELECT o.opportunity_id, o.pipeline_id, o.created_at, o.stage_id, o.stage_entered_at
                              FROM sales_kpi.opportunity o
                             WHERE o.created_at >= '2026-03-01' AND o.created_at < '2026-09-15'
                               AND o.created_at <= a.as_of AND o.opportunity_id >= 1500
                               AND EXISTS (SELECT 1 FROM sales_kpi.stage_event e
                                            WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= a.as_of))
                           UNION ALL
                           (SELECT o.opportunity_id, o.pipeline_id, o.created_at, o.stage_id, o.stage_entered_at
                              FROM sales_kpi.opportunity o
                             WHERE o.created_at >= '2026-03-01' AND o.created_at < '2026-09-15'
                               AND o.created_at <= a.as_of AND o.opportunity_id >= 1500
                               AND EXISTS (SELECT 1 FROM sales_kpi.stage_event e
                                            WHERE e.opportunity_id = o.opportunity_id AND e.entered_at <= a.as_of)
                            EXCEPT ALL
                            SELECT w.opportunity_id, w.pipeline_id, w.created_at, w.stage_id, w.stage_entered_at
                              FROM sales_kpi_internal.funnel_deals(a.as_of, '2026-03-01', '2026-09-15', 1500, NULL) w)) x),
          0::bigint, 'funnel_deals gives the deals of the creation period with an event by as_of, with their rows');

SELECT ok((SELECT bool_and(w.strict_rank >= 2)
             FROM sales_kpi_internal.funnel_deals('2026-10-31', '-infinity', 'infinity') w
             JOIN sales_kpi.stage_event e1 ON e1.opportunity_id = w.opportunity_id
             JOIN sales_kpi_internal.funnel_stage_ranks() r1 ON r1.stage_id = e1.stage_id AND r1.rank = 1
             JOIN sales_kpi.stage_event e2 ON e2.opportunity_id = w.opportunity_id
                                          AND e2.entered_at = e1.entered_at AND e2.stage_event_id <> e1.stage_event_id
             JOIN sales_kpi_internal.funnel_stage_ranks() r2 ON r2.stage_id = e2.stage_id AND r2.rank = 2),
          'a deal that entered ranks 1 and 2 in the same instant is strict through rank 2');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.funnel_deals(NULL, '-infinity', 'infinity')$$, '22004', NULL,
                 'funnel_deals refuses a null as_of');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.funnel_deals('2026-10-31', '2026-01-01', NULL)$$, '22004', NULL,
                 'funnel_deals refuses a null period end');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.funnel_partials('{2026-01-01,2026-10-01}', now(), 'company', false, 'fast')$$,
                 '22023', NULL, 'funnel_partials refuses an unknown method');

-- the cohort partials: the Kaplan-Meier part of sales_cycle (period end
-- 2026-10-01, as_of after it: the deals created in the 365 days before,
-- as they stood on 2026-10-01) equals the rollup of state_partials
SELECT is((SELECT count(*) FROM case_ c, split s,
                  LATERAL (
                      SELECT sc.dimension_value, sc.km_deals, sc.km_closed, sc.km_median_days
                        FROM sales_kpi.sales_cycle('2025-10-01', '2026-10-01', c.d, c.as_of) sc
                       WHERE sc.km_deals > 0
                      EXCEPT
                      SELECT p.dimension_value, sales_kpi.survival_count(sales_kpi.rollup(p.ages)),
                             sales_kpi.survival_count(sales_kpi.rollup(p.ages)) - sum(p.still_open)::bigint,
                             extract(epoch FROM sales_kpi.median_time_to_close(sales_kpi.rollup(p.ages)))::float8
                                 / 86400
                        FROM sales_kpi_internal.state_partials(s.bounds, '2026-10-01', c.d) p
                       GROUP BY p.dimension_value) x
            WHERE c.as_of = '2026-10-31' AND c.d <> 'deal_size_band'),
          0::bigint, 'sales_cycle (Kaplan-Meier) equals the rollup of its partials over every split');

-- the cohort partials of a split hold every deal once, with its outcome
SELECT is((SELECT count(*) FROM case_ c, split s,
                  LATERAL (SELECT sum(sales_kpi.survival_count(p.ages)) AS n, sum(p.still_open) AS open
                             FROM sales_kpi_internal.state_partials(s.bounds, c.as_of, c.d) p) x,
                  LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE st.outcome = 'open') AS open
                             FROM sales_kpi_internal.deal_states_at('2025-10-01', '2026-10-01', c.as_of, c.d) st) y
            WHERE c.d <> 'deal_size_band' AND (x.n, x.open) IS DISTINCT FROM (y.n, y.open)),
          0::bigint, 'the cohort partials of every split count each deal and each open deal once');

-- cohort_win_rate: monthly cohorts equal their partials taken alone
SELECT is((SELECT count(*) FROM case_ c,
                  LATERAL (
                      SELECT cw.dimension_value, cw.period_start, cw.deals, cw.still_open,
                             cw.cumulative_win_rate
                        FROM sales_kpi.cohort_win_rate('2025-10-01', '2026-10-01', 'month', c.d, c.as_of) cw
                       WHERE cw.deals > 0
                      EXCEPT
                      SELECT p.dimension_value, p.period_start, sales_kpi.survival_count(sales_kpi.rollup(p.ages)),
                             sum(p.still_open)::bigint,
                             sales_kpi.cumulative_win_rate(sales_kpi.rollup(p.ages), '90 days')
                        FROM generate_series(timestamptz '2025-10-01', '2026-09-01', '1 month') m(start),
                             sales_kpi_internal.state_partials(ARRAY[m.start, m.start + interval '1 month'], c.as_of, c.d) p
                       GROUP BY p.dimension_value, p.period_start) x
            WHERE c.d <> 'deal_size_band'),
          0::bigint, 'cohort_win_rate per month equals each month''s partials rolled up');

-- the closed-deal pass holds the deals pipeline_as_of shows closed in the
-- period as of the instant (including those reopened or closed again since)
SELECT is((SELECT count(*) FROM (SELECT DISTINCT c.as_of FROM case_ c) c,
                  LATERAL (
                      (SELECT cd.opportunity_id, cd.outcome, cd.closed_at
                         FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', c.as_of, 'company') cd
                       EXCEPT ALL
                       SELECT p.opportunity_id, p.stage_kind, p.entered_stage_at
                         FROM sales_kpi.pipeline_as_of(c.as_of) p
                        WHERE NOT p.is_open AND p.entered_stage_at >= '2025-10-01' AND p.entered_stage_at < '2026-10-01')
                      UNION ALL
                      (SELECT p.opportunity_id, p.stage_kind, p.entered_stage_at
                         FROM sales_kpi.pipeline_as_of(c.as_of) p
                        WHERE NOT p.is_open AND p.entered_stage_at >= '2025-10-01' AND p.entered_stage_at < '2026-10-01'
                       EXCEPT ALL
                       SELECT cd.opportunity_id, cd.outcome, cd.closed_at
                         FROM sales_kpi_internal.closed_deal_rows('2025-10-01', '2026-10-01', c.as_of, 'company') cd)) x),
          0::bigint, 'closed_deal_rows holds the deals pipeline_as_of shows closed in the period, as they stood');

-- the created-deal pass: the deals created in the period by the instant,
-- with the owner at the instant (the newest snapshot not after it) and the
-- breakdown of that owner and the deal's attributes
CREATE FUNCTION pg_temp.created_reference(ps timestamptz, pe timestamptz, as_of timestamptz, dim text)
RETURNS TABLE (opportunity_id bigint, owner_id bigint, dimension_value text)
LANGUAGE sql AS $$
    SELECT o.opportunity_id, w.owner_id,
           sales_kpi.dimension_value(dim, p.name, r.name, r.team, o.source, a.industry, a.segment, a.region,
                                     o.competitor, o.kind, o.product)
      FROM sales_kpi.opportunity o
      JOIN sales_kpi.pipeline p ON p.pipeline_id = o.pipeline_id
      LEFT JOIN sales_kpi.account a ON a.account_id = o.account_id
     CROSS JOIN LATERAL (
           SELECT coalesce((SELECT hi.owner_id FROM sales_kpi.opportunity_history hi
                             WHERE hi.opportunity_id = o.opportunity_id AND hi.changed_at <= as_of
                             ORDER BY hi.changed_at DESC LIMIT 1), o.owner_id) AS owner_id) w
      LEFT JOIN sales_kpi.rep r ON r.rep_id = w.owner_id
     WHERE o.created_at >= ps AND o.created_at < pe AND o.created_at <= as_of
$$;
SELECT is((SELECT count(*) FROM case_ c,
                  LATERAL (
                      (SELECT cr.opportunity_id, cr.owner_id, cr.dimension_value
                         FROM sales_kpi_internal.created_deal_rows('2025-10-01', '2026-10-01', c.as_of, c.d) cr
                       EXCEPT ALL
                       SELECT * FROM pg_temp.created_reference('2025-10-01', '2026-10-01', c.as_of, c.d))
                      UNION ALL
                      (SELECT * FROM pg_temp.created_reference('2025-10-01', '2026-10-01', c.as_of, c.d)
                       EXCEPT ALL
                       SELECT cr.opportunity_id, cr.owner_id, cr.dimension_value
                         FROM sales_kpi_internal.created_deal_rows('2025-10-01', '2026-10-01', c.as_of, c.d) cr)) x
            WHERE c.d <> 'deal_size_band'),
          0::bigint, 'created_deal_rows: the deals created in the period with the owner at as_of and its breakdown');
SELECT is((SELECT count(*) FROM case_ c,
                  LATERAL (SELECT ARRAY(SELECT r.opportunity_id
                                          FROM pg_temp.created_reference('2025-10-01', '2026-10-01', c.as_of, c.d) r
                                         WHERE r.opportunity_id % 3 = 0) AS ids) l,
                  LATERAL (
                      (SELECT b.opportunity_id, b.owner_id, b.dimension_value
                         FROM sales_kpi_internal.deal_breakdowns(l.ids, c.as_of, c.d) b
                       EXCEPT ALL
                       SELECT * FROM pg_temp.created_reference('2025-10-01', '2026-10-01', c.as_of, c.d) r
                        WHERE r.opportunity_id % 3 = 0)
                      UNION ALL
                      (SELECT * FROM pg_temp.created_reference('2025-10-01', '2026-10-01', c.as_of, c.d) r
                        WHERE r.opportunity_id % 3 = 0
                       EXCEPT ALL
                       SELECT b.opportunity_id, b.owner_id, b.dimension_value
                         FROM sales_kpi_internal.deal_breakdowns(l.ids, c.as_of, c.d) b)) x
            WHERE c.d <> 'deal_size_band'),
          0::bigint, 'deal_breakdowns: the listed deals with the owner at as_of and its breakdown');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.created_deal_rows('2025-01-01', '2026-01-01', NULL)$$, '22004', NULL,
                 'created_deal_rows refuses a null instant');

-- pipeline_creation: the year's months summed up equal the creation
-- partials over every split rolled up, both ways
CREATE TEMP TABLE creation_case AS
SELECT c.d, c.as_of, s.n,
       ARRAY(SELECT ROW(pc.dimension_value, sum(pc.opps), sum(pc.amount), sum(pc.two_stage_opps),
                        sum(pc.reached_second))::text
               FROM sales_kpi.pipeline_creation('2025-10-01', '2026-10-01', 'month', c.d, c.as_of) pc
              GROUP BY pc.dimension_value HAVING sum(pc.opps) > 0 ORDER BY 1) AS kpi,
       ARRAY(SELECT ROW(p.dimension_value, sum(p.opps), sum(p.amount),
                        sales_kpi.won_count(sales_kpi.rollup(p.reached_second))
                        + sales_kpi.lost_count(sales_kpi.rollup(p.reached_second)),
                        sales_kpi.won_count(sales_kpi.rollup(p.reached_second)))::text
               FROM sales_kpi_internal.creation_partials(s.bounds, c.as_of, c.d) p
              GROUP BY p.dimension_value ORDER BY 1) AS partials
  FROM case_ c, split s
 WHERE c.d <> 'deal_size_band';
SELECT is((SELECT count(*) FROM creation_case WHERE kpi IS DISTINCT FROM partials OR cardinality(kpi) = 0), 0::bigint,
          'pipeline_creation equals the rollup of its partials over every split, breakdown and as_of');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.creation_partials('{2025-01-01,2026-01-01}', NULL)$$, '22004', NULL,
                 'creation_partials refuses a null instant');

-- inside a parallel query (force_parallel_mode runs each KPI in a
-- worker), the passes that choose their own settings give the same rows as
-- in a plain one (a parameter set at run time would be an error there)
SET LOCAL force_parallel_mode = on;
CREATE TEMP TABLE par_cohort_rep AS SELECT * FROM sales_kpi.cohort_win_rate('2025-10-01', '2026-10-01', 'month', 'rep', '2026-10-31');
CREATE TEMP TABLE par_cohort_pipeline AS SELECT * FROM sales_kpi.cohort_win_rate('2025-10-01', '2026-10-01', 'month', 'pipeline', '2026-10-31');
CREATE TEMP TABLE par_cycle_team AS SELECT * FROM sales_kpi.sales_cycle('2025-10-01', '2026-10-01', 'team', '2026-10-31');
CREATE TEMP TABLE par_funnel_rep AS SELECT * FROM sales_kpi.funnel_rates('2025-10-01', '2026-10-01', 'rep', '2026-10-31');
CREATE TEMP TABLE par_open AS
SELECT 'rep' AS d, * FROM sales_kpi.weighted_pipeline_value('2026-08-01', 'rep')
UNION ALL
SELECT 'pipeline', * FROM sales_kpi.weighted_pipeline_value('2026-08-01', 'pipeline');
RESET force_parallel_mode;
SELECT is((SELECT count(*) FROM
             ((SELECT * FROM par_cohort_rep EXCEPT ALL
               SELECT * FROM sales_kpi.cohort_win_rate('2025-10-01', '2026-10-01', 'month', 'rep', '2026-10-31'))
              UNION ALL
              (SELECT * FROM par_cohort_pipeline EXCEPT ALL
               SELECT * FROM sales_kpi.cohort_win_rate('2025-10-01', '2026-10-01', 'month', 'pipeline', '2026-10-31'))) x)
          + (SELECT count(*) FROM
               (SELECT * FROM par_cycle_team EXCEPT ALL
                SELECT * FROM sales_kpi.sales_cycle('2025-10-01', '2026-10-01', 'team', '2026-10-31')) y)
          + (SELECT count(*) FROM
               (SELECT * FROM par_funnel_rep EXCEPT ALL
                SELECT * FROM sales_kpi.funnel_rates('2025-10-01', '2026-10-01', 'rep', '2026-10-31')) z)
          + (SELECT count(*) FROM
               (SELECT * FROM par_open EXCEPT ALL
                (SELECT 'rep', * FROM sales_kpi.weighted_pipeline_value('2026-08-01', 'rep')
                 UNION ALL
                 SELECT 'pipeline', * FROM sales_kpi.weighted_pipeline_value('2026-08-01', 'pipeline'))) w)
          + (SELECT CASE WHEN (SELECT count(*) FROM par_cohort_rep) > 100 AND (SELECT count(*) FROM par_cycle_team) > 1
                          AND (SELECT count(*) FROM par_funnel_rep) > 10
                          AND (SELECT count(*) FROM par_open WHERE d = 'rep') > 10
                          AND (SELECT count(*) FROM par_cohort_rep)
                              = (SELECT count(*) FROM sales_kpi.cohort_win_rate('2025-10-01', '2026-10-01', 'month', 'rep', '2026-10-31'))
                     THEN 0 ELSE 1 END),
          0::bigint, 'cohort_win_rate, sales_cycle, funnel_rates and weighted_pipeline_value give the same rows inside a parallel query');

-- funnel_rates: the year equals the qualification partials over every
-- split rolled up (leads, deals created, qualified, Qops closed, won), for
-- the breakdowns with leads and for one without (pipeline: no lead rows)
CREATE TEMP TABLE qualification_case AS
SELECT c.d, c.as_of, s.n,
       ARRAY(SELECT ROW(f.dimension_value, f.leads, f.converted_leads, f.qualified_leads, f.opps,
                        f.qualified_opps, f.qops_won, f.qops_lost, f.deals_won)::text
               FROM sales_kpi.funnel_rates('2025-10-01', '2026-10-01', c.d, c.as_of) f ORDER BY 1) AS kpi,
       ARRAY(SELECT ROW(p.dimension_value,
                        CASE WHEN c.d <> 'pipeline' THEN sum(p.leads) END,
                        CASE WHEN c.d <> 'pipeline' THEN sum(p.converted_leads) END,
                        CASE WHEN c.d <> 'pipeline' THEN sum(p.qualified_leads) END,
                        sum(p.opps), sum(p.qualified_opps),
                        coalesce(sales_kpi.won_count(sales_kpi.rollup(p.qops)), 0),
                        coalesce(sales_kpi.lost_count(sales_kpi.rollup(p.qops)), 0), sum(p.deals_won))::text
               FROM sales_kpi_internal.qualification_partials(s.bounds, c.as_of, c.d) p
              GROUP BY p.dimension_value ORDER BY 1) AS partials
  FROM case_ c, split s
 WHERE c.d <> 'deal_size_band';
SELECT is((SELECT count(*) FROM qualification_case
            WHERE kpi IS DISTINCT FROM partials OR cardinality(kpi) < 2 AND d <> 'company'), 0::bigint,
          'funnel_rates equals the rollup of its partials over every split, breakdown and as_of');
SELECT ok((SELECT bool_and(p.leads = 0) FROM split s,
                  sales_kpi_internal.qualification_partials(s.bounds, '2026-10-31', 'pipeline') p)
          AND (SELECT sum(p.qualified_opps) > 0 AND sum(p.qualified_leads) > 0 AND sum(p.qualified_leads) < sum(p.converted_leads)
                 FROM sales_kpi_internal.qualification_partials('{2025-10-01,2026-10-01}', '2026-10-31', 'company') p),
          'qualification partials: no lead rows for a breakdown leads do not have; qualified counts are a proper part');
-- a deal's qualification is a probe of its own events, whatever work_mem
-- would allow: never every qualifying event of the history read into a
-- hash, which costs what the whole history costs (one scan of the deal
-- index of stage_event per lost deal closed in the quarter, at least)
SET LOCAL work_mem = '1GB';
CREATE TEMP TABLE probes_before AS
SELECT pg_stat_get_xact_numscans('sales_kpi.stage_event_opportunity_idx'::regclass) AS n;
CREATE TEMP TABLE quarter_partials AS
SELECT * FROM sales_kpi_internal.qualification_partials('{2026-07-01,2026-10-01}', '2026-10-31', 'company');
SELECT cmp_ok(pg_stat_get_xact_numscans('sales_kpi.stage_event_opportunity_idx'::regclass) - (SELECT n FROM probes_before),
              '>=', (SELECT count(*) FROM sales_kpi.opportunity o JOIN sales_kpi.stage s ON s.stage_id = o.stage_id
                      WHERE s.kind = 'lost' AND o.closed_at >= '2026-07-01' AND o.closed_at < '2026-10-01'),
              'qualification partials probe each deal''s events even with a large work_mem');
RESET work_mem;
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.qualification_partials('{2025-01-01,2026-01-01}', NULL)$$, '22004', NULL,
                 'qualification_partials refuses a null instant');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.loss_partials('{2025-01-01,2026-01-01}', NULL)$$, '22004', NULL,
                 'loss_partials refuses a null instant');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.loss_partials('{2025-01-01,2026-01-01}', '-infinity')$$, '22023', NULL,
                 'loss_partials refuses an infinite instant');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.loss_partials('{2026-01-01,2025-01-01}', now())$$, '22023', NULL,
                 'loss_partials refuses bounds out of order');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.loss_partials('{2025-01-01,2026-01-01}', now(), 'deal_size_band')$$,
                 '22023', NULL, 'loss_partials refuses a dimension it does not break down by');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.qualification_partials('{2026-01-01,2025-01-01}', now())$$, '22023', NULL,
                 'qualification_partials refuses bounds out of order');

-- the deal-state pass agrees with pipeline_as_of on each deal's outcome,
-- close and (while open) owner at the instant
SELECT is((SELECT count(*) FROM (SELECT DISTINCT c.as_of FROM case_ c) c,
                  LATERAL (
                      (SELECT st.opportunity_id, st.outcome, st.closed_at,
                              CASE WHEN st.outcome = 'open' THEN st.owner_id END
                         FROM sales_kpi_internal.deal_states_at('2025-10-01', '2026-10-01', c.as_of, 'rep') st
                       EXCEPT ALL
                       SELECT p.opportunity_id, p.stage_kind, CASE WHEN NOT p.is_open THEN p.entered_stage_at END,
                              CASE WHEN p.is_open THEN p.owner_id END
                         FROM sales_kpi.pipeline_as_of(c.as_of) p
                         JOIN sales_kpi.opportunity o ON o.opportunity_id = p.opportunity_id
                        WHERE o.created_at >= '2025-10-01' AND o.created_at < '2026-10-01')
                      UNION ALL
                      (SELECT p.opportunity_id, p.stage_kind, CASE WHEN NOT p.is_open THEN p.entered_stage_at END,
                              CASE WHEN p.is_open THEN p.owner_id END
                         FROM sales_kpi.pipeline_as_of(c.as_of) p
                         JOIN sales_kpi.opportunity o ON o.opportunity_id = p.opportunity_id
                        WHERE o.created_at >= '2025-10-01' AND o.created_at < '2026-10-01'
                       EXCEPT ALL
                       SELECT st.opportunity_id, st.outcome, st.closed_at,
                              CASE WHEN st.outcome = 'open' THEN st.owner_id END
                         FROM sales_kpi_internal.deal_states_at('2025-10-01', '2026-10-01', c.as_of, 'rep') st)) x),
          0::bigint, 'deal_states_at agrees with pipeline_as_of on outcome, close and owner of the open deals');

-- the open-pipeline pass gives the deals pipeline_as_of gives, as they
-- stood (stage, owner, amount at the as_of rate, close, category)
SELECT is((SELECT count(*) FROM case_ c,
                  LATERAL (
                      (SELECT o.opportunity_id, o.stage_id, o.owner_id, o.amount, o.expected_close,
                              o.forecast_category, o.entered_stage_at
                         FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d) o
                       EXCEPT ALL
                       SELECT p.opportunity_id, p.stage_id, p.owner_id, p.amount_base, p.expected_close,
                              p.forecast_category, p.entered_stage_at
                         FROM sales_kpi.pipeline_as_of(c.as_of, open_only => true) p)
                      UNION ALL
                      (SELECT p.opportunity_id, p.stage_id, p.owner_id, p.amount_base, p.expected_close,
                              p.forecast_category, p.entered_stage_at
                         FROM sales_kpi.pipeline_as_of(c.as_of, open_only => true) p
                       EXCEPT ALL
                       SELECT o.opportunity_id, o.stage_id, o.owner_id, o.amount, o.expected_close,
                              o.forecast_category, o.entered_stage_at
                         FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d) o)) x
            WHERE c.d <> 'deal_size_band'),
          0::bigint, 'open_deal_rows holds the deals pipeline_as_of holds open, as they stood');

-- a range of expected close keeps exactly the open deals expected to close
-- in it (the date at midnight in the reporting time zone, here not UTC),
-- as they stood; one bound alone leaves the other side open
SET LOCAL sales_kpi.reporting_timezone = 'America/New_York';
CREATE TEMP TABLE close_range AS
SELECT c.d, c.as_of, r.lo, r.hi
  FROM case_ c,
       (VALUES ('2026-09-01 04:00+00'::timestamptz, '2026-12-01 05:00+00'::timestamptz),
               ('2026-09-01 03:59+00', NULL), (NULL, '2026-12-01 05:00+00')) r(lo, hi)
 WHERE c.d IN ('company', 'rep', 'industry');
SELECT is(ARRAY[(SELECT count(*) FROM close_range c,
                        LATERAL ((SELECT * FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d, c.lo, c.hi)
                                  EXCEPT ALL
                                  SELECT o.* FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d) o
                                   WHERE (c.lo IS NULL OR o.expected_close::timestamp AT TIME ZONE 'America/New_York' >= c.lo)
                                     AND (c.hi IS NULL OR o.expected_close::timestamp AT TIME ZONE 'America/New_York' < c.hi))
                                 UNION ALL
                                 (SELECT o.* FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d) o
                                   WHERE (c.lo IS NULL OR o.expected_close::timestamp AT TIME ZONE 'America/New_York' >= c.lo)
                                     AND (c.hi IS NULL OR o.expected_close::timestamp AT TIME ZONE 'America/New_York' < c.hi)
                                  EXCEPT ALL
                                  SELECT * FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d, c.lo, c.hi))) x),
                (SELECT count(*) FROM close_range c WHERE c.lo IS NOT NULL AND c.hi IS NOT NULL
                    AND (SELECT count(*) FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d, c.lo, c.hi))
                        BETWEEN 50 AND (SELECT count(*) FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d)) - 50),
                -- the bounds are instants: the first day of the range is in
                -- from its local midnight (04:00 UTC), not from a minute after
                (SELECT count(*) FROM sales_kpi_internal.open_deal_rows('2026-10-31', 'company', '2026-09-01 04:01+00', NULL) o
                  WHERE o.expected_close = '2026-09-01')],
          ARRAY[0, 6, 0]::bigint[],
          'open_deal_rows with a range of expected close keeps the deals expected to close in it, at local midnight (and 50 deals or more in, and out, of each range)');
RESET sales_kpi.reporting_timezone;
-- the date bounds behind it: the first date whose local midnight is not
-- before the instant, also where a daylight-saving change skips midnight
-- (Havana, 2026-03-08) and where it repeats an hour (New York, 2026-11-01)
SELECT is((SELECT count(*) FROM (VALUES ('America/Havana', '2026-03-07 03:00+00'::timestamptz),
                                        ('America/New_York', '2026-10-31 02:00+00'),
                                        ('UTC', '2026-03-07 00:00+00')) z(tz, t0),
                  generate_series(z.t0, z.t0 + interval '30 hours', interval '7 minutes') x,
                  LATERAL (SELECT sales_kpi_internal.first_local_date(x, z.tz) AS d) f
            WHERE NOT ((f.d::timestamp AT TIME ZONE z.tz) >= x AND ((f.d - 1)::timestamp AT TIME ZONE z.tz) < x)),
          0::bigint, 'first_local_date is the first date whose local midnight is not before the instant');

-- the open-deal text without the stage and snapshot lookups (which the
-- passes run when moved_since() and changed_since() find nothing after
-- as_of) gives the rows of the whole text; at the earlier as_of, deals did
-- move and change since
CREATE FUNCTION pg_temp.open_text_rows(dim text, as_of timestamptz, moved boolean, changed boolean)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT x::text FROM (%s) x', sales_kpi_internal.open_deal_query(dim, moved, changed))
        USING as_of, dim, as_of::date;
END;
$$;
-- the newest snapshot or stage entry: nothing moved or changed after it
CREATE TEMP TABLE quiet AS
SELECT greatest(max(o.snapshot_at), (SELECT max(e.entered_at) FROM sales_kpi.stage_event e)) AS at
  FROM sales_kpi.opportunity o;
SELECT is(ARRAY[sales_kpi_internal.changed_since('2026-08-01'),
                sales_kpi_internal.changed_since((SELECT max(snapshot_at) FROM sales_kpi.opportunity)),
                sales_kpi_internal.changed_since((SELECT max(snapshot_at) FROM sales_kpi.opportunity)
                                                 - interval '1 microsecond'),
                sales_kpi_internal.changed_since(NULL)],
          ARRAY[true, false, true, true],
          'changed_since tells whether a deal has a snapshot after the instant (no instant: true)');
SELECT is(ARRAY[(SELECT count(*) FROM quiet q, unnest(ARRAY['company', 'rep', 'team', 'industry']) d,
                         LATERAL ((SELECT * FROM pg_temp.open_text_rows(d, q.at, true, true)
                                   EXCEPT ALL SELECT * FROM pg_temp.open_text_rows(d, q.at, false, false))
                                  UNION ALL
                                  (SELECT * FROM pg_temp.open_text_rows(d, q.at, false, false)
                                   EXCEPT ALL SELECT * FROM pg_temp.open_text_rows(d, q.at, true, true))) x),
                least((SELECT count(*) FROM quiet q, pg_temp.open_text_rows('company', q.at, false, false)), 100)],
          ARRAY[0::bigint, 100::bigint],
          'with nothing moved or changed since as_of, the open-deal text without the lookups gives the same rows (of 100 open deals or more)');
SELECT is(ARRAY[(SELECT count(*) FROM ((SELECT * FROM pg_temp.open_text_rows('rep', '2026-08-01', true, true)
                                        EXCEPT ALL SELECT * FROM pg_temp.open_text_rows('rep', '2026-08-01', false, true))) x) > 0,
                (SELECT count(*) FROM ((SELECT * FROM pg_temp.open_text_rows('rep', '2026-08-01', true, true)
                                        EXCEPT ALL SELECT * FROM pg_temp.open_text_rows('rep', '2026-08-01', true, false))) x) > 0],
          ARRAY[true, true], 'with deals moved and changed since as_of, each lookup changes rows (the control of the test above)');

-- the stage-weighted pipeline: the rollup of open_partials per value equals
-- the deals of pipeline_as_of weighted by their stage's probability
SELECT is((SELECT count(*) FROM case_ c,
                  LATERAL (
                      SELECT p.dimension_value, sum(p.deals)::bigint, sum(p.amount), sum(p.weighted_amount)
                        FROM sales_kpi_internal.open_partials(c.as_of, c.d) p
                       GROUP BY p.dimension_value
                      EXCEPT
                      SELECT o.dimension_value, count(*), sum(pa.amount_base), sum(pa.amount_base * s.probability)
                        FROM sales_kpi_internal.open_deal_rows(c.as_of, c.d) o
                        JOIN sales_kpi.pipeline_as_of(c.as_of, open_only => true) pa
                          ON pa.opportunity_id = o.opportunity_id
                        JOIN sales_kpi.stage s ON s.stage_id = pa.stage_id
                       GROUP BY o.dimension_value) x
            WHERE c.d <> 'deal_size_band'),
          0::bigint, 'open_partials per value equals the open deals weighted by their stage probability');

SELECT throws_ok($$SELECT * FROM sales_kpi_internal.state_partials('{2026-01-01,2026-10-01}', NULL)$$,
                 '22004', NULL, 'state_partials refuses a null instant');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.state_partials('{2026-10-01,2026-01-01}', now())$$,
                 '22023', NULL, 'state_partials refuses decreasing bounds');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.open_partials('infinity')$$,
                 '22023', NULL, 'open_partials refuses an infinite instant');

-- bounds are checked
-- rep, team and pipeline are grouped by id and named afterwards: still one
-- row per key and period (a team's owners rolled up into one)
SELECT is((SELECT count(*) FROM split s, unnest(ARRAY['rep', 'team', 'pipeline']) d,
                  LATERAL (SELECT p.dimension_key, p.period_start
                             FROM sales_kpi_internal.closed_partials(s.bounds, '2026-10-31', d) p
                            GROUP BY 1, 2 HAVING count(*) > 1
                           UNION ALL
                           SELECT p.dimension_key, p.period_start
                             FROM sales_kpi_internal.state_partials(s.bounds, '2026-10-31', d) p
                            GROUP BY 1, 2 HAVING count(*) > 1) x),
          0::bigint, 'the closed and cohort partials by rep, team and pipeline have one row per key and period');
SELECT throws_ok($$SELECT sales_kpi_internal.partials_sql(NULL, 'SELECT 1', '1', 'count(*)', 'sum(l.count)')$$,
                 '22004', 'argument "dimension" must not be null',
                 'partials_sql refuses a null dimension');
SELECT throws_ok($$SELECT sales_kpi_internal.partials_sql('rep', 'SELECT 1', '1', 'count(*)', 'sum(l.count)', NULL)$$,
                 '22004', NULL, 'partials_sql refuses null group columns');
SELECT throws_ok($$SELECT sales_kpi_internal.partials_sql('rep', 'SELECT 1', '1', 'count(*)', 'sum(l.count)', '{a,NULL,b}')$$,
                 '22004', NULL, 'partials_sql refuses a null group column');
SELECT throws_ok($$SELECT sales_kpi_internal.closed_deal_query('company', false, 'Lost')$$,
                 '22023', NULL, 'closed_deal_query refuses an outcome other than won, lost or null');
SELECT throws_ok($$SELECT sales_kpi_internal.partials_sql('rep', 'SELECT 1', '1', 'count(*)', 'sum(l.count)', '{stage_id,piece}')$$,
                 '22023', NULL, 'partials_sql refuses a group column named as one of its own');
SELECT is(ARRAY(SELECT sales_kpi_internal.row_dimension(d)
                  FROM unnest(ARRAY['rep', 'team', 'pipeline', 'company', 'source', 'deal_size_band']) d),
          ARRAY['company', 'company', 'company', 'company', 'source', 'deal_size_band'],
          'the rows of rep, team and pipeline carry no breakdown: they are named after grouping by id');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials('{2026-10-01,2026-01-01}', now())$$,
                 '22023', NULL, 'decreasing bounds are refused');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials('{2026-10-01,2026-10-01}', now())$$,
                 '22023', NULL, 'repeated bounds are refused');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials('{2026-10-01}', now())$$,
                 '22023', NULL, 'a single bound is refused');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials('{2026-01-01,NULL,2026-10-01}', now())$$,
                 '22023', NULL, 'a null bound is refused');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials(NULL, now())$$,
                 '22023', NULL, 'null bounds are refused');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials('[0:1]={2026-01-01,2026-10-01}', now())$$,
                 '22023', NULL, 'bounds not indexed from 1 are refused');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials('{2026-01-01,2026-10-01}', now(), 'colour')$$,
                 '22023', NULL, 'an unknown dimension is refused');

-- arguments the partials refuse
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.deal_states_at('2025-01-01', '2026-01-01', NULL)$$, '22004', NULL,
                 'deal_states_at refuses a null instant');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.closed_partials('{2026-01-01,2026-10-01}', NULL)$$, '22004', NULL,
                 'closed_partials refuses a null as_of');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.open_partials(NULL)$$, '22004', NULL,
                 'open_partials refuses a null as_of');
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.state_partials('{2025-01-01,2026-01-01}', 'infinity')$$, '22023', NULL,
                 'state_partials refuses an infinite instant');
SELECT lives_ok($$SELECT * FROM sales_kpi_internal.funnel_partials('{2025-01-01,2026-01-01}', '294276-12-31 23:59:59.999999+00')$$,
                'funnel_partials takes the last instant there is as as_of');

-- a won deal of a pipeline without open stages reached no rank: the
-- funnel of the other pipelines is unchanged, by either method
CREATE TEMP TABLE funnel_before AS
SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text AS reached
  FROM sales_kpi_internal.funnel_partials('{2000-01-01,2026-10-31}', '2026-10-31', 'company', false, 'walk') f;
INSERT INTO sales_kpi.pipeline (pipeline_id, name, qualified_position) VALUES (9901, 'No open stages', 1);
INSERT INTO sales_kpi.stage (stage_id, pipeline_id, name, position, kind, probability, forecast_category)
VALUES (99011, 9901, 'Won', 1, 'won', 1, 'closed'), (99012, 9901, 'Lost', 2, 'lost', 0, 'omitted');
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, name, created_at)
VALUES (990001, 9901, 'signed at once', '2026-01-01');
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at) VALUES (990001, 99011, '2026-01-02');
SELECT is((SELECT count(*) FROM unnest(ARRAY['walk', 'group']) m,
                  LATERAL ((SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text
                              FROM sales_kpi_internal.funnel_partials('{2000-01-01,2026-10-31}', '2026-10-31', 'company',
                                                             false, m) f
                             WHERE f.pipeline_id <> 9901
                            EXCEPT ALL SELECT * FROM funnel_before)
                           UNION ALL
                           (SELECT * FROM funnel_before
                            EXCEPT ALL
                            SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text
                              FROM sales_kpi_internal.funnel_partials('{2000-01-01,2026-10-31}', '2026-10-31', 'company',
                                                             false, m) f
                             WHERE f.pipeline_id <> 9901)) x),
          0::bigint, 'a won deal of a pipeline without open stages leaves the other funnels as they were');

-- the two ways agree at the ends of bigint (the halves of the id span) and
-- when an event names a stage the reader cannot see (here: none such, with
-- the foreign key dropped): both leave that event out
INSERT INTO sales_kpi.opportunity (opportunity_id, pipeline_id, name, created_at)
SELECT v.id, (SELECT min(pipeline_id) FROM sales_kpi.pipeline), 'id at an end', '2019-01-15'
  FROM (VALUES (9223372036854775807), (-9223372036854775807), (9223372036854775806)) v(id);
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT v.id, (SELECT min(st.stage_id) FROM sales_kpi.stage st
               WHERE st.pipeline_id = (SELECT min(pipeline_id) FROM sales_kpi.pipeline) AND st.kind = 'open'),
       '2019-01-16'
  FROM (VALUES (9223372036854775807), (-9223372036854775807), (9223372036854775806)) v(id);
ALTER TABLE sales_kpi.stage_event DROP CONSTRAINT stage_event_stage_id_fkey;
INSERT INTO sales_kpi.stage_event (opportunity_id, stage_id, entered_at)
SELECT o.opportunity_id, 999999, '2026-06-01'
  FROM sales_kpi.opportunity o WHERE o.created_at >= '2026-01-01' ORDER BY o.opportunity_id LIMIT 3;
SELECT is((SELECT count(*) FROM (VALUES ('{2019-01-01,2019-02-01}'::timestamptz[]),
                                        ('{2019-01-15,2019-01-15 00:00:01}'),
                                        ('{2000-01-01,2026-10-31}')) b(bounds),
                                unnest(ARRAY['company', 'rep']) d,
                  LATERAL ((SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text
                              FROM sales_kpi_internal.funnel_partials(b.bounds, '2026-10-31', d, false, 'walk') f
                            EXCEPT ALL
                            SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text
                              FROM sales_kpi_internal.funnel_partials(b.bounds, '2026-10-31', d, false, 'group') f)
                           UNION ALL
                           (SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text
                              FROM sales_kpi_internal.funnel_partials(b.bounds, '2026-10-31', d, false, 'group') f
                            EXCEPT ALL
                            SELECT f.dimension_key, f.period_start, f.pipeline_id, f.reached::text
                              FROM sales_kpi_internal.funnel_partials(b.bounds, '2026-10-31', d, false, 'walk') f)) x),
          0::bigint, 'walk and group agree at the ends of bigint and over an event of an unknown stage');
SELECT is((SELECT sum(reached_count)::bigint FROM (SELECT sales_kpi.reached(f.reached, 1) AS reached_count
                                             FROM sales_kpi_internal.funnel_partials('{2019-01-01,2019-02-01}', '2026-10-31',
                                                                                     'company', false, 'walk') f) x),
          3::bigint, 'the deals at the ends of bigint are counted once each');
ALTER TABLE sales_kpi.stage_event ADD CONSTRAINT stage_event_stage_id_fkey
    FOREIGN KEY (stage_id) REFERENCES sales_kpi.stage NOT VALID;
DELETE FROM sales_kpi.stage_event WHERE stage_id = 999999;

-- more open stages than a funnel summary counts: an error naming the pipeline
INSERT INTO sales_kpi.pipeline (pipeline_id, name, qualified_position) VALUES (9902, 'Very long', 1);
INSERT INTO sales_kpi.stage (stage_id, pipeline_id, name, position, kind, probability, forecast_category)
SELECT 99020 + g, 9902, 'Step ' || g, g, 'open', 0.5, 'pipeline' FROM generate_series(1, 65) g;
SELECT throws_ok($$SELECT * FROM sales_kpi_internal.funnel_partials('{2025-01-01,2026-01-01}', '2026-10-31')$$,
                 '54000', 'pipeline "Very long" has 65 open stages; the funnel KPIs count at most 64',
                 'a pipeline with 65 open stages is refused by name');

-- dimension_key called directly
SELECT throws_ok($$SELECT sales_kpi_internal.dimension_key(NULL, 1, 2, 'x')$$, '22004', NULL,
                 'dimension_key refuses a null dimension');
SELECT is(sales_kpi_internal.dimension_key('rep', 1, 7, 'Ann'), '7', 'the rep key is the owner id');
SELECT is(sales_kpi_internal.dimension_key('pipeline', 3, 7, 'New Business'), '3', 'the pipeline key is the pipeline id');
SELECT is(sales_kpi_internal.dimension_key('team', 3, 7, 'East'), 'East', 'other keys are the value');
SELECT is(sales_kpi_internal.dimension_key('rep', 3, NULL, '(none)'), NULL, 'a deal without owner has no rep key');
SELECT is(sales_kpi_internal.dimension_key('rep', 3, -9223372036854775808, 'x'), '-9223372036854775808',
          'the smallest bigint id is written whole');
SELECT is(sales_kpi_internal.dimension_key('pipeline', 9223372036854775807, 1, 'x'), '9223372036854775807',
          'the largest bigint id is written whole');

SELECT * FROM finish();
ROLLBACK;
