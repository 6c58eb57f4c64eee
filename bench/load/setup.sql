-- Set-up of the concurrent load benchmark (bench/load.sh, test/concurrent_load.sh),
-- run once after load_demo.  Tables in public, outside the extension:
--   bench_hot   the hot set: :hot open deals that a share of the picks go to,
--               so that clients contend for the same rows
--   bench_team  the teams, numbered, for the per-team KPI calls
--   bench_edit  one row per edit (edit.sql): whether the deal kept the edit
-- psql variable: hot (number of hot deals, 0 for none).
DROP TABLE IF EXISTS public.bench_hot, public.bench_team, public.bench_edit;

CREATE TABLE public.bench_hot (
    slot            integer PRIMARY KEY,
    opportunity_id  bigint NOT NULL UNIQUE
);
INSERT INTO public.bench_hot (slot, opportunity_id)
SELECT row_number() OVER (ORDER BY opportunity_id), opportunity_id
  FROM (SELECT o.opportunity_id
          FROM sales_kpi.opportunity o
         WHERE o.closed_at IS NULL
         ORDER BY md5(o.opportunity_id::text)
         LIMIT :hot) h;

CREATE TABLE public.bench_team AS
SELECT row_number() OVER (ORDER BY team)::integer AS n, team
  FROM (SELECT DISTINCT team FROM sales_kpi.rep WHERE team IS NOT NULL) t;

CREATE TABLE public.bench_edit (
    edited_at       timestamptz NOT NULL DEFAULT now(),
    opportunity_id  bigint NOT NULL,
    kept            boolean
);

ANALYZE public.bench_hot;
ANALYZE public.bench_team;

-- the variables the scripts take (pgbench -D), one per line: name=value
SELECT 'deals=' || max(opportunity_id) FROM sales_kpi.opportunity
UNION ALL SELECT 'accounts=' || max(account_id) FROM sales_kpi.account
UNION ALL SELECT 'teams=' || count(*) FROM public.bench_team
UNION ALL SELECT 'hot_n=' || count(*) FROM public.bench_hot;
