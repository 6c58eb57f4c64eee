-- A manager reads a team's numbers: its open pipeline now, its pipeline
-- flow since the start of the quarter, or its stage pipeline value.
\set t random(1, :teams)
\set v random(1, 3)
\if :v = 1
SELECT count(*), sum(amount_base)
  FROM sales_kpi.pipeline_as_of(now(), team => (SELECT team FROM public.bench_team WHERE n = :t), open_only => true);
\elif :v = 2
SELECT count(*)
  FROM sales_kpi.pipeline_flow(sales_kpi.period_start(now()), now(),
                               team => (SELECT team FROM public.bench_team WHERE n = :t));
\else
SELECT count(*) FROM sales_kpi.stage_pipeline_value(dimension => 'team') WHERE dimension_value = (SELECT team FROM public.bench_team WHERE n = :t);
\endif
