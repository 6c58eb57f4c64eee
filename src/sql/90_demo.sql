-- Demo data: load_demo() fills every table with three years of sales
-- history that looks like a real CRM's, for examples, tests and benchmarks.
--
-- Reproducible: every random draw is demo_random(seed, key), the key naming
-- the entity and the draw ((domain << 40) + entity * stride + salt), so the
-- same (n_opportunities, seed, until) gives the same rows, ids included,
-- whatever plan the executor picks.  Times are placed relative to until
-- (midnight UTC), never to now() or the session time zone; inside the
-- generator they are UTC timestamps without time zone.
--
-- Set-based: each step is one statement over temporary tables (no per-row
-- loops); most of the time goes into the tables' own indexes, foreign keys
-- and triggers.  It loads the way a restore does, which the triggers are
-- built for: deals go in with their current values (stage, close, amount,
-- owner...), then all stage events in one statement (the statement trigger
-- finds every deal already agreeing with its newest event, and a deal's
-- first events are history, not gated moves), then the whole forecast-field
-- history (the deals go in with snapshot_at set, so the insert trigger
-- takes no creation snapshot of its own).  Each phase prints a progress
-- NOTICE (demo_progress).
--
-- Key domains: 1 fx, 2 team, 3 rep, 4 account, 5 contact, 6 deal, 7 stage
-- path, 8 history, 9 lead, 10 deal activity, 11 lead activity, 12, 13 and
-- 19 milestone, 14 quota and forecast, 15 recurring revenue, 16 collection,
-- 17 deal contacts, 18 transcript, 20 milestone activity.

-- Progress of load_demo, one NOTICE per phase: what was written, how many
-- rows, how long it took.  Returns the time, the start of the next phase.
CREATE FUNCTION sales_kpi_internal.demo_progress(phase text, row_count bigint, since timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
BEGIN
    RAISE NOTICE '%', format('load_demo: %s%s in %s s', phase,
        CASE WHEN row_count IS NOT NULL THEN format(': %s rows', to_char(row_count, 'FM999,999,999,990')) ELSE '' END,
        to_char(extract(epoch FROM now_ - since), 'FM999990.0'));
    RETURN now_;
END;
$$;
COMMENT ON FUNCTION sales_kpi_internal.demo_progress(text, bigint, timestamptz) IS
    'Internal: prints one progress line of load_demo (phase, rows, seconds since the previous phase) and returns the time.';

CREATE FUNCTION @extschema@.load_demo(n_opportunities integer DEFAULT 10000,
                                      seed integer DEFAULT 1,
                                      until date DEFAULT current_date,
                                      replace boolean DEFAULT false)
RETURNS TABLE (table_name text, row_count bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the generator sorts and hashes a few million rows in memory; its row
-- estimates are poor (generate_series, CTEs), and compiling every statement
-- would cost more than running it
SET work_mem = '256MB'
SET jit = off
AS $$
DECLARE
    v_end          timestamp;   -- until at midnight UTC: nothing happens after it
    v_start        timestamp;   -- three years earlier: the first deals
    v_first        date;
    v_days         integer;
    v_month        date;        -- first day of until's month
    v_q0           date;        -- start of the fiscal quarter holding v_first
    v_growth       float8 := ln(2.0);  -- pipeline doubles over the three years
    v_n_acc        integer;
    v_n_ae         integer;
    v_n_team       integer;
    v_n_sdr        integer;
    v_base         text := @extschema@.base_currency();
    v_fy_month     integer := @extschema@.fiscal_year_start_month();
    v_phase        integer;
    v_busy         text;
    v_bad          text;
    v_team_bounds  numeric[];
    v_team_total   numeric;
    v_acc_bounds   float8[];
    v_acc_total    float8;
    v_seq          regclass;
    v_bulk         boolean;     -- load without row-by-row triggers (superuser only)
    v_srr          text;        -- session_replication_role to restore
    v_n            bigint;      -- rows of the last insert (progress)
    v_t            timestamptz := clock_timestamp();  -- end of the last phase
    v_con          record;
    v_tables       regclass[];
    v_has          boolean;
    v_col          name;
    v_tab          regclass;
    -- hour-of-day distributions (local time): lower bounds of 24 buckets
    v_h_call       float8[];
    v_h_call_top   float8[];
    v_h_work       float8[];
    v_h_mail       float8[];

    v_first_en text[] := ARRAY['James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael',
        'Linda', 'David', 'Elizabeth', 'William', 'Susan', 'Richard', 'Jessica', 'Joseph', 'Sarah',
        'Thomas', 'Karen', 'Carlos', 'Maria', 'Daniel', 'Emma', 'Lukas', 'Sophie', 'Oliver', 'Amelia',
        'Hiroshi', 'Yuki', 'Priya', 'Arjun', 'Lucas', 'Ana', 'Mateo', 'Camila', 'Noah', 'Olivia',
        'Ethan', 'Chloe', 'Ahmed', 'Fatima'];
    v_last_en text[] := ARRAY['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller',
        'Davis', 'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Wilson', 'Anderson', 'Taylor',
        'Thomas', 'Moore', 'Jackson', 'Martin', 'Lee', 'Thompson', 'White', 'Harris', 'Clark',
        'Lewis', 'Walker', 'Young', 'Allen', 'King', 'Wright', 'Schmidt', 'Müller', 'Dubois',
        'Rossi', 'Tanaka', 'Sato', 'Kim', 'Patel', 'Silva', 'Okafor'];
    v_sur_cn text[] := ARRAY['王', '李', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙',
        '马', '朱', '胡', '郭', '何', '林', '罗', '高'];
    v_given_cn text[] := ARRAY['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳',
        '杰', '娟', '涛', '明', '超', '秀英', '霞', '平', '刚', '桂英', '建华', '晓东'];

    v_industry text[] := ARRAY['Software', 'Manufacturing', 'Financial Services', 'Healthcare',
        'Retail', 'Education', 'Energy', 'Logistics'];
    v_industry_cn text[] := ARRAY['软件', '制造', '金融', '医疗', '零售', '教育', '能源', '物流'];
    v_acc_prefix text[] := ARRAY['Acme', 'Northwind', 'Blue Harbor', 'Summit', 'Redwood',
        'Silverline', 'Brightpath', 'Ironclad', 'Evergreen', 'Lakeside', 'Pioneer', 'Crescent',
        'Granite', 'Horizon', 'Keystone', 'Maple', 'Orion', 'Pinnacle', 'Quantum', 'Riverbend',
        'Sterling', 'Tidewater', 'Vertex', 'Westfield', 'Atlas', 'Beacon', 'Cobalt', 'Falcon',
        'Harbor Point', 'Juniper'];
    -- five words per industry, in v_industry order
    v_acc_word text[] := ARRAY['Software', 'Systems', 'Labs', 'Technologies', 'Digital',
        'Manufacturing', 'Industries', 'Components', 'Machinery', 'Fabrication',
        'Capital', 'Financial', 'Bank', 'Insurance', 'Partners',
        'Health', 'Medical', 'Clinics', 'Pharma', 'Care',
        'Retail', 'Stores', 'Outfitters', 'Market', 'Brands',
        'Academy', 'University', 'Learning', 'Schools', 'Education',
        'Energy', 'Power', 'Solar', 'Utilities', 'Renewables',
        'Logistics', 'Freight', 'Shipping', 'Transport', 'Supply Chain'];
    v_city_cn text[] := ARRAY['上海', '北京', '深圳', '广州', '杭州', '成都', '苏州', '南京', '武汉', '天津'];
    v_word_cn text[] := ARRAY['华信', '恒达', '新元', '中科', '博远', '瑞丰', '天成', '东方', '金桥', '汇通'];
    v_legal_na text[] := ARRAY['', ' Inc.', ' LLC', ' Corp.'];
    v_legal_emea text[] := ARRAY['', ' Ltd', ' GmbH', ' SA', ' BV', ' plc'];
    v_legal_apac text[] := ARRAY['', ' Pty Ltd', ' KK', ' Pte Ltd'];
    v_legal_latam text[] := ARRAY['', ' SA', ' Ltda', ' SA de CV'];
    v_product text[] := ARRAY['Sales Cloud', 'Forecasting', 'Conversation Intelligence',
        'Revenue Analytics', 'Platform', 'Enablement', 'Data Hub'];
    v_competitor text[] := ARRAY['Salesforce', 'HubSpot', 'Microsoft Dynamics', 'Zoho', 'Pipedrive',
        'In-house build', 'Salesforce', 'HubSpot'];
    v_competitor_cn text[] := ARRAY['Salesforce', '销售易', '纷享销客', 'Microsoft Dynamics', '销售易'];
    v_lost_reason text[] := ARRAY['Price', 'No decision', 'Timing', 'Budget', 'Product fit',
        'Went dark', 'Champion left', 'Price', 'No decision', NULL];
    v_source text[] := ARRAY['Inbound', 'Outbound', 'Referral', 'Partner', 'Event', 'Paid Search'];

    -- contact titles, five per role in the order decision_maker, champion,
    -- influencer, user, other (four each in Chinese)
    v_role text[] := ARRAY['decision_maker', 'champion', 'influencer', 'user', 'other'];
    v_title text[] := ARRAY['CEO', 'CFO', 'CIO', 'VP Sales', 'COO',
        'Sales Operations Manager', 'Director of Sales', 'IT Director', 'Head of Revenue Operations', 'Operations Manager',
        'Procurement Manager', 'Solutions Architect', 'Finance Manager', 'Security Officer', 'Legal Counsel',
        'Account Executive', 'Sales Manager', 'Business Analyst', 'Customer Success Manager', 'Team Lead',
        'Executive Assistant', 'Office Manager', 'Intern', 'Consultant', 'Assistant'];
    v_title_cn text[] := ARRAY['总经理', '财务总监', '首席信息官', '销售副总裁',
        '销售运营经理', '销售总监', 'IT总监', '运营经理',
        '采购经理', '解决方案架构师', '财务经理', '法务',
        '销售经理', '业务分析师', '客户经理', '组长',
        '助理', '行政主管', '实习生', '顾问'];

    -- conversation turns; only the *_price lines contain price_term words
    v_rep_q text[] := ARRAY['What does your sales process look like today?',
        'How many reps are on the team right now?',
        'Who else will be involved in the decision?',
        'What happens if nothing changes this quarter?',
        'How do you measure success for this project?',
        'When would you need this up and running?',
        'Can you walk me through how a deal moves from first call to close?',
        'What made you look at this now?',
        'How do you build the forecast at the moment?',
        'Does that match what you are seeing?',
        'What would a good outcome look like for you?',
        'Which reports does your leadership ask for every week?',
        'How are new reps coached today?',
        'What tools have you tried before?'];
    v_rep_s text[] := ARRAY['Thanks for making the time today.',
        'Let me share my screen.',
        'That makes sense.',
        'We hear that a lot from teams your size.',
        'I will send a short summary after the call.',
        'Most of our customers start with one team and grow from there.',
        'Here is how the pipeline view would look for you.',
        'Got it, that is really helpful.',
        'I will bring our solutions engineer to the next meeting.',
        'Let us agree on the next steps.',
        'Our customers usually see the first results within a month.',
        'I can set up a trial workspace this week.'];
    v_rep_price text[] := ARRAY['On pricing, most teams your size start with the professional plan.',
        'I can send you a quote by Friday.',
        'The price depends on the number of seats.',
        'With a two-year term we can offer a discount.',
        'What budget have you set aside for this?',
        'The license fee is billed annually, per seat.',
        'Let me walk you through the pricing options.',
        'Would a quote for fifty users help your internal review?'];
    v_cus text[] := ARRAY['We mostly track deals in spreadsheets right now.',
        'The team is about twenty people.',
        'Our VP wants better visibility into the pipeline.',
        'Honestly, forecasting is painful every quarter.',
        'I need to check with my manager first.',
        'We looked at another vendor last year.',
        'That sounds useful.',
        'Can you send me the slides?',
        'Timing is the main concern for us.',
        'We are also talking to other vendors.',
        'Yes.', 'Right.', 'Okay, makes sense.',
        'Our reps spend too much time on data entry.',
        'Integration with our ERP is a must.',
        'Let me think about it and get back to you.'];
    v_cus_price text[] := ARRAY['What would the price be for a team our size?',
        'Our budget for this year is already allocated.',
        'Is there a discount if we sign this quarter?',
        'Can you send over a quote?'];
    v_other text[] := ARRAY['Sorry, I am joining late.', 'Can everyone hear me?',
        'I have to drop off in five minutes.'];
    v_rep_q_cn text[] := ARRAY['你们现在的销售流程是怎样的？',
        '团队目前有多少销售？',
        '还有哪些人会参与决策？',
        '如果这个季度不做改变，会有什么影响？',
        '你们怎么衡量这个项目是否成功？',
        '希望什么时候上线？',
        '现在是怎么做销售预测的？',
        '这和您看到的情况一致吗？',
        '您理想中的结果是什么样的？',
        '新人现在是怎么培训的？'];
    v_rep_s_cn text[] := ARRAY['感谢您抽出时间。',
        '我来共享一下屏幕。',
        '明白了。',
        '很多同规模的团队都遇到过这个问题。',
        '会后我把纪要发给您。',
        '我们可以先从一个团队开始试点。',
        '这是您的销售漏斗在系统里的样子。',
        '好的，这个信息很有帮助。',
        '下次我请售前工程师一起参加。',
        '我们确认一下下一步。'];
    v_rep_price_cn text[] := ARRAY['关于价格，同规模的团队一般选择专业版。',
        '我周五前把报价发给您。',
        '签两年合同可以有折扣。',
        '您这边今年的预算大概是多少？',
        '费用按账号数按年收取。',
        '我给您介绍一下几种价格方案。'];
    v_cus_cn text[] := ARRAY['我们现在主要用表格管理商机。',
        '团队大概二十个人。',
        '领导希望更清楚地看到销售漏斗。',
        '每个季度做预测都很头疼。',
        '我需要先和领导确认一下。',
        '去年我们看过另一家供应商。',
        '听起来不错。',
        '能把资料发给我吗？',
        '好的。', '对。',
        '时间是我们最关心的问题。',
        '销售花太多时间录数据了。'];
    v_cus_price_cn text[] := ARRAY['这个价格大概是多少？',
        '今年的预算已经分配完了。',
        '这个季度签的话有折扣吗？',
        '多少钱一个账号？'];
    v_other_cn text[] := ARRAY['抱歉，我来晚了。', '大家能听到吗？'];
BEGIN
    -- Arguments first, then the currency table: nothing is touched before
    -- the load is known to be possible.
    IF n_opportunities IS NULL OR n_opportunities NOT BETWEEN 1 AND 10000000 THEN
        RAISE EXCEPTION 'n_opportunities must be between 1 and 10000000, got %',
                coalesce(n_opportunities::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF seed IS NULL THEN
        RAISE EXCEPTION 'seed must not be null, got NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF until IS NULL OR NOT until BETWEEN DATE '1900-01-01' AND DATE '9999-12-31' THEN
        RAISE EXCEPTION 'until must be a date between 1900-01-01 and 9999-12-31, got %',
                coalesce(until::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF replace IS NULL THEN
        RAISE EXCEPTION 'replace must be true or false, got NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Rough value in USD of the currencies the demo uses (first five) and of
    -- the usual base currencies, with the monthly volatility of the walk.
    CREATE TEMP TABLE demo_cur ON COMMIT DROP AS
    SELECT * FROM (VALUES
        ('USD', 1, 1.0, 0.0, -2, true), ('EUR', 2, 1.08, 0.020, -2, true),
        ('GBP', 3, 1.26, 0.018, -2, true), ('CNY', 4, 0.139, 0.008, -3, true),
        ('JPY', 5, 0.0068, 0.025, -4, true), ('CHF', 6, 1.12, 0.018, -2, false),
        ('CAD', 7, 0.73, 0.015, -2, false), ('AUD', 8, 0.66, 0.022, -2, false),
        ('NZD', 9, 0.60, 0.022, -2, false), ('SGD', 10, 0.74, 0.010, -2, false),
        ('HKD', 11, 0.128, 0.002, -3, false), ('INR', 12, 0.012, 0.012, -4, false),
        ('KRW', 13, 0.00074, 0.020, -5, false), ('BRL', 14, 0.19, 0.030, -3, false),
        ('MXN', 15, 0.055, 0.030, -3, false), ('SEK', 16, 0.095, 0.022, -3, false),
        ('NOK', 17, 0.092, 0.022, -3, false), ('DKK', 18, 0.145, 0.020, -3, false),
        ('PLN', 19, 0.25, 0.020, -3, false), ('ZAR', 20, 0.054, 0.030, -3, false),
        ('TWD', 21, 0.031, 0.012, -3, false)
    ) v(code, cid, usd_per, sigma, digits, used);
    IF NOT EXISTS (SELECT 1 FROM demo_cur WHERE code = v_base) THEN
        RAISE EXCEPTION 'load_demo has no exchange rates for base currency %', v_base
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('Set sales_kpi.base_currency to one of %s.',
                                (SELECT string_agg(code, ', ' ORDER BY code) FROM demo_cur));
    END IF;

    -- Every table of user data (those a dump keeps) holds sales data, except
    -- the price terms and the row-security setting; tables derived from them
    -- (rep_visibility) are rebuilt.
    SELECT array_agg(c.oid::regclass ORDER BY c.relname) INTO v_tables
      FROM pg_extension x
     CROSS JOIN LATERAL unnest(x.extconfig) AS k(relid)
      JOIN pg_class c ON c.oid = k.relid
     WHERE x.extname = 'sales_kpi' AND c.relkind IN ('r', 'p')
       AND c.relname NOT IN ('price_term', 'row_security');
    FOREACH v_tab IN ARRAY v_tables LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', v_tab) INTO v_has;
        IF v_has THEN
            v_busy := concat_ws(', ', v_busy, v_tab::text);
        END IF;
    END LOOP;
    IF v_busy IS NOT NULL AND NOT replace THEN
        RAISE EXCEPTION 'sales_kpi tables are not empty; pass replace => true to replace their rows with the demo data'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Rows found in %s.', v_busy),
                  HINT = 'replace => true deletes every row of every sales_kpi table except price_term.';
    END IF;
    -- Truncate even empty tables: it restarts the identities, so ids are the
    -- same on every load, and under wal_level = minimal the rows written into
    -- a table truncated in the same transaction need no WAL.
    EXECUTE format('TRUNCATE %s RESTART IDENTITY', array_to_string(v_tables, ', '));

    -- Bulk mode.  A foreign-key check is a row-by-row look-up of several
    -- microseconds and the load writes millions of referencing rows, so a
    -- superuser's load skips the row-by-row triggers (session_replication_role
    -- = replica, for this transaction only) and checks every foreign key of
    -- the schema set-wise at the end, as ALTER TABLE ... VALIDATE CONSTRAINT
    -- does.  The rows go in the way a restore brings them, so the stage and
    -- history triggers have nothing to add (the checks after the load
    -- confirm it); other roles load through the triggers, with the same rows.
    v_srr := current_setting('session_replication_role');
    v_bulk := (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user);
    IF v_bulk THEN
        PERFORM set_config('session_replication_role', 'replica', true);
    END IF;

    v_end := until::timestamp;
    v_start := v_end - interval '3 years';
    v_first := v_start::date;
    v_days := until - v_first;
    v_month := date_trunc('month', v_end)::date;
    v_q0 := (date_trunc('month', v_start)
             - make_interval(months => (extract(month FROM v_start)::integer - v_fy_month + 12) % 3))::date;
    v_n_acc := greatest(20, round(n_opportunities / 4.0))::integer;
    v_n_ae := greatest(12, round(n_opportunities / 250.0))::integer;
    v_n_team := greatest(1, round(v_n_ae / 6.5))::integer;
    v_n_sdr := greatest(v_n_team, round(v_n_ae / 3.0))::integer;

    SELECT array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 1),
           array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 2),
           array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 3),
           array_agg(x.lo ORDER BY x.g, x.h) FILTER (WHERE x.g = 4)
      INTO v_h_call, v_h_call_top, v_h_work, v_h_mail
      FROM (SELECT v.g, u.h,
                   (coalesce(sum(u.w) OVER (PARTITION BY v.g ORDER BY u.h
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                    / sum(u.w) OVER (PARTITION BY v.g))::float8 AS lo
              FROM (VALUES
                -- calls peak 9-11 and 16-18
                (1, ARRAY[0, 0, 0, 0, 0, 0, 0, 1, 4, 10, 12, 9, 4, 5, 7, 7, 8, 7, 3, 1, 0.5, 0, 0, 0]),
                -- top reps call more late in the afternoon
                (2, ARRAY[0, 0, 0, 0, 0, 0, 0, 1, 3, 8, 9, 7, 3, 4, 6, 8, 13, 13, 7, 2, 0.5, 0, 0, 0]),
                -- meetings, demos and the rest keep office hours
                (3, ARRAY[0, 0, 0, 0, 0, 0, 0, 0.5, 3, 8, 9, 8, 3, 5, 8, 8, 6, 3, 1, 0.3, 0, 0, 0, 0]),
                -- email goes out at any hour
                (4, ARRAY[0.2, 0.1, 0, 0, 0, 0, 0.5, 2, 5, 7, 7, 6, 4, 5, 6, 6, 5, 4, 3, 2, 1.5, 1, 0.6, 0.3])
              ) v(g, ws)
              CROSS JOIN LATERAL unnest(v.ws) WITH ORDINALITY u(w, h)) x;

    -- Exchange rates: a monthly walk of each currency's USD value that is
    -- pulled back toward its usual level (log x(m) = 0.92 log x(m-1) + noise,
    -- summed as 0.92^m * sum of 0.92^-i * noise(i)), divided by the base
    -- currency's, from a year before the first deal.
    CREATE TEMP TABLE demo_fx ON COMMIT DROP AS
    WITH walk AS (
        SELECT c.code, c.used, g.m,
               (date_trunc('month', v_start) + make_interval(months => g.m - 12))::date AS month,
               ln(c.usd_per)
                 + power(0.92, g.m)
                   * sum(CASE WHEN g.m = 0 THEN 0
                              ELSE power(0.92, -g.m) * c.sigma
                                   * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, (1::bigint << 40) + c.cid * 4096 + g.m * 2)))
                                   * cos(2 * pi() * @extschema@.demo_random(seed, (1::bigint << 40) + c.cid * 4096 + g.m * 2 + 1)) END)
                         OVER (PARTITION BY c.code ORDER BY g.m) AS lvl
          FROM demo_cur c
         CROSS JOIN generate_series(0, 48) g(m)
         WHERE c.used OR c.code = v_base
    )
    SELECT w.code, w.month,
           CASE WHEN w.code = v_base THEN 1
                ELSE round(exp(w.lvl - b.lvl)::numeric, 5 - floor(log(exp(w.lvl - b.lvl)))::integer) END AS rate
      FROM walk w
      JOIN walk b ON b.code = v_base AND b.m = w.m
     WHERE w.used OR w.code = v_base;

    INSERT INTO @extschema@.fx_rate (currency, valid_from, rate)
    SELECT code, month, rate FROM demo_fx WHERE code <> v_base ORDER BY code, month;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('fx_rate', v_n, v_t);

    -- The sales process: four pipelines, stages with a typical stay in days,
    -- and one to three milestones per open stage.
    CREATE TEMP TABLE demo_stage ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY v.pipeline_id, v.position) AS stage_id, v.*
      FROM (VALUES
        (1, 1, 'Prospecting', 'open', 0.10, 'pipeline', 6),
        (1, 2, 'Discovery', 'open', 0.20, 'pipeline', 10),
        (1, 3, 'Solution Fit', 'open', 0.40, 'best_case', 14),
        (1, 4, 'Proposal', 'open', 0.60, 'best_case', 12),
        (1, 5, 'Negotiation', 'open', 0.80, 'commit', 10),
        (1, 6, 'Contracting', 'open', 0.90, 'commit', 6),
        (1, 7, 'Closed Won', 'won', 1, 'closed', NULL),
        (1, 8, 'Closed Lost', 'lost', 0, 'omitted', NULL),
        (2, 1, 'Scoping', 'open', 0.20, 'pipeline', 7),
        (2, 2, 'Business Case', 'open', 0.45, 'best_case', 10),
        (2, 3, 'Proposal', 'open', 0.70, 'best_case', 9),
        (2, 4, 'Contracting', 'open', 0.90, 'commit', 6),
        (2, 5, 'Closed Won', 'won', 1, 'closed', NULL),
        (2, 6, 'Closed Lost', 'lost', 0, 'omitted', NULL),
        (3, 1, 'Research', 'open', 0.05, 'pipeline', 12),
        (3, 2, 'Qualification', 'open', 0.10, 'pipeline', 14),
        (3, 3, 'Discovery', 'open', 0.20, 'pipeline', 18),
        (3, 4, 'Solution Design', 'open', 0.35, 'best_case', 20),
        (3, 5, 'Executive Alignment', 'open', 0.50, 'best_case', 18),
        (3, 6, 'Proposal', 'open', 0.70, 'commit', 16),
        (3, 7, 'Procurement', 'open', 0.85, 'commit', 22),
        (3, 8, 'Closed Won', 'won', 1, 'closed', NULL),
        (3, 9, 'Closed Lost', 'lost', 0, 'omitted', NULL),
        (4, 1, 'Renewal Due', 'open', 0.60, 'best_case', 21),
        (4, 2, 'Negotiation', 'open', 0.80, 'commit', 14),
        (4, 3, 'Paperwork', 'open', 0.95, 'commit', 7),
        (4, 4, 'Closed Won', 'won', 1, 'closed', NULL),
        (4, 5, 'Closed Lost', 'lost', 0, 'omitted', NULL)
      ) v(pipeline_id, position, name, kind, probability, forecast_category, base_days);

    CREATE TEMP TABLE demo_pipe ON COMMIT DROP AS
    SELECT p.pipeline_id, p.name,
           count(*) FILTER (WHERE s.kind = 'open')::integer AS n_open,
           -- open stages have consecutive ids in position order
           min(s.stage_id) AS first_id,
           max(s.stage_id) FILTER (WHERE s.kind = 'won') AS won_id,
           max(s.stage_id) FILTER (WHERE s.kind = 'lost') AS lost_id,
           array_agg(s.base_days ORDER BY s.position) FILTER (WHERE s.kind = 'open') AS base_days
      FROM (VALUES (1, 'New Business'), (2, 'Expansion'), (3, 'Strategic'), (4, 'Renewal')) p(pipeline_id, name)
      JOIN demo_stage s USING (pipeline_id)
     GROUP BY p.pipeline_id, p.name;

    CREATE TEMP TABLE demo_ms ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY s.stage_id, v.position) AS milestone_id,
           s.stage_id, s.pipeline_id, s.position AS stage_pos, v.position, v.name, v.required, v.akind,
           count(*) OVER (PARTITION BY s.stage_id) AS n_in_stage
      FROM (VALUES
        (1, 1, 1, 'Contact identified', true, 'call'),
        (1, 1, 2, 'First meeting booked', true, 'call'),
        (1, 2, 1, 'Pain confirmed', true, 'meeting'),
        (1, 2, 2, 'Budget discussed', true, 'call'),
        (1, 2, 3, 'Decision process mapped', false, 'meeting'),
        (1, 3, 1, 'Demo delivered', true, 'demo'),
        (1, 3, 2, 'Technical validation', true, 'meeting'),
        (1, 4, 1, 'Proposal sent', true, 'proposal'),
        (1, 4, 2, 'Proposal reviewed with buyer', true, 'meeting'),
        (1, 5, 1, 'Terms agreed', true, 'call'),
        (1, 5, 2, 'Legal review started', false, 'email'),
        (1, 6, 1, 'Contract sent', true, 'email'),
        (2, 1, 1, 'Usage review', true, 'meeting'),
        (2, 2, 1, 'ROI shared', true, 'content'),
        (2, 2, 2, 'Sponsor confirmed', true, 'call'),
        (2, 3, 1, 'Proposal sent', true, 'proposal'),
        (2, 3, 2, 'Discount approved', false, 'other'),
        (2, 4, 1, 'Order form sent', true, 'email'),
        (3, 1, 1, 'Account plan written', true, 'other'),
        (3, 2, 1, 'Executive sponsor identified', true, 'call'),
        (3, 2, 2, 'Qualification scored', false, 'other'),
        (3, 3, 1, 'Pain confirmed', true, 'meeting'),
        (3, 3, 2, 'Stakeholder map', true, 'meeting'),
        (3, 3, 3, 'Budget discussed', true, 'call'),
        (3, 4, 1, 'Architecture workshop', true, 'meeting'),
        (3, 4, 2, 'Demo delivered', true, 'demo'),
        (3, 5, 1, 'Executive meeting', true, 'meeting'),
        (3, 5, 2, 'Mutual action plan', true, 'content'),
        (3, 6, 1, 'Proposal sent', true, 'proposal'),
        (3, 6, 2, 'Business case approved', true, 'meeting'),
        (3, 7, 1, 'Security review passed', true, 'other'),
        (3, 7, 2, 'Contract sent', true, 'email'),
        (3, 7, 3, 'PO received', false, 'email'),
        (4, 1, 1, 'Health check', true, 'meeting'),
        (4, 2, 1, 'Renewal quote sent', true, 'proposal'),
        (4, 2, 2, 'Upsell discussed', false, 'call'),
        (4, 3, 1, 'Order form signed', true, 'email')
      ) v(pipeline_id, stage_pos, position, name, required, akind)
      JOIN demo_stage s ON s.pipeline_id = v.pipeline_id AND s.position = v.stage_pos AND s.kind = 'open';

    INSERT INTO @extschema@.pipeline (pipeline_id, name, qualified_position)
    SELECT pipeline_id, name, 2 FROM demo_pipe ORDER BY pipeline_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('pipeline', v_n, v_t);
    INSERT INTO @extschema@.stage (stage_id, pipeline_id, name, position, kind, probability, forecast_category)
    SELECT stage_id, pipeline_id, name, position, kind, probability, forecast_category
      FROM demo_stage ORDER BY stage_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('stage', v_n, v_t);
    INSERT INTO @extschema@.milestone (milestone_id, stage_id, name, position, required)
    SELECT milestone_id, stage_id, name, position, required FROM demo_ms ORDER BY milestone_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('milestone', v_n, v_t);

    -- Regions: where accounts are and teams sell, the local working hours
    -- (UTC offset), the zones reps work in, and which region's team covers
    -- a region that has none.
    CREATE TEMP TABLE demo_region ON COMMIT DROP AS
    SELECT * FROM (VALUES
        (1, 'North America', 0.00, 0.40, -5, false,
         ARRAY['America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles'], ARRAY[1, 5, 2, 3, 4]),
        (2, 'EMEA', 0.40, 0.70, 1, false,
         ARRAY['Europe/London', 'Europe/Berlin', 'Europe/Paris', 'Europe/Madrid', 'Europe/Amsterdam'], ARRAY[2, 1, 3, 5, 4]),
        (3, 'APAC', 0.70, 0.85, 8, false,
         ARRAY['Asia/Tokyo', 'Asia/Singapore', 'Australia/Sydney', 'Asia/Kolkata'], ARRAY[3, 4, 2, 1, 5]),
        (4, 'Greater China', 0.85, 0.95, 8, true,
         ARRAY['Asia/Shanghai', 'Asia/Hong_Kong', 'Asia/Taipei'], ARRAY[4, 3, 1, 2, 5]),
        (5, 'LATAM', 0.95, 1.00, -3, false,
         ARRAY['America/Sao_Paulo', 'America/Mexico_City', 'America/Bogota'], ARRAY[5, 1, 2, 3, 4])
    ) v(rid, region, lo, hi, utc_offset, chinese, zones, fallback);

    -- Teams of 5-8 AEs, spread over the regions by their weight.
    CREATE TEMP TABLE demo_team ON COMMIT DROP AS
    SELECT t.team_no, r.rid,
           r.region || ' ' || row_number() OVER (PARTITION BY r.rid ORDER BY t.team_no) AS team,
           round((5 + 3 * @extschema@.demo_random(seed, (2::bigint << 40) + t.team_no))::numeric, 3) AS weight
      FROM generate_series(1, v_n_team) t(team_no)
      JOIN demo_region r ON (t.team_no - 0.5) / v_n_team >= r.lo AND (t.team_no - 0.5) / v_n_team < r.hi;
    SELECT array_agg(x.lo ORDER BY x.team_no), sum(x.weight) INTO v_team_bounds, v_team_total
      FROM (SELECT team_no, weight, sum(weight) OVER (ORDER BY team_no) - weight AS lo FROM demo_team) x;

    -- Reps: a head of sales, a manager per team, AEs and SDRs.  Each has a
    -- hidden skill (win rate, cycle, questions asked), an optimism (forecast
    -- bias) and a hustle (activity volume).  The first AE and SDR of every
    -- team were hired before the data starts, so every region always has
    -- someone to own its deals.
    CREATE TEMP TABLE demo_rep ON COMMIT DROP AS
    WITH ae AS (
        SELECT g.n, width_bucket((g.n - 0.5) / v_n_ae * v_team_total, v_team_bounds) AS team_no
          FROM generate_series(1, v_n_ae) g(n)
    ), person AS (
        SELECT 1::bigint AS rep_id, 'manager'::text AS role, NULL::integer AS team_no, true AS veteran
        UNION ALL
        SELECT 1 + team_no, 'manager', team_no, true FROM demo_team
        UNION ALL
        SELECT 1 + v_n_team + n, 'ae', team_no, n = min(n) OVER (PARTITION BY team_no) FROM ae
        UNION ALL
        SELECT 1 + v_n_team + v_n_ae + g.n, 'sdr', (g.n - 1) % v_n_team + 1, g.n <= v_n_team
          FROM generate_series(1, v_n_sdr) g(n)
    ), drawn AS (
        SELECT p.*, (3::bigint << 40) + p.rep_id * 64 AS kr, coalesce(t.rid, 1) AS rid,
               coalesce(t.team, 'Sales Leadership') AS team
          FROM person p
          LEFT JOIN demo_team t USING (team_no)
    )
    SELECT d.rep_id, d.role, d.team_no, d.team, d.rid,
           CASE WHEN d.rep_id = 1 THEN NULL WHEN d.role = 'manager' THEN 1 ELSE 1 + d.team_no END AS manager_id,
           CASE WHEN d.rep_id = 1 THEN v_first - (1500 + floor(1000 * @extschema@.demo_random(seed, d.kr)))::integer
                WHEN d.veteran THEN v_first - (200 + floor(1200 * @extschema@.demo_random(seed, d.kr)))::integer
                WHEN @extschema@.demo_random(seed, d.kr + 1) < 0.65 THEN v_first - (30 + floor(1500 * @extschema@.demo_random(seed, d.kr)))::integer
                ELSE v_first + floor((v_days - 90) * @extschema@.demo_random(seed, d.kr))::integer END AS hired_on,
           -- roughly normal, mean 0, sd 1
           (@extschema@.demo_random(seed, d.kr + 2) + @extschema@.demo_random(seed, d.kr + 3)
            + @extschema@.demo_random(seed, d.kr + 4) + @extschema@.demo_random(seed, d.kr + 5) - 2) * sqrt(3.0) AS skill,
           CASE WHEN @extschema@.demo_random(seed, d.kr + 6) < 0.25 THEN 0.2 + 0.3 * @extschema@.demo_random(seed, d.kr + 7)
                WHEN @extschema@.demo_random(seed, d.kr + 6) < 0.40 THEN -0.08 - 0.15 * @extschema@.demo_random(seed, d.kr + 7)
                ELSE -0.06 + 0.12 * @extschema@.demo_random(seed, d.kr + 7) END AS optimism,
           0.7 + 0.6 * @extschema@.demo_random(seed, d.kr + 8) AS hustle,
           CASE WHEN @extschema@.demo_random(seed, d.kr + 9) >= 0.15
                THEN r.zones[1 + floor(cardinality(r.zones) * @extschema@.demo_random(seed, d.kr + 10))::integer] END AS timezone,
           CASE WHEN r.chinese
                THEN v_sur_cn[1 + floor(cardinality(v_sur_cn) * @extschema@.demo_random(seed, d.kr + 11))::integer]
                     || v_given_cn[1 + floor(cardinality(v_given_cn) * @extschema@.demo_random(seed, d.kr + 12))::integer]
                ELSE v_first_en[1 + floor(cardinality(v_first_en) * @extschema@.demo_random(seed, d.kr + 11))::integer] || ' '
                     || v_last_en[1 + floor(cardinality(v_last_en) * @extschema@.demo_random(seed, d.kr + 12))::integer] END AS name,
           r.zones[1] AS region_zone
      FROM drawn d
      JOIN demo_region r USING (rid);

    INSERT INTO @extschema@.rep (rep_id, name, team, manager_id, role, hired_on, timezone)
    SELECT rep_id, name, team, manager_id, role, hired_on, timezone FROM demo_rep ORDER BY rep_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('rep', v_n, v_t);

    -- Who may own a deal of a region on a date: the AEs (SDRs) of the
    -- covering region in order of hiring, so that those hired by the date
    -- are a prefix: width_bucket(date, hires) is their number.
    CREATE TEMP TABLE demo_cover ON COMMIT DROP AS
    WITH cover AS (
        SELECT r.rid,
               (SELECT f.cr
                  FROM unnest(r.fallback) WITH ORDINALITY f(cr, o)
                 WHERE EXISTS (SELECT 1 FROM demo_team t WHERE t.rid = f.cr)
                 ORDER BY f.o LIMIT 1) AS cr
          FROM demo_region r
    )
    SELECT c.rid, x.role,
           array_agg(x.hired_on ORDER BY x.hired_on, x.rep_id) AS hires,
           array_agg(x.rep_id ORDER BY x.hired_on, x.rep_id) AS reps
      FROM cover c
      JOIN demo_rep x ON x.rid = c.cr AND x.role IN ('ae', 'sdr')
     GROUP BY c.rid, x.role;

    -- Accounts.  Bigger ones buy more often: a deal picks its account with
    -- probability proportional to the weight.
    CREATE TEMP TABLE demo_account ON COMMIT DROP AS
    WITH a AS (
        SELECT g.id AS account_id, (4::bigint << 40) + g.id * 64 AS ka
          FROM generate_series(1, v_n_acc) g(id)
    ), b AS (
        SELECT a.*, width_bucket(@extschema@.demo_random(seed, a.ka), ARRAY[0, 0.40, 0.70, 0.85, 0.95]::float8[]) AS rid,
               CASE WHEN @extschema@.demo_random(seed, a.ka + 1) < 0.5 THEN 'SMB'
                    WHEN @extschema@.demo_random(seed, a.ka + 1) < 0.85 THEN 'Mid-Market'
                    ELSE 'Enterprise' END AS segment,
               1 + floor(8 * power(@extschema@.demo_random(seed, a.ka + 2), 1.25))::integer AS ind
          FROM a
    )
    SELECT b.account_id, b.ka, b.rid, b.segment, v_industry[b.ind] AS industry,
           CASE b.rid WHEN 1 THEN 'USD'
                      WHEN 2 THEN CASE WHEN @extschema@.demo_random(seed, b.ka + 3) < 0.62 THEN 'EUR' ELSE 'GBP' END
                      WHEN 3 THEN CASE WHEN @extschema@.demo_random(seed, b.ka + 3) < 0.45 THEN 'JPY' ELSE 'USD' END
                      WHEN 4 THEN 'CNY'
                      ELSE 'USD' END AS currency,
           CASE WHEN b.rid = 4
                THEN v_city_cn[1 + floor(10 * @extschema@.demo_random(seed, b.ka + 6))::integer]
                     || v_word_cn[1 + floor(10 * @extschema@.demo_random(seed, b.ka + 7))::integer]
                     || v_industry_cn[b.ind]
                     || CASE WHEN @extschema@.demo_random(seed, b.ka + 8) < 0.7 THEN '有限公司' ELSE '集团' END
                ELSE v_acc_prefix[1 + floor(cardinality(v_acc_prefix) * @extschema@.demo_random(seed, b.ka + 6))::integer] || ' '
                     || v_acc_word[(b.ind - 1) * 5 + 1 + floor(5 * @extschema@.demo_random(seed, b.ka + 7))::integer]
                     || CASE b.rid WHEN 1 THEN v_legal_na[1 + floor(4 * @extschema@.demo_random(seed, b.ka + 8))::integer]
                                   WHEN 2 THEN v_legal_emea[1 + floor(6 * @extschema@.demo_random(seed, b.ka + 8))::integer]
                                   WHEN 3 THEN v_legal_apac[1 + floor(4 * @extschema@.demo_random(seed, b.ka + 8))::integer]
                                   ELSE v_legal_latam[1 + floor(4 * @extschema@.demo_random(seed, b.ka + 8))::integer] END
           END AS name,
           @extschema@.demo_random(seed, b.ka + 4) AS u_owner,
           CASE b.segment WHEN 'SMB' THEN 1.0 WHEN 'Mid-Market' THEN 1.6 ELSE 2.8 END
               * (0.3 + 1.4 * @extschema@.demo_random(seed, b.ka + 5)) AS weight,
           2 + floor(3 * @extschema@.demo_random(seed, b.ka + 9))::integer AS n_contact
      FROM b;
    SELECT array_agg(x.lo ORDER BY x.account_id), max(x.lo + x.weight) INTO v_acc_bounds, v_acc_total
      FROM (SELECT account_id, weight,
                   coalesce(sum(weight) OVER (ORDER BY account_id
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS lo
              FROM demo_account) x;

    -- Contacts: two to four per account, usually a decision maker first and
    -- a champion second.
    CREATE TEMP TABLE demo_contact ON COMMIT DROP AS
    WITH f AS (
        SELECT a.account_id, a.rid, a.n_contact,
               sum(a.n_contact) OVER (ORDER BY a.account_id) - a.n_contact AS before
          FROM demo_account a
    ), c AS (
        SELECT f.before + g.k + 1 AS contact_id, f.account_id, f.rid, g.k, f.before + 1 AS first_contact,
               f.n_contact, (5::bigint << 40) + (f.before + g.k + 1) * 16 AS kc
          FROM f
         CROSS JOIN LATERAL generate_series(0, f.n_contact - 1) g(k)
    ), r AS (
        SELECT c.*,
               CASE WHEN c.k = 0 THEN CASE WHEN @extschema@.demo_random(seed, c.kc) < 0.8 THEN 1 ELSE 2 END
                    WHEN c.k = 1 THEN CASE WHEN @extschema@.demo_random(seed, c.kc) < 0.7 THEN 2 ELSE 3 END
                    ELSE (ARRAY[3, 4, 4, 5, 1, 3])[1 + floor(6 * @extschema@.demo_random(seed, c.kc))::integer] END AS role_no
          FROM c
    )
    SELECT r.contact_id, r.account_id, r.first_contact, r.n_contact, v_role[r.role_no] AS role,
           CASE WHEN rg.chinese
                THEN v_sur_cn[1 + floor(cardinality(v_sur_cn) * @extschema@.demo_random(seed, r.kc + 1))::integer]
                     || v_given_cn[1 + floor(cardinality(v_given_cn) * @extschema@.demo_random(seed, r.kc + 2))::integer]
                ELSE v_first_en[1 + floor(cardinality(v_first_en) * @extschema@.demo_random(seed, r.kc + 1))::integer] || ' '
                     || v_last_en[1 + floor(cardinality(v_last_en) * @extschema@.demo_random(seed, r.kc + 2))::integer] END AS name,
           CASE WHEN @extschema@.demo_random(seed, r.kc + 3) < 0.04 THEN NULL
                WHEN rg.chinese THEN v_title_cn[(r.role_no - 1) * 4 + 1 + floor(4 * @extschema@.demo_random(seed, r.kc + 4))::integer]
                ELSE v_title[(r.role_no - 1) * 5 + 1 + floor(5 * @extschema@.demo_random(seed, r.kc + 4))::integer] END AS title
      FROM r
      JOIN demo_region rg USING (rid);

    CREATE TEMP TABLE demo_acc_contact ON COMMIT DROP AS
    SELECT account_id, min(contact_id) AS first_contact, max(n_contact) AS n_contact
      FROM demo_contact GROUP BY account_id;

    -- Deals, the parts that do not depend on their kind: when (more recent,
    -- more deals; few on weekends; local office hours), which account,
    -- owner, source and competitor.  Ids follow creation time.
    CREATE TEMP TABLE demo_deal ON COMMIT DROP AS
    WITH d AS (
        SELECT g.i, (6::bigint << 40) + g.i::bigint * 1024 AS kd,
               width_bucket(v_acc_total * @extschema@.demo_random(seed, (6::bigint << 40) + g.i::bigint * 1024 + 1), v_acc_bounds) AS account_id,
               least(v_days - 1, floor(v_days * ln(1 + @extschema@.demo_random(seed, (6::bigint << 40) + g.i::bigint * 1024)
                                                       * (exp(v_growth) - 1)) / v_growth))::integer AS day
          FROM generate_series(1, n_opportunities) g(i)
    ), e AS (
        SELECT d.*, a.rid, a.segment, a.currency, a.u_owner, r.utc_offset,
               CASE WHEN extract(isodow FROM v_first + d.day) < 6 OR @extschema@.demo_random(seed, d.kd + 2) >= 0.8 THEN d.day
                    WHEN extract(isodow FROM v_first + d.day) = 6
                         THEN CASE WHEN d.day >= 1 THEN d.day - 1 ELSE d.day + 2 END
                    ELSE CASE WHEN d.day + 1 <= v_days - 1 THEN d.day + 1 ELSE d.day - 2 END END AS workday
          FROM d
          JOIN demo_account a USING (account_id)
          JOIN demo_region r USING (rid)
    ), f AS MATERIALIZED (
        SELECT e.*, c.reps, c.hires,
               (v_first + e.workday)::timestamp
                 + interval '1 second' * (round((8 + 10.99 * @extschema@.demo_random(seed, e.kd + 3)) * 3600) - e.utc_offset * 3600) AS created_at
          FROM e
          JOIN demo_cover c ON c.rid = e.rid AND c.role = 'ae'
    ), g AS (
        SELECT f.*,
               1 + floor(width_bucket(f.created_at::date, f.hires)
                         * CASE WHEN @extschema@.demo_random(seed, f.kd + 5) < 0.75 THEN f.u_owner
                                ELSE @extschema@.demo_random(seed, f.kd + 6) END)::integer AS owner_idx
          FROM f
    )
    SELECT row_number() OVER (ORDER BY g.created_at, g.i) AS id, g.i, g.kd, g.account_id, g.rid, g.segment,
           g.currency, g.created_at, g.owner_idx, g.reps[g.owner_idx] AS owner0,
           v_source[width_bucket(@extschema@.demo_random(seed, g.kd + 7), ARRAY[0, 0.30, 0.55, 0.67, 0.80, 0.90]::float8[])] AS source0,
           CASE WHEN @extschema@.demo_random(seed, g.kd + 8) < 0.45 THEN NULL
                WHEN g.rid = 4 THEN v_competitor_cn[1 + floor(cardinality(v_competitor_cn) * @extschema@.demo_random(seed, g.kd + 9))::integer]
                ELSE v_competitor[1 + floor(cardinality(v_competitor) * @extschema@.demo_random(seed, g.kd + 9))::integer] END AS competitor,
           -- an account's first deal is new business; later ones may be
           -- expansions or renewals (if the account has bought by then)
           CASE WHEN row_number() OVER (PARTITION BY g.account_id ORDER BY g.created_at, g.i) = 1
                     OR @extschema@.demo_random(seed, g.kd + 10) >= 0.45 THEN 'new'
                WHEN @extschema@.demo_random(seed, g.kd + 11) < 0.62 THEN 'expansion'
                ELSE 'renewal' END AS kind0
      FROM g;
    ANALYZE demo_deal;

    CREATE TEMP TABLE demo_dk (
        id bigint, i integer, kd bigint, kp bigint, phase integer, account_id integer,
        created_at timestamp, kind text, source text, pipeline_id integer, n_open integer,
        c integer, top integer, outcome text, stall boolean, reopen boolean, outcome2 text,
        scale float8, skip_p float8, reg_p float8, amount0 numeric, ec0 date, lost_reason text,
        from_lead boolean
    ) ON COMMIT DROP;
    CREATE TEMP TABLE demo_path (
        id bigint, ord integer, pos integer, skind text, stage_id bigint, at timestamp
    ) ON COMMIT DROP;
    CREATE TEMP TABLE demo_win (account_id integer, won_at timestamp) ON COMMIT DROP;

    -- Two phases: new business first; then expansions and renewals, which
    -- stay what they are only if their account had won a deal before they
    -- were created (else they are new business too).
    FOR v_phase IN 1..2 LOOP
        INSERT INTO demo_dk
        WITH d AS (
            SELECT d.*, r.skill, d.created_at::date - r.hired_on AS tenure,
                   CASE WHEN d.kind0 = 'new' OR w.won_at < d.created_at THEN d.kind0 ELSE 'new' END AS kind
              FROM demo_deal d
              JOIN demo_rep r ON r.rep_id = d.owner0
              LEFT JOIN demo_win w ON w.account_id = d.account_id
             WHERE CASE WHEN d.kind0 = 'new' THEN 1 ELSE 2 END = v_phase
        ), k AS (
            SELECT d.*,
                   CASE WHEN d.kind = 'new' THEN d.source0 ELSE 'Existing Customer' END AS source,
                   CASE d.kind WHEN 'expansion' THEN 2 WHEN 'renewal' THEN 4
                        ELSE CASE WHEN @extschema@.demo_random(seed, d.kd + 20) < CASE d.segment WHEN 'Enterprise' THEN 0.45
                                                                       WHEN 'Mid-Market' THEN 0.08 ELSE 0 END
                                  THEN 3 ELSE 1 END END AS pipeline_id,
                   CASE d.segment WHEN 'SMB' THEN 0.6 WHEN 'Mid-Market' THEN 1.0 ELSE 1.6 END AS segf
              FROM d
        ), w AS (
            SELECT k.*, p.n_open,
                   least(0.9, greatest(0.03,
                       CASE k.kind
                         WHEN 'renewal' THEN 0.80 + 0.03 * k.skill
                         WHEN 'expansion' THEN 0.50 + 0.06 * k.skill
                         ELSE 0.25 + 0.07 * k.skill
                              + CASE k.segment WHEN 'SMB' THEN 0.03 WHEN 'Enterprise' THEN -0.04 ELSE 0 END
                              + CASE k.source WHEN 'Referral' THEN 0.12 WHEN 'Partner' THEN 0.06
                                              WHEN 'Inbound' THEN 0.02 WHEN 'Outbound' THEN -0.05
                                              WHEN 'Paid Search' THEN -0.06 ELSE 0 END
                              - CASE WHEN k.competitor IS NOT NULL THEN 0.05 ELSE 0 END
                              - CASE WHEN k.pipeline_id = 3 THEN 0.03 ELSE 0 END
                              -- reps in their first half year win less
                              - CASE WHEN k.tenure < 180 THEN 0.06 ELSE 0 END
                       END)) AS p_win,
                   CASE WHEN k.pipeline_id IN (1, 3) AND @extschema@.demo_random(seed, k.kd + 23) < 0.15 THEN 2
                        WHEN k.pipeline_id = 2 AND @extschema@.demo_random(seed, k.kd + 23) < 0.10 THEN 2
                        ELSE 1 END AS c
              FROM k
              JOIN demo_pipe p USING (pipeline_id)
        ), o AS (
            SELECT w.*,
                   CASE WHEN @extschema@.demo_random(seed, w.kd + 24) < w.p_win THEN 'won'
                        WHEN @extschema@.demo_random(seed, w.kd + 25) < 0.07 THEN 'open'   -- never decided: a zombie
                        ELSE 'lost' END AS outcome
              FROM w
        )
        SELECT o.id, o.i, o.kd, (7::bigint << 40) + o.i::bigint * 8192, v_phase, o.account_id, o.created_at,
               o.kind, o.source, o.pipeline_id, o.n_open, o.c,
               -- the highest open stage reached: the last (or, skipping it,
               -- the one before) for wins; losses come early more often,
               -- and earlier still for skilled reps, who disqualify fast
               CASE WHEN o.outcome = 'won'
                    THEN greatest(o.c, o.n_open - CASE WHEN @extschema@.demo_random(seed, o.kd + 27) < 0.12 THEN 1 ELSE 0 END)
                    ELSE least(o.n_open, o.c + floor((o.n_open - o.c + 1)
                                                     * power(@extschema@.demo_random(seed, o.kd + 26),
                                                             least(2.5, greatest(0.7, 1.3 + 0.35 * o.skill)))
                                                    )::integer) END,
               o.outcome,
               @extschema@.demo_random(seed, o.kd + 28) < 0.08,
               o.outcome <> 'open' AND @extschema@.demo_random(seed, o.kd + 30) < 0.028,
               CASE WHEN o.outcome = 'lost'
                    THEN CASE WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.35 THEN 'won'
                              WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.8 THEN 'lost' ELSE 'open' END
                    ELSE CASE WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.7 THEN 'won'
                              WHEN @extschema@.demo_random(seed, o.kd + 31) < 0.9 THEN 'lost' ELSE 'open' END END,
               o.segf * CASE WHEN o.kind = 'expansion' THEN 0.8 ELSE 1 END
                   * exp(-0.18 * o.skill) * (0.75 + 0.5 * @extschema@.demo_random(seed, o.kd + 29)),
               0.07 + CASE WHEN o.skill < -0.5 THEN 0.04 ELSE 0 END,
               0.035 + CASE WHEN o.skill < 0 THEN 0.025 ELSE 0 END,
               -- log-normal amount by segment, in the account's currency
               greatest(power(10::numeric, -cu.digits),
                        round((CASE o.segment WHEN 'SMB' THEN 9000 WHEN 'Mid-Market' THEN 38000 ELSE 140000 END
                               * exp(CASE o.segment WHEN 'SMB' THEN 0.55 WHEN 'Mid-Market' THEN 0.6 ELSE 0.7 END
                                     * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, o.kd + 21)))
                                     * cos(2 * pi() * @extschema@.demo_random(seed, o.kd + 22)))
                               * CASE o.pipeline_id WHEN 3 THEN 2.2 WHEN 2 THEN 0.35 WHEN 4 THEN 0.9 ELSE 1 END
                               / cu.usd_per)::numeric, cu.digits)),
               -- the close date the rep first puts in, usually optimistic
               o.created_at::date + 7 + round(CASE o.pipeline_id WHEN 1 THEN 55 WHEN 2 THEN 35 WHEN 3 THEN 120 ELSE 40 END
                                              * o.segf * (0.45 + 0.6 * @extschema@.demo_random(seed, o.kd + 34)))::integer,
               CASE WHEN o.competitor IS NOT NULL AND @extschema@.demo_random(seed, o.kd + 32) < 0.45 THEN 'Lost to competitor'
                    ELSE v_lost_reason[1 + floor(cardinality(v_lost_reason) * @extschema@.demo_random(seed, o.kd + 33))::integer] END,
               o.kind = 'new' AND @extschema@.demo_random(seed, o.kd + 12) < CASE o.source0 WHEN 'Inbound' THEN 0.8 WHEN 'Paid Search' THEN 0.85
                                                                  WHEN 'Event' THEN 0.75 WHEN 'Outbound' THEN 0.45
                                                                  WHEN 'Referral' THEN 0.35 ELSE 0.25 END
          FROM o
          JOIN demo_cur cu ON cu.code = o.currency;

        -- The stage path.  Forward moves of one stage, sometimes two (a
        -- skip), from the creation stage up to the top stage; now and then
        -- a regression (back one or two stages, then forward again); then
        -- won or lost, and rarely a reopening.  Each step stays a
        -- log-normal time around the stage's norm (slower in big
        -- segments, faster for skilled reps, long for stalled deals).
        -- Steps after until are cut: those deals are still open.
        INSERT INTO demo_path (id, ord, pos, skind, stage_id, at)
        WITH mv AS (
            SELECT k.id, k.kp, k.top, g.j,
                   k.c + sum(CASE WHEN g.j = 0 THEN 0
                                  WHEN @extschema@.demo_random(seed, k.kp + g.j * 32) < k.skip_p THEN 2
                                  ELSE 1 END) OVER (PARTITION BY k.id ORDER BY g.j) AS raw
              FROM demo_dk k
             CROSS JOIN LATERAL generate_series(0, k.top - k.c) g(j)
             WHERE k.phase = v_phase
        ), fwd AS (
            SELECT x.id, x.kp, x.j, least(x.raw, x.top) AS pos
              FROM (SELECT mv.*, lag(mv.raw) OVER (PARTITION BY mv.id ORDER BY mv.j) AS prev FROM mv) x
             WHERE x.j = 0 OR x.prev < x.top
        ), step AS (
            SELECT f.id, f.j * 4 AS ord, f.pos, 'open' AS skind FROM fwd f
            UNION ALL
            SELECT f.id, f.j * 4 + b.sub,
                   CASE WHEN b.sub = 2 THEN f.pos
                        WHEN f.pos >= 3 AND @extschema@.demo_random(seed, f.kp + f.j * 32 + 2) < 0.25 THEN f.pos - 2
                        ELSE f.pos - 1 END,
                   'open'
              FROM fwd f
              JOIN demo_dk k USING (id)
             CROSS JOIN (VALUES (1), (2)) b(sub)
             WHERE f.j >= 1 AND f.pos >= 2 AND @extschema@.demo_random(seed, f.kp + f.j * 32 + 1) < k.reg_p
            UNION ALL
            SELECT k.id, 1000, NULL, k.outcome FROM demo_dk k WHERE k.phase = v_phase AND k.outcome <> 'open'
            UNION ALL
            SELECT k.id, 1001, CASE WHEN k.outcome = 'won' THEN k.n_open ELSE k.top END, 'open'
              FROM demo_dk k WHERE k.phase = v_phase AND k.reopen
            UNION ALL
            SELECT k.id, 1002, NULL, k.outcome2
              FROM demo_dk k WHERE k.phase = v_phase AND k.reopen AND k.outcome2 <> 'open'
        ), timed AS (
            SELECT s.id, s.ord, s.pos, s.skind, k.created_at,
                   CASE s.skind WHEN 'open' THEN pp.first_id + s.pos - 1
                                WHEN 'won' THEN pp.won_id ELSE pp.lost_id END AS stage_id,
                   greatest(3600, round(86400 *
                     CASE WHEN s.skind <> 'open' THEN 7 + 50 * @extschema@.demo_random(seed, k.kp + s.ord * 8 + 3)  -- until reopened
                          ELSE pp.base_days[s.pos] * k.scale
                               * exp(0.7 * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, k.kp + s.ord * 8 + 3)))
                                         * cos(2 * pi() * @extschema@.demo_random(seed, k.kp + s.ord * 8 + 4)))
                               * CASE WHEN s.ord % 4 <> 0 THEN 0.5 ELSE 1 END
                               * CASE WHEN lead(s.skind) OVER w = 'lost' THEN 1.8 ELSE 1 END
                               * CASE WHEN k.stall AND lead(s.ord) OVER w = 1000 THEN 6 ELSE 1 END
                     END))::bigint AS stay_s
              FROM step s
              JOIN demo_dk k USING (id)
              JOIN demo_pipe pp ON pp.pipeline_id = k.pipeline_id
            WINDOW w AS (PARTITION BY s.id ORDER BY s.ord)
        ), placed AS (
            SELECT t.id, t.ord, t.pos, t.skind, t.stage_id,
                   t.created_at + interval '1 second'
                       * coalesce(sum(t.stay_s) OVER (PARTITION BY t.id ORDER BY t.ord
                                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS at
              FROM timed t
        )
        SELECT id, ord, pos, skind, stage_id, at FROM placed WHERE at < v_end;

        IF v_phase = 1 THEN
            INSERT INTO demo_win
            SELECT k.account_id, min(p.at)
              FROM demo_path p JOIN demo_dk k USING (id)
             WHERE p.skind = 'won'
             GROUP BY k.account_id;
            ANALYZE demo_win;
        END IF;
    END LOOP;

    -- Everything known about a deal, with its state at until.
    CREATE TEMP TABLE demo_opp ON COMMIT DROP AS
    SELECT d.id, d.i, d.kd, d.account_id, d.rid, d.segment, d.currency, cu.digits, d.created_at,
           d.owner0, d.owner_idx, d.competitor, k.kind, k.source, k.pipeline_id, k.n_open, k.amount0,
           k.ec0, k.outcome, k.from_lead, f.skind AS final_kind, coalesce(r.timezone, r.region_zone) AS tz,
           ac.first_contact, ac.n_contact,
           CASE WHEN f.skind <> 'open' THEN f.at END AS closed_at,
           CASE WHEN f.skind = 'lost' THEN k.lost_reason END AS lost_reason,
           a.name || ' - '
             || CASE k.kind WHEN 'new' THEN v_product[1 + floor(cardinality(v_product) * @extschema@.demo_random(seed, d.kd + 35))::integer]
                            WHEN 'expansion' THEN v_product[1 + floor(cardinality(v_product) * @extschema@.demo_random(seed, d.kd + 35))::integer]
                                                  || ' expansion'
                            ELSE 'Renewal ' || extract(year FROM k.ec0) END AS name,
           v_product[1 + floor(cardinality(v_product) * @extschema@.demo_random(seed, d.kd + 35))::integer] AS product
      FROM demo_deal d
      JOIN demo_dk k USING (id)
      JOIN demo_cur cu ON cu.code = d.currency
      JOIN demo_account a ON a.account_id = d.account_id
      JOIN demo_rep r ON r.rep_id = d.owner0
      JOIN demo_acc_contact ac ON ac.account_id = d.account_id
      JOIN (SELECT DISTINCT ON (p.id) p.id, p.skind, p.at FROM demo_path p ORDER BY p.id, p.ord DESC) f USING (id);
    ANALYZE demo_opp;

    -- Forecast-field history: a few changes spread over each deal's open
    -- life (close date pushed or pulled in, amount up or down, one owner
    -- change at most, a forecast category override), and for most closed
    -- deals a last snapshot at the close that sets the close date to the
    -- real one.  Values chain: a push moves the close date from the later
    -- of the current one and the day of the change, so with A the running
    -- sum of the moves, ec = A + max(ec0, max over pushes of (day - A
    -- before the push)).
    CREATE TEMP TABLE demo_hist ON COMMIT DROP AS
    WITH b AS (
        SELECT o.id, (8::bigint << 40) + o.i::bigint * 64 AS kh, o.created_at, o.closed_at,
               coalesce(o.closed_at, v_end) AS end_at, o.amount0, o.digits,
               o.ec0 - DATE '2000-01-01' AS ec0, o.owner0, o.owner_idx, o.rid,
               CASE WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.45 THEN 0 WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.72 THEN 1
                    WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.87 THEN 2 WHEN @extschema@.demo_random(seed, o.kd + 40) < 0.95 THEN 3
                    ELSE 4 + floor(2 * @extschema@.demo_random(seed, o.kd + 41))::integer END AS n_chg
          FROM demo_opp o
    ), c AS (
        -- one change per stratum of the life, so they come in order
        SELECT b.*, g.k,
               b.created_at + interval '1 second'
                   * floor(3600 + (extract(epoch FROM b.end_at - b.created_at)::float8 - 3600)
                                  * (g.k - 1 + @extschema@.demo_random(seed, b.kh + g.k * 8)) / b.n_chg) AS at,
               CASE WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.40 THEN 'push'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.50 THEN 'pull'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.65 THEN 'up'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.80 THEN 'down'
                    WHEN @extschema@.demo_random(seed, b.kh + g.k * 8 + 1) < 0.90 THEN 'owner'
                    ELSE 'forecast' END AS typ0
          FROM b
         CROSS JOIN LATERAL generate_series(1, b.n_chg) g(k)
         WHERE b.end_at - b.created_at > interval '2 hours'
        UNION ALL
        SELECT b.*, 7, b.closed_at, 'close'
          FROM b
         WHERE b.closed_at IS NOT NULL AND @extschema@.demo_random(seed, b.kh + 7 * 8) < 0.7
    ), c2 AS (
        -- the first owner change only, and only with someone to hand over to
        SELECT c.*, width_bucket(c.at::date, cv.hires) AS n_elig, cv.reps,
               count(*) FILTER (WHERE c.typ0 = 'owner') OVER (PARTITION BY c.id ORDER BY c.k) AS owner_rank
          FROM c
          JOIN demo_cover cv ON cv.rid = c.rid AND cv.role = 'ae'
    ), c3 AS (
        SELECT c2.*,
               CASE WHEN t.typ = 'push' THEN 14 + floor(50 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 3))::integer
                    WHEN t.typ = 'pull' THEN -(7 + floor(21 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 3))::integer)
                    ELSE 0 END AS a,
               CASE WHEN t.typ = 'push' THEN c2.at::date - DATE '2000-01-01' END AS d,
               CASE WHEN t.typ = 'up' THEN ln(1.1 + 0.4 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 4))
                    WHEN t.typ = 'down' THEN ln(0.6 + 0.35 * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 4))
                    ELSE 0 END AS lm,
               CASE WHEN t.typ = 'owner'
                    THEN c2.reps[(c2.owner_idx + floor((c2.n_elig - 1) * @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 2))::integer)
                                 % c2.n_elig + 1] END AS new_owner,
               CASE WHEN t.typ = 'forecast'
                    THEN CASE WHEN @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 5) < 0.5 THEN 'commit'
                              WHEN @extschema@.demo_random(seed, c2.kh + c2.k * 8 + 5) < 0.8 THEN 'best_case' END END AS fc,
               t.typ
          FROM c2
         CROSS JOIN LATERAL (SELECT CASE WHEN c2.typ0 = 'owner' AND (c2.owner_rank > 1 OR c2.n_elig < 2)
                                         THEN 'push' ELSE c2.typ0 END AS typ) t
    ), c4 AS (
        SELECT c3.id, c3.k, c3.at, c3.typ, c3.fc, c3.amount0, c3.digits, c3.ec0, c3.owner0, c3.closed_at,
               c3.a, c3.d,
               sum(c3.a) OVER w AS acc,
               sum(c3.lm) OVER w AS lm,
               max(c3.new_owner) OVER w AS owner1,
               count(*) FILTER (WHERE c3.typ IN ('forecast', 'close')) OVER w AS fc_group
          FROM c3
        WINDOW w AS (PARTITION BY c3.id ORDER BY c3.k)
    ), c5 AS (
        SELECT c4.*, max(c4.d - (c4.acc - c4.a)) OVER (PARTITION BY c4.id ORDER BY c4.k) AS floor_d
          FROM c4
    )
    SELECT DISTINCT ON (x.id, x.changed_at) x.*
      FROM (SELECT c5.id, c5.k, c5.at AS changed_at,
                   CASE WHEN c5.lm = 0 THEN c5.amount0
                        ELSE greatest(power(10::numeric, -c5.digits),
                                      round((c5.amount0::float8 * exp(c5.lm))::numeric, c5.digits)) END AS amount,
                   CASE WHEN c5.typ = 'close' THEN c5.closed_at::date
                        ELSE DATE '2000-01-01' + (c5.acc + greatest(c5.ec0, c5.floor_d))::integer END AS expected_close,
                   first_value(c5.fc) OVER (PARTITION BY c5.id, c5.fc_group ORDER BY c5.k) AS forecast_category,
                   coalesce(c5.owner1, c5.owner0) AS owner_id
              FROM c5
            UNION ALL
            SELECT o.id, 0, o.created_at, o.amount0, o.ec0, NULL, o.owner0 FROM demo_opp o) x
     ORDER BY x.id, x.changed_at, x.k DESC;
    CREATE INDEX ON demo_hist (id, changed_at);
    ANALYZE demo_hist;

    -- The deal's values at until, and when its owner changed.
    CREATE TEMP TABLE demo_last ON COMMIT DROP AS
    SELECT DISTINCT ON (h.id) h.* FROM demo_hist h ORDER BY h.id, h.changed_at DESC;
    CREATE TEMP TABLE demo_owner ON COMMIT DROP AS
    SELECT DISTINCT ON (h.id) h.id, h.changed_at AS chg_at, h.owner_id AS owner1
      FROM demo_hist h JOIN demo_opp o USING (id)
     WHERE h.owner_id <> o.owner0
     ORDER BY h.id, h.changed_at;

    -- Leads: one behind most new deals (converted when the deal was
    -- created), and as many again that were disqualified, qualified and
    -- left, or never worked.
    CREATE TEMP TABLE demo_lead ON COMMIT DROP AS
    WITH conv AS (
        SELECT o.i AS n, 1 AS src, (9::bigint << 40) + o.i::bigint * 16 AS kl, o.id AS opp_id, o.account_id,
               o.rid, o.source,
               o.created_at - interval '1 second'
                   * floor(86400 * (0.2 + 30 * power(@extschema@.demo_random(seed, (9::bigint << 40) + o.i::bigint * 16), 2))) AS created_at,
               o.created_at AS converted_at
          FROM demo_opp o
         WHERE o.from_lead
    ), conv2 AS (
        SELECT c.*,
               CASE WHEN @extschema@.demo_random(seed, c.kl + 1) < 0.95
                    THEN c.created_at + (c.converted_at - c.created_at) * (0.3 + 0.6 * @extschema@.demo_random(seed, c.kl + 2)) END AS qualified_at,
               NULL::timestamp AS disqualified_at
          FROM conv c
    ), other AS (
        SELECT g.n, 2 AS src, (9::bigint << 40) + (n_opportunities + g.n)::bigint * 16 AS kl
          FROM generate_series(1, greatest(0, round(1.6 * n_opportunities)::integer
                                              - (SELECT count(*) FROM conv)::integer)) g(n)
    ), other2 AS (
        SELECT o.*, a.account_id,
               coalesce(a.rid, width_bucket(@extschema@.demo_random(seed, o.kl + 1), ARRAY[0, 0.40, 0.70, 0.85, 0.95]::float8[])) AS rid,
               v_source[width_bucket(@extschema@.demo_random(seed, o.kl + 2), ARRAY[0, 0.34, 0.54, 0.60, 0.68, 0.82]::float8[])] AS source,
               v_start - interval '30 days'
                 + interval '1 second' * floor(extract(epoch FROM v_end - v_start + interval '30 days')::float8
                                               * ln(1 + @extschema@.demo_random(seed, o.kl + 4) * (exp(v_growth) - 1)) / v_growth) AS created_at
          FROM other o
          LEFT JOIN demo_account a ON @extschema@.demo_random(seed, o.kl + 3) < 0.4
                                  AND a.account_id = 1 + floor(v_n_acc * @extschema@.demo_random(seed, o.kl + 5))::integer
    ), other3 AS (
        SELECT o.n, o.src, o.kl, NULL::bigint AS opp_id, o.account_id, o.rid, o.source, o.created_at,
               NULL::timestamp AS converted_at,
               CASE WHEN @extschema@.demo_random(seed, o.kl + 6) >= 0.48 AND @extschema@.demo_random(seed, o.kl + 6) < 0.73
                      OR (@extschema@.demo_random(seed, o.kl + 6) < 0.48 AND @extschema@.demo_random(seed, o.kl + 7) < 0.25)
                    THEN o.created_at + interval '1 second' * floor(86400 * (0.5 + 15 * power(@extschema@.demo_random(seed, o.kl + 8), 2))) END
                   AS qualified_at,
               CASE WHEN @extschema@.demo_random(seed, o.kl + 6) < 0.48
                    THEN o.created_at + interval '1 second' * floor(86400 * (1 + 40 * power(@extschema@.demo_random(seed, o.kl + 9), 2))) END
                   AS disqualified_at
          FROM other2 o
    ), all_leads AS (
        SELECT n, src, kl, opp_id, account_id, rid, source, created_at, converted_at,
               qualified_at, disqualified_at FROM conv2
        UNION ALL
        SELECT n, src, kl, opp_id, account_id, rid, source, created_at, converted_at,
               CASE WHEN qualified_at < v_end AND qualified_at < coalesce(disqualified_at, 'infinity') THEN qualified_at END,
               CASE WHEN disqualified_at < v_end THEN disqualified_at END
          FROM other3
    )
    SELECT row_number() OVER (ORDER BY l.created_at, l.src, l.n) AS lead_id, l.*,
           CASE WHEN @extschema@.demo_random(seed, l.kl + 10) < 0.82 AND width_bucket(l.created_at::date, cv.hires) > 0
                THEN cv.reps[1 + floor(width_bucket(l.created_at::date, cv.hires)
                                       * @extschema@.demo_random(seed, l.kl + 11))::integer] END AS rep_id,
           -- the SDR works a lead until it is decided, or three weeks
           least(coalesce(least(l.qualified_at, l.disqualified_at, l.converted_at), l.created_at + interval '21 days'),
                 v_end) AS worked_until,
           ac.first_contact, ac.n_contact
      FROM all_leads l
      JOIN demo_cover cv ON cv.rid = l.rid AND cv.role = 'sdr'
      LEFT JOIN demo_acc_contact ac USING (account_id);

    v_t := sales_kpi_internal.demo_progress('deals generated, with their history, accounts and people', (SELECT count(*) FROM demo_opp), v_t);

    -- Now the tables, parents first.
    INSERT INTO @extschema@.account (account_id, name, industry, segment, region, created_at)
    SELECT a.account_id, a.name, a.industry, a.segment, r.region,
           coalesce(least(f.first_deal, l.first_lead)
                      - interval '1 second' * floor(86400 * (1 + 240 * @extschema@.demo_random(seed, a.ka + 20))),
                    v_start - interval '1 year'
                      + interval '1 second' * floor(extract(epoch FROM v_end - v_start + interval '1 year')::float8
                                                    * @extschema@.demo_random(seed, a.ka + 21)))
             AT TIME ZONE 'UTC'
      FROM demo_account a
      JOIN demo_region r USING (rid)
      LEFT JOIN (SELECT account_id, min(created_at) AS first_deal FROM demo_opp GROUP BY account_id) f USING (account_id)
      LEFT JOIN (SELECT account_id, min(created_at) AS first_lead FROM demo_lead GROUP BY account_id) l USING (account_id)
     ORDER BY a.account_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('account', v_n, v_t);

    INSERT INTO @extschema@.contact (contact_id, account_id, name, title, role)
    SELECT contact_id, account_id, name, title, role FROM demo_contact ORDER BY contact_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('contact', v_n, v_t);

    INSERT INTO @extschema@.opportunity
           (opportunity_id, pipeline_id, account_id, owner_id, name, kind, amount, currency, source,
            competitor, created_at, expected_close, closed_at, stage_id, lost_reason, forecast_category,
            stage_entered_at, snapshot_at, product)
    SELECT o.id, o.pipeline_id, o.account_id, l.owner_id, o.name, o.kind, l.amount, o.currency, o.source,
           o.competitor, o.created_at AT TIME ZONE 'UTC', l.expected_close,
           CASE WHEN f.skind <> 'open' THEN f.at AT TIME ZONE 'UTC' END, f.stage_id,
           o.lost_reason, l.forecast_category, f.at AT TIME ZONE 'UTC', l.changed_at AT TIME ZONE 'UTC',
           o.product
      FROM demo_opp o
      JOIN demo_last l USING (id)
      JOIN (SELECT DISTINCT ON (p.id) p.id, p.stage_id, p.skind, p.at
              FROM demo_path p ORDER BY p.id, p.ord DESC) f USING (id)
     ORDER BY o.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('opportunity', v_n, v_t);

    -- All stage events in one statement; each carries the deal's amount
    -- and owner at that moment.  Ids follow time; rows go in deal by deal
    -- (local foreign key look-ups and index inserts).
    INSERT INTO @extschema@.stage_event (stage_event_id, opportunity_id, stage_id, entered_at, amount, rep_id)
    SELECT row_number() OVER (ORDER BY p.at, p.id, p.ord), p.id, p.stage_id,
           p.at AT TIME ZONE 'UTC', h.amount, h.owner_id
      FROM demo_path p
     CROSS JOIN LATERAL (SELECT h.amount, h.owner_id
                           FROM demo_hist h
                          WHERE h.id = p.id AND h.changed_at <= p.at
                          ORDER BY h.changed_at DESC
                          LIMIT 1) h
     ORDER BY p.id, p.ord;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('stage_event', v_n, v_t);

    INSERT INTO @extschema@.opportunity_history
           (opportunity_id, changed_at, amount, expected_close, forecast_category, owner_id)
    SELECT h.id, h.changed_at AT TIME ZONE 'UTC', h.amount, h.expected_close, h.forecast_category, h.owner_id
      FROM demo_hist h
     ORDER BY h.id, h.changed_at;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('opportunity_history', v_n, v_t);

    SELECT format('opportunity %s: %s', o.opportunity_id,
                  CASE WHEN e.stage_id IS DISTINCT FROM o.stage_id THEN 'stage differs from its newest event'
                       ELSE 'forecast fields differ from the newest history row' END)
      INTO v_bad
      FROM @extschema@.opportunity o
      LEFT JOIN (SELECT DISTINCT ON (opportunity_id) opportunity_id, stage_id, entered_at
                   FROM @extschema@.stage_event
                  ORDER BY opportunity_id, entered_at DESC, stage_event_id DESC) e USING (opportunity_id)
      LEFT JOIN (SELECT DISTINCT ON (opportunity_id) *
                   FROM @extschema@.opportunity_history
                  ORDER BY opportunity_id, changed_at DESC) h USING (opportunity_id)
     WHERE (e.stage_id, e.entered_at) IS DISTINCT FROM (o.stage_id, o.stage_entered_at)
        OR (h.amount, h.expected_close, h.forecast_category, h.owner_id, h.changed_at)
           IS DISTINCT FROM (o.amount, o.expected_close, o.forecast_category, o.owner_id, o.snapshot_at)
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'load_demo produced an inconsistent deal: %', v_bad
            USING ERRCODE = 'internal_error';
    END IF;

    INSERT INTO @extschema@.lead (lead_id, created_at, source, rep_id, account_id, qualified_at,
                                  disqualified_at, converted_at, opportunity_id)
    SELECT lead_id, created_at AT TIME ZONE 'UTC', source, rep_id, account_id, qualified_at AT TIME ZONE 'UTC',
           disqualified_at AT TIME ZONE 'UTC', converted_at AT TIME ZONE 'UTC', opp_id
      FROM demo_lead
     ORDER BY lead_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('lead', v_n, v_t);

    -- One to four people of the account per deal; won deals more often
    -- involve the first contact, usually the decision maker.
    INSERT INTO @extschema@.opportunity_contact (opportunity_id, contact_id, role)
    SELECT x.id, c.contact_id, CASE WHEN @extschema@.demo_random(seed, x.ko + 3 + g.t) >= 0.1 THEN c.role END
      FROM (SELECT o.id, o.final_kind, o.n_contact, o.first_contact, (17::bigint << 40) + o.i::bigint * 16 AS ko
              FROM demo_opp o) x
     CROSS JOIN LATERAL (SELECT 1 + floor(least(x.n_contact, 4) * @extschema@.demo_random(seed, x.ko))::integer AS n,
                                CASE WHEN x.final_kind = 'won' AND @extschema@.demo_random(seed, x.ko + 1) < 0.6 THEN 0
                                     ELSE floor(x.n_contact * @extschema@.demo_random(seed, x.ko + 2))::integer END AS s) p
     CROSS JOIN LATERAL generate_series(0, p.n - 1) g(t)
      JOIN demo_contact c ON c.contact_id = x.first_contact + (p.s + g.t) % x.n_contact
     ORDER BY 1, 2;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('opportunity_contact', v_n, v_t);

    -- Milestones: reached during the stay in their stage, most required
    -- ones before moving forward, fewer before a regression or a loss,
    -- some of a skipped stage's, and in the current stage more the longer
    -- the deal has sat there.  Completion times keep the owner's office
    -- hours when they fit the stay.
    CREATE TEMP TABLE demo_me ON COMMIT DROP AS
    WITH stay AS (
        SELECT p.id, p.ord, p.pos, p.at, lead(p.at) OVER w AS left_at, lead(p.skind) OVER w AS next_kind,
               lead(p.pos) OVER w AS next_pos
          FROM demo_path p
        WINDOW w AS (PARTITION BY p.id ORDER BY p.ord)
    ), s AS (
        SELECT st.*, o.i, o.pipeline_id, o.final_kind, o.tz,
               CASE WHEN st.next_kind = 'won' THEN o.n_open + 1 ELSE st.next_pos END AS next_eff
          FROM stay st
          JOIN demo_opp o USING (id)
         WHERE st.pos IS NOT NULL
    ), cand AS (
        SELECT s.id, s.i, s.ord, s.at, coalesce(s.left_at, v_end) AS left_at, s.final_kind, s.tz, m.milestone_id,
               m.required, m.position, m.n_in_stage, m.akind,
               CASE WHEN s.left_at IS NULL THEN 'current' WHEN s.next_kind = 'lost' THEN 'lost'
                    WHEN s.next_eff > s.pos THEN 'forward' ELSE 'back' END AS how
          FROM s
          JOIN demo_ms m ON m.pipeline_id = s.pipeline_id AND m.stage_pos = s.pos
        UNION ALL
        SELECT s.id, s.i, s.ord, s.at, s.left_at, s.final_kind, s.tz, m.milestone_id, m.required, m.position,
               m.n_in_stage, m.akind, 'skipped'
          FROM s
          JOIN demo_ms m ON m.pipeline_id = s.pipeline_id AND m.stage_pos > s.pos AND m.stage_pos < s.next_eff
         WHERE s.left_at IS NOT NULL
    ), keyed AS (
        SELECT c.*, c.i::bigint * 65536 + c.ord * 64 + c.milestone_id AS km FROM cand c
    ), done AS MATERIALIZED (
        SELECT c.*,
               c.at + (c.left_at - c.at) * ((c.position - 0.95 + 0.9 * @extschema@.demo_random(seed, (13::bigint << 40) + c.km))
                                            / c.n_in_stage) AS t0
          FROM keyed c
         WHERE @extschema@.demo_random(seed, (12::bigint << 40) + c.km)
               < CASE c.how
                   WHEN 'forward' THEN CASE WHEN NOT c.required THEN 0.45 WHEN c.final_kind = 'won' THEN 0.95 ELSE 0.85 END
                   WHEN 'skipped' THEN CASE WHEN c.required THEN 0.35 ELSE 0.15 END
                   WHEN 'current' THEN CASE WHEN c.required THEN 0.85 ELSE 0.4 END
                                       * least(1, extract(epoch FROM c.left_at - c.at)::float8 / (14 * 86400))
                   ELSE CASE WHEN c.required THEN 0.5 ELSE 0.25 END END
    ), snapped AS MATERIALIZED (
        SELECT w.id, w.milestone_id, w.akind, w.at, w.left_at, w.t0,
               (((w.t0 AT TIME ZONE 'UTC') AT TIME ZONE w.tz)::date
                  + interval '1 second' * floor(3600 * (9 + 8 * @extschema@.demo_random(seed, (19::bigint << 40) + w.km))))
                 AT TIME ZONE w.tz AT TIME ZONE 'UTC' AS t1
          FROM done w
    )
    SELECT row_number() OVER (ORDER BY x.id, x.milestone_id) AS me_no, x.*
      FROM (SELECT DISTINCT ON (s.id, s.milestone_id) s.id, s.milestone_id, s.akind,
                   date_trunc('second', CASE WHEN s.t1 >= s.at AND s.t1 < s.left_at THEN s.t1 ELSE s.t0 END)
                       AS completed_at
              FROM snapped s
             ORDER BY s.id, s.milestone_id, completed_at) x;

    INSERT INTO @extschema@.milestone_event (opportunity_id, milestone_id, completed_at)
    SELECT id, milestone_id, completed_at AT TIME ZONE 'UTC' FROM demo_me ORDER BY id, milestone_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('milestone_event', v_n, v_t);

    -- Activities: everyday touches over each deal's life (more for busy
    -- reps, won deals and long cycles), the step that reached some of the
    -- milestones, and SDR calls and emails on leads.  Times follow the rep's
    -- local working pattern (the hour drawn in the rep's zone, most weekend
    -- work moved to Friday or Monday); calls connect about a third of the
    -- time, more often in the morning and late afternoon.
    INSERT INTO @extschema@.activity (activity_id, rep_id, opportunity_id, account_id, contact_id, kind,
                                      occurred_at, duration_s, connected, milestone_id)
    WITH deal_touch AS (
        SELECT 1 AS src, o.id AS ent, g.k, (10::bigint << 40) + o.i::bigint * 1024 + g.k * 16 AS ka,
               o.id AS opp_id, o.account_id, o.created_at AS lo,
               least(coalesce(o.closed_at + interval '2 days', v_end), v_end) AS hi,
               NULL::bigint AS milestone_id, NULL::text AS akind, o.owner0 AS rep_id, o.first_contact, o.n_contact
          FROM demo_opp o
          JOIN demo_rep r ON r.rep_id = o.owner0
         CROSS JOIN LATERAL generate_series(1, least(60, 1 + floor(
                 @extschema@.demo_random(seed, o.kd + 50) * r.hustle * CASE o.final_kind WHEN 'won' THEN 1.3 WHEN 'lost' THEN 0.9 ELSE 1 END
                 * (0.18 + 0.35 * power(extract(epoch FROM coalesce(o.closed_at, v_end) - o.created_at)::float8 / 86400,
                                       0.6))
               )::integer)) g(k)
    ), touch AS (
        SELECT t.src, t.ent, t.k, t.ka, t.opp_id, t.account_id, t.lo, t.hi, t.milestone_id, t.akind,
               t.lo + (t.hi - t.lo) * @extschema@.demo_random(seed, t.ka) AS t0, t.rep_id, t.first_contact, t.n_contact
          FROM deal_touch t
        UNION ALL
        SELECT 2, m.id, m.milestone_id::integer, (20::bigint << 40) + m.me_no * 16, m.id, o.account_id,
               m.completed_at, m.completed_at, m.milestone_id, m.akind, m.completed_at, o.owner0,
               o.first_contact, o.n_contact
          FROM demo_me m
          JOIN demo_opp o USING (id)
         WHERE @extschema@.demo_random(seed, (20::bigint << 40) + m.me_no * 16 + 15) < 0.35
        UNION ALL
        SELECT 3, l.lead_id, g.k, (11::bigint << 40) + l.lead_id * 64 + g.k * 16, NULL, l.account_id,
               l.created_at, l.worked_until, NULL, NULL,
               l.created_at + (l.worked_until - l.created_at) * @extschema@.demo_random(seed, (11::bigint << 40) + l.lead_id * 64 + g.k * 16),
               l.rep_id, l.first_contact, l.n_contact
          FROM demo_lead l
         CROSS JOIN LATERAL generate_series(1, floor(3 * @extschema@.demo_random(seed, (11::bigint << 40) + l.lead_id * 64))::integer) g(k)
         WHERE l.rep_id IS NOT NULL
    ), kinded AS MATERIALIZED (
        SELECT t.src, t.ent, t.k, t.ka, t.opp_id, t.account_id, t.lo, t.hi, t.milestone_id, x.rep_id,
               t.first_contact, t.n_contact, t.t0,
               r.skill, coalesce(r.timezone, r.region_zone) AS tz, r.skill >= 0.8 AS top,
               coalesce(t.akind,
                        CASE WHEN t.src = 3 THEN CASE WHEN @extschema@.demo_random(seed, t.ka + 1) < 0.7 THEN 'call' ELSE 'email' END
                             ELSE (ARRAY['call', 'email', 'meeting', 'demo', 'proposal', 'content', 'other'])
                                  [width_bucket(@extschema@.demo_random(seed, t.ka + 1), ARRAY[0, 0.55, 0.75, 0.84, 0.88, 0.90, 0.96]::float8[])]
                        END) AS kind
          FROM touch t
          -- the deal's owner at the time
          LEFT JOIN demo_owner oc ON oc.id = t.opp_id
         CROSS JOIN LATERAL (SELECT CASE WHEN oc.chg_at <= t.t0 THEN oc.owner1 ELSE t.rep_id END AS rep_id) x
          JOIN demo_rep r ON r.rep_id = x.rep_id
    ), localized AS MATERIALIZED (
        SELECT k.*, ((k.t0 AT TIME ZONE 'UTC') AT TIME ZONE k.tz) AS lt0,
               width_bucket(@extschema@.demo_random(seed, k.ka + 2),
                            CASE WHEN k.kind = 'call' AND k.top THEN v_h_call_top
                                 WHEN k.kind = 'call' THEN v_h_call
                                 WHEN k.kind IN ('email', 'content') THEN v_h_mail
                                 ELSE v_h_work END) - 1 AS hour
          FROM kinded k
    ), moved AS MATERIALIZED (
        -- the local time at the drawn hour, most weekend work moved to a
        -- weekday of the same week, and back to UTC
        SELECT l.*, w.lt1, w.lt1 AT TIME ZONE l.tz AT TIME ZONE 'UTC' AS t1
          FROM localized l
         CROSS JOIN LATERAL (
               SELECT (l.lt0::date
                       - CASE WHEN extract(isodow FROM l.lt0) < 6 OR @extschema@.demo_random(seed, l.ka + 3) >= 0.85 THEN 0
                              ELSE extract(isodow FROM l.lt0)::integer - 5 + floor(5 * @extschema@.demo_random(seed, l.ka + 4))::integer END)
                      + interval '1 second' * (l.hour * 3600 + floor(3600 * @extschema@.demo_random(seed, l.ka + 5))) AS lt1) w
    ), timed AS MATERIALIZED (
        -- the working-hours time when it falls in the deal's (lead's) life,
        -- else the plain one; milestone steps keep the milestone's time
        SELECT m.*, date_trunc('second', CASE WHEN c.fits THEN m.t1 ELSE m.t0 END) AS occurred_at,
               CASE WHEN c.fits THEN m.lt1 ELSE m.lt0 END AS lt
          FROM moved m
         CROSS JOIN LATERAL (SELECT m.src <> 2 AND m.t1 >= m.lo AND m.t1 < m.hi AS fits) c
    ), done AS (
        SELECT t.*, row_number() OVER (ORDER BY t.occurred_at, t.src, t.ent, t.k) AS activity_id,
               CASE WHEN t.kind <> 'call' THEN NULL
                    WHEN t.src = 2 THEN true
                    ELSE @extschema@.demo_random(seed, t.ka + 8) < least(0.8, 0.27 * exp(0.12 * t.skill)
                                                * CASE WHEN extract(hour FROM t.lt) IN (8, 9, 10, 16, 17) THEN 1.25
                                                       ELSE 0.85 END
                                                * CASE WHEN extract(isodow FROM t.lt) >= 6 THEN 0.6 ELSE 1 END
                                                * CASE WHEN t.src = 3 THEN 0.75 ELSE 1 END) END AS connected
          FROM timed t
    )
    -- ids follow time; rows go in deal by deal, which keeps the foreign
    -- key look-ups and the per-deal index local
    SELECT d.activity_id, d.rep_id, d.opp_id, d.account_id,
           CASE WHEN d.first_contact IS NOT NULL AND @extschema@.demo_random(seed, d.ka + 6) < 0.85
                THEN d.first_contact + floor(d.n_contact * @extschema@.demo_random(seed, d.ka + 7))::integer END,
           d.kind, d.occurred_at AT TIME ZONE 'UTC',
           CASE d.kind
             WHEN 'call' THEN CASE WHEN d.connected
                                   THEN least(5400, round(30 + 240 * exp(0.8 * sqrt(-2 * ln(1 - @extschema@.demo_random(seed, d.ka + 9)))
                                                                          * cos(2 * pi() * @extschema@.demo_random(seed, d.ka + 10)))))::integer
                                   ELSE floor(5 + 50 * @extschema@.demo_random(seed, d.ka + 9))::integer END
             WHEN 'meeting' THEN 900 * (2 + floor(3 * @extschema@.demo_random(seed, d.ka + 9))::integer)
             WHEN 'demo' THEN 2700 + floor(2700 * @extschema@.demo_random(seed, d.ka + 9))::integer
           END,
           d.connected, d.milestone_id
      FROM done d
     ORDER BY d.opp_id, d.occurred_at, d.activity_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('activity', v_n, v_t);

    -- Transcripts of about one connected call in ten: alternating turns
    -- with some monologues, small pauses and a few overlaps, stretched to
    -- the call's length.  Skilled reps talk less, ask more and pause
    -- longer; price comes up at some point of most calls, early in calls of
    -- deals that were lost.  Chinese for Greater China accounts.
    INSERT INTO @extschema@.utterance (activity_id, seq, speaker, start_ms, end_ms, text)
    WITH calls AS (
        SELECT a.activity_id, (18::bigint << 40) + a.activity_id * 512 AS ku, r.skill,
               coalesce(ac.rid = 4, false) AS cn, o.final_kind, a.duration_s * 1000.0 AS dur_ms
          FROM @extschema@.activity a
          JOIN demo_rep r ON r.rep_id = a.rep_id
          LEFT JOIN demo_account ac ON ac.account_id = a.account_id
          LEFT JOIN demo_opp o ON o.id = a.opportunity_id
         WHERE a.kind = 'call' AND a.connected AND a.duration_s >= 120
           AND @extschema@.demo_random(seed, (18::bigint << 40) + a.activity_id * 512) < 0.10
    ), shape AS (
        -- 10 to 40 turns, more in longer calls
        SELECT c.*, least(40, greatest(10, round(c.dur_ms / 12000 * (0.6 + 0.8 * @extschema@.demo_random(seed, c.ku + 1)))))::integer AS n_turn,
               CASE WHEN @extschema@.demo_random(seed, c.ku + 2) < 0.25 THEN NULL
                    ELSE CASE WHEN c.final_kind = 'lost' THEN power(@extschema@.demo_random(seed, c.ku + 3), 1.8)
                              ELSE power(@extschema@.demo_random(seed, c.ku + 3), 0.8) END END AS price_share,
               least(0.65, greatest(0.08, 0.3 + 0.12 * c.skill)) AS q_rate
          FROM calls c
    ), turn AS (
        SELECT s.*, g.t, s.ku + g.t * 8 AS kt,
               sum(CASE WHEN g.t > 1 AND @extschema@.demo_random(seed, s.ku + g.t * 8) < 0.72 THEN 1 ELSE 0 END)
                   OVER (PARTITION BY s.activity_id ORDER BY g.t) AS switches
          FROM shape s
         CROSS JOIN LATERAL generate_series(1, s.n_turn) g(t)
    ), spoken AS (
        SELECT t.*, x.speaker,
               CASE x.speaker
                 WHEN 'rep' THEN 6500 * exp(-0.3 * t.skill) * (0.25 + 1.5 * @extschema@.demo_random(seed, t.kt + 2))
                                 * CASE WHEN @extschema@.demo_random(seed, t.kt + 3) < 0.08 THEN 3 ELSE 1 END
                 WHEN 'customer' THEN 7000 * (0.2 + 1.6 * @extschema@.demo_random(seed, t.kt + 2))
                 ELSE 2500 * (0.5 + @extschema@.demo_random(seed, t.kt + 2)) END AS len
          FROM turn t
         CROSS JOIN LATERAL (SELECT CASE WHEN t.t > 2 AND @extschema@.demo_random(seed, t.kt + 1) < 0.02 THEN 'other'
                                         WHEN t.switches % 2 = 0 THEN 'rep'
                                         ELSE 'customer' END AS speaker) x
    ), gapped AS (
        SELECT s.*,
               CASE WHEN s.t = 1 THEN 200 + 1500 * @extschema@.demo_random(seed, s.kt + 4)
                    WHEN @extschema@.demo_random(seed, s.kt + 4) < 0.08   -- talking over the previous turn
                         THEN -0.3 * @extschema@.demo_random(seed, s.kt + 5) * lag(s.len) OVER w
                    ELSE 150 + 1500 * power(@extschema@.demo_random(seed, s.kt + 5), 2)
                         + CASE WHEN s.speaker = 'rep' THEN 250 * greatest(0, s.skill + 1) ELSE 0 END END AS gap
          FROM spoken s
        WINDOW w AS (PARTITION BY s.activity_id ORDER BY s.t)
    ), placed AS (
        SELECT g.*, sum(g.gap + g.len) OVER w AS raw_end
          FROM gapped g
        WINDOW w AS (PARTITION BY g.activity_id ORDER BY g.t)
    ), scaled AS (
        SELECT p.*, p.dur_ms / max(p.raw_end) OVER (PARTITION BY p.activity_id) AS scale
          FROM placed p
    )
    SELECT s.activity_id, s.t, s.speaker,
           round(s.scale * (s.raw_end - s.len))::integer,
           round(s.scale * s.raw_end)::integer,
           CASE s.speaker
             WHEN 'rep' THEN
               CASE WHEN s.t = 1 + floor(s.price_share * s.n_turn)
                      OR (s.price_share IS NOT NULL AND s.t > 1 + floor(s.price_share * s.n_turn) AND @extschema@.demo_random(seed, s.kt + 6) < 0.1)
                    THEN CASE WHEN s.cn
                              THEN v_rep_price_cn[1 + floor(cardinality(v_rep_price_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_rep_price[1 + floor(cardinality(v_rep_price) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                    WHEN @extschema@.demo_random(seed, s.kt + 6) < s.q_rate
                    THEN CASE WHEN s.cn
                              THEN CASE WHEN @extschema@.demo_random(seed, s.kt + 5) < 0.1   -- typed with a Latin question mark
                                        THEN pg_catalog.replace(
                                                 v_rep_q_cn[1 + floor(cardinality(v_rep_q_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer],
                                                 '？', '?')
                                        ELSE v_rep_q_cn[1 + floor(cardinality(v_rep_q_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                              ELSE v_rep_q[1 + floor(cardinality(v_rep_q) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                    ELSE CASE WHEN s.cn THEN v_rep_s_cn[1 + floor(cardinality(v_rep_s_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_rep_s[1 + floor(cardinality(v_rep_s) * @extschema@.demo_random(seed, s.kt + 7))::integer] END END
             WHEN 'customer' THEN
               CASE WHEN @extschema@.demo_random(seed, s.kt + 6) < 0.08
                    THEN CASE WHEN s.cn
                              THEN v_cus_price_cn[1 + floor(cardinality(v_cus_price_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_cus_price[1 + floor(cardinality(v_cus_price) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
                    ELSE CASE WHEN s.cn THEN v_cus_cn[1 + floor(cardinality(v_cus_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                              ELSE v_cus[1 + floor(cardinality(v_cus) * @extschema@.demo_random(seed, s.kt + 7))::integer] END END
             ELSE CASE WHEN s.cn THEN v_other_cn[1 + floor(cardinality(v_other_cn) * @extschema@.demo_random(seed, s.kt + 7))::integer]
                       ELSE v_other[1 + floor(cardinality(v_other) * @extschema@.demo_random(seed, s.kt + 7))::integer] END
           END
      FROM scaled s
     ORDER BY s.activity_id, s.t;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('utterance', v_n, v_t);

    -- Won deals in the base currency at the close month's rate, credited
    -- to the owner at the win.
    CREATE TEMP TABLE demo_won ON COMMIT DROP AS
    SELECT o.id, o.i, o.account_id, o.kind, o.currency, o.digits, o.closed_at, l.amount, l.owner_id,
           l.amount * fx.rate AS amount_base
      FROM demo_opp o
      JOIN demo_last l USING (id)
      JOIN demo_fx fx ON fx.code = o.currency AND fx.month = date_trunc('month', o.closed_at)::date
     WHERE o.final_kind = 'won';

    -- Quotas per AE and fiscal quarter: what an AE of the company booked
    -- in the quarter, plus a stretch (the running quarter takes the last
    -- complete one's, grown a little); new hires ramp up.
    INSERT INTO @extschema@.quota (rep_id, period_start, period_end, amount)
    WITH q AS (
        SELECT g.q, (v_q0 + make_interval(months => 3 * g.q))::date AS qs,
               (v_q0 + make_interval(months => 3 * g.q + 3))::date AS qe
          FROM generate_series(0, 13) g(q)
         WHERE v_q0 + make_interval(months => 3 * g.q) < until
    ), cap AS (
        SELECT q.q, q.qe,
               coalesce((SELECT sum(w.amount_base) FROM demo_won w WHERE w.closed_at >= q.qs AND w.closed_at < q.qe), 0)::float8
               / greatest(1, (SELECT count(*) FROM demo_rep r WHERE r.role = 'ae' AND r.hired_on < q.qe)) AS cap
          FROM q
    ), cap2 AS (
        SELECT c.q, CASE WHEN c.qe > until THEN 1.05 * lag(c.cap) OVER (ORDER BY c.q) ELSE c.cap END AS cap
          FROM cap c
    )
    SELECT x.rep_id, x.qs, x.qe, round(x.amt::numeric, 1 - floor(log(x.amt))::integer)
      FROM (SELECT r.rep_id, q.qs, q.qe,
                   greatest(1, 1.25 * coalesce(c.cap, 0)
                               * (0.9 + 0.2 * @extschema@.demo_random(seed, (14::bigint << 40) + r.rep_id * 1024 + q.q * 32 + 31))
                               * CASE WHEN r.hired_on > q.qs THEN 0.3
                                      WHEN r.hired_on > q.qs - 91 THEN 0.5
                                      WHEN r.hired_on > q.qs - 182 THEN 0.75
                                      ELSE 1 END) AS amt
              FROM demo_rep r
              JOIN q ON r.hired_on < q.qe
              JOIN cap2 c USING (q)
             WHERE r.role = 'ae') x
     ORDER BY x.rep_id, x.qs;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('quota', v_n, v_t);

    -- Forecast submissions: a week before the quarter and every two weeks
    -- in it, commit and best case.  The rep's view of the quarter's outcome
    -- gets sharper as it goes, but their optimism stays.
    INSERT INTO @extschema@.forecast_submission (rep_id, period_start, period_end, submitted_at, category, amount)
    WITH actual AS (
        SELECT q.rep_id, q.period_start, q.period_end, q.amount AS quota,
               (q.period_start - v_q0) / 89 AS qi,
               coalesce(sum(w.amount_base), 0)::float8
                 / CASE WHEN q.period_end > until
                        THEN greatest(0.3, (until - q.period_start)::float8 / (q.period_end - q.period_start))
                        ELSE 1 END AS outcome
          FROM @extschema@.quota q
          LEFT JOIN demo_won w ON w.owner_id = q.rep_id
                              AND w.closed_at >= q.period_start AND w.closed_at < q.period_end
         GROUP BY q.rep_id, q.period_start, q.period_end, q.amount
    ), sub AS (
        SELECT a.*, s.n, r.optimism, least(1, greatest(0, s.day / 91.0)) AS progress,
               (14::bigint << 40) + a.rep_id * 1024 + a.qi * 32 + s.n * 2 AS ks,
               ((a.period_start + s.day)
                  + interval '1 second'
                    * floor(3600 * (15.5 + 3 * @extschema@.demo_random(seed, (14::bigint << 40) + a.rep_id * 1024 + a.qi * 32 + s.n * 2 + 1))))
                 AT TIME ZONE coalesce(r.timezone, r.region_zone) AT TIME ZONE 'UTC' AS submitted
          FROM actual a
          JOIN demo_rep r USING (rep_id)
         CROSS JOIN (VALUES (0, -6), (1, 3), (2, 17), (3, 31), (4, 45), (5, 59), (6, 73), (7, 84)) s(n, day)
         WHERE a.period_start + s.day >= r.hired_on
    ), said AS (
        SELECT s.*,
               greatest(0, CASE WHEN s.outcome > 0 THEN s.outcome ELSE s.quota::float8 * 0.3 * (1 - s.progress) END
                           * (1 + s.optimism * (1 - 0.5 * s.progress)
                                + 0.5 * (1 - s.progress) * (@extschema@.demo_random(seed, s.ks) - 0.5))) AS commit_amt
          FROM sub s
         WHERE s.submitted < v_end AND @extschema@.demo_random(seed, s.ks + 1 + (1::bigint << 39)) >= 0.08   -- some weeks are missed
    )
    SELECT s.rep_id, s.period_start, s.period_end, s.submitted AT TIME ZONE 'UTC', c.category,
           CASE WHEN c.amt < 1 THEN 0 ELSE round(c.amt::numeric, 2 - floor(log(c.amt))::integer) END
      FROM said s
     CROSS JOIN LATERAL (VALUES ('commit', s.commit_amt),
                                ('best_case', s.commit_amt * (1.12 + 0.3 * @extschema@.demo_random(seed, s.ks + (1::bigint << 38)))
                                              + s.quota::float8 * 0.05 * (1 - s.progress))) c(category, amt)
     ORDER BY 1, 2, 4, 5;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('forecast_submission', v_n, v_t);

    -- Recurring revenue of the accounts that bought: a twelfth of each new
    -- or expansion deal from the month after the win, drifting with small
    -- expansions and contractions; accounts churn (after a lost renewal, or
    -- at random), some come back.  Churned months are missing or zero.
    INSERT INTO @extschema@.recurring_revenue (account_id, month, mrr)
    WITH delta AS (
        SELECT w.account_id, (date_trunc('month', w.closed_at) + interval '1 month')::date AS month,
               sum(w.amount_base / 12) AS delta
          FROM demo_won w
         WHERE w.kind <> 'renewal'
         GROUP BY 1, 2
    ), acct AS (
        SELECT d.account_id, min(d.month) AS first_month, (15::bigint << 40) + d.account_id * 1024 AS kr,
               min(lr.month) AS lost_renewal
          FROM delta d
          LEFT JOIN (SELECT o.account_id, date_trunc('month', o.closed_at)::date AS month
                       FROM demo_opp o
                      WHERE o.kind = 'renewal' AND o.final_kind = 'lost') lr USING (account_id)
         GROUP BY d.account_id
    ), churn AS (
        SELECT a.*,
               coalesce(a.lost_renewal,
                        CASE WHEN @extschema@.demo_random(seed, a.kr + 1000) < 0.12
                             THEN (a.first_month
                                   + make_interval(months => 3 + floor(30 * @extschema@.demo_random(seed, a.kr + 1001))::integer))::date
                        END) AS churned
          FROM acct a
    ), churn2 AS (
        SELECT c.*,
               CASE WHEN @extschema@.demo_random(seed, c.kr + 1002) < 0.3
                    THEN (c.churned + make_interval(months => 2 + floor(8 * @extschema@.demo_random(seed, c.kr + 1003))::integer))::date
               END AS back,
               @extschema@.demo_random(seed, c.kr + 1004) < 0.6 AS gone_means_missing
          FROM churn c
    ), grid AS (
        SELECT c.*, g.m::date AS month, row_number() OVER (PARTITION BY c.account_id ORDER BY g.m) AS mi
          FROM churn2 c
         CROSS JOIN LATERAL generate_series(c.first_month::timestamp, v_month::timestamp, interval '1 month') g(m)
    ), run AS (
        SELECT g.*,
               sum(coalesce(d.delta, 0)) OVER w AS base,
               sum(CASE WHEN @extschema@.demo_random(seed, g.kr + g.mi * 2) < 0.035 THEN -0.25
                        WHEN @extschema@.demo_random(seed, g.kr + g.mi * 2) < 0.085 THEN 0.07 ELSE 0 END) OVER w AS drift
          FROM grid g
          LEFT JOIN delta d USING (account_id, month)
        WINDOW w AS (PARTITION BY g.account_id ORDER BY g.month)
    )
    SELECT r.account_id, r.month,
           CASE WHEN r.month >= r.churned AND r.month < coalesce(r.back, 'infinity') THEN 0
                ELSE round(r.base * exp(r.drift)::numeric, 2) END
      FROM run r
     WHERE r.month >= v_month - interval '35 months'
       AND NOT (r.gone_means_missing AND r.month >= r.churned AND r.month < coalesce(r.back, 'infinity'))
     ORDER BY 1, 2;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('recurring_revenue', v_n, v_t);

    -- Invoices of won deals: one, two, three or four installments in the
    -- deal's currency; most paid around the due date, some late, some in
    -- part, some not at all; nothing is paid on or after until.
    INSERT INTO @extschema@.collection (collection_id, opportunity_id, due_on, amount_due, currency, paid_on, amount_paid)
    WITH inst AS (
        SELECT w.*, (16::bigint << 40) + w.i::bigint * 64 AS kc,
               CASE WHEN @extschema@.demo_random(seed, (16::bigint << 40) + w.i::bigint * 64) < 0.5 THEN 1
                    WHEN @extschema@.demo_random(seed, (16::bigint << 40) + w.i::bigint * 64) < 0.65 THEN 2
                    WHEN @extschema@.demo_random(seed, (16::bigint << 40) + w.i::bigint * 64) < 0.9 THEN 4
                    ELSE 3 END AS n_inst
          FROM demo_won w
    ), due AS (
        SELECT i.id, i.currency, g.k, i.kc + g.k * 8 AS kk,
               i.closed_at::date + 30 + (g.k - 1) * (360 / i.n_inst) AS due_on,
               CASE WHEN g.k < i.n_inst THEN round(i.amount / i.n_inst, 2)
                    ELSE i.amount - round(i.amount / i.n_inst, 2) * (i.n_inst - 1) END AS amount_due
          FROM inst i
         CROSS JOIN LATERAL generate_series(1, i.n_inst) g(k)
    ), paid AS (
        SELECT d.*,
               CASE WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.80
                    THEN d.due_on + CASE WHEN @extschema@.demo_random(seed, d.kk + 2) < 0.15
                                         THEN 30 + floor(90 * @extschema@.demo_random(seed, d.kk + 3))::integer
                                         ELSE -10 + floor(25 * power(@extschema@.demo_random(seed, d.kk + 3), 2))::integer END
                    WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.87
                    THEN d.due_on + 10 + floor(50 * @extschema@.demo_random(seed, d.kk + 3))::integer
               END AS paid_on,
               CASE WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.80 THEN d.amount_due
                    WHEN @extschema@.demo_random(seed, d.kk + 1) < 0.87
                    THEN round(d.amount_due * (0.3 + 0.5 * @extschema@.demo_random(seed, d.kk + 4))::numeric, 2)
                    ELSE 0 END AS amount_paid
          FROM due d
    )
    SELECT row_number() OVER (ORDER BY p.due_on, p.id, p.k), p.id, p.due_on, p.amount_due, p.currency,
           CASE WHEN p.paid_on < until THEN p.paid_on END,
           CASE WHEN p.paid_on < until THEN p.amount_paid ELSE 0 END
      FROM paid p
     ORDER BY p.due_on, p.id, p.k;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_t := sales_kpi_internal.demo_progress('collection', v_n, v_t);

    IF v_bulk THEN
        PERFORM set_config('session_replication_role', v_srr, true);
        FOR v_con IN
            SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
                   string_agg(format('x.%I IS NOT NULL', ca.attname), ' AND ' ORDER BY k.i) AS not_null,
                   string_agg(format('p.%I = x.%I', pa.attname, ca.attname), ' AND ' ORDER BY k.i) AS matches
              FROM pg_constraint c
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(ck, pk, i)
              JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.ck
              JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk
             WHERE c.contype = 'f' AND c.conrelid = ANY (v_tables)
             GROUP BY c.oid, c.conname, c.conrelid, c.confrelid
        LOOP
            -- MATCH SIMPLE: a row with a null key column references nothing
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s x WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s))',
                           v_con.child, v_con.not_null, v_con.parent, v_con.matches)
               INTO v_has;
            IF v_has THEN
                RAISE EXCEPTION 'load_demo produced rows that violate foreign key %', v_con.conname
                    USING ERRCODE = 'internal_error';
            END IF;
        END LOOP;
    END IF;

    -- a bulk load skipped the trigger that keeps who sees whom
    PERFORM @extschema@.refresh_rep_visibility();
    v_t := sales_kpi_internal.demo_progress('foreign keys checked, rep_visibility rebuilt', NULL, v_t);

    -- Later inserts by hand must not collide with the generated ids.
    FOR v_tab, v_col IN
        SELECT a.attrelid::regclass, a.attname
          FROM pg_attribute a
         WHERE a.attrelid = ANY (v_tables) AND a.attidentity <> ''
    LOOP
        v_seq := pg_get_serial_sequence(v_tab::text, v_col)::regclass;
        EXECUTE format('SELECT setval(%L, coalesce(max(%I), 1), max(%I) IS NOT NULL) FROM %s',
                       v_seq, v_col, v_col, v_tab);
    END LOOP;

    DROP TABLE demo_cur, demo_fx, demo_stage, demo_pipe, demo_ms, demo_region, demo_team, demo_rep,
               demo_cover, demo_account, demo_contact, demo_deal, demo_dk, demo_path, demo_win, demo_opp,
               demo_hist, demo_last, demo_owner, demo_lead, demo_me, demo_won, demo_acc_contact;

    -- the tables filled (the CRM import's own, emptied, are left out)
    FOREACH v_tab IN ARRAY v_tables LOOP
        SELECT c.relname INTO table_name FROM pg_class c WHERE c.oid = v_tab;
        CONTINUE WHEN table_name IN ('stage_mapping', 'import_run', 'import_error');
        EXECUTE format('SELECT count(*) FROM %s', v_tab) INTO row_count;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- An administrative function: with replace it empties every table.
REVOKE ALL ON FUNCTION @extschema@.load_demo(integer, integer, date, boolean) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.load_demo(integer, integer, date, boolean) IS
    'Fills every sales_kpi table with three years (up to until) of realistic, messy demo data built around '
    'n_opportunities deals; the same arguments give the same rows. Refuses non-empty tables unless replace is '
    'true, which first truncates them (price_term is kept). Returns the row count per table.';
