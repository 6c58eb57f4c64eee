/*-------------------------------------------------------------------------
 *
 * fuzz_build.c
 *	  Values built the way aggregates build them: 1 to 20 calls of a type's
 *	  transition and inverse functions with random arguments (NULLs where
 *	  the function is not strict, NaN, infinities, negative and 39-digit
 *	  amounts, probabilities outside [0,1], negative and huge intervals,
 *	  unknown outcomes, positions outside 1..64, removals of rows never
 *	  added).  A call may refuse with a data exception (class 22); anything
 *	  else is a violation, and whatever it returns must be a good value.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fuzz_values.h"

typedef struct TransFn
{
	FuzzType	type;
	const char *signature;
	const char *args;			/* kinds of the arguments after the state: n numeric, p probability, b boolean, i interval, o outcome, k position */
	FuzzFn		fn;
} TransFn;

static TransFn trans_fns[] = {
	{FT_WEIGHTED_SUM, "sales_kpi.weighted_pipeline_trans(sales_kpi.weighted_sum, numeric, numeric)", "np"},
	{FT_WEIGHTED_SUM, "sales_kpi.weighted_pipeline_inv(sales_kpi.weighted_sum, numeric, numeric)", "np"},
	{FT_WINLOSS, "sales_kpi.winloss_trans(sales_kpi.winloss, boolean)", "b"},
	{FT_WINLOSS, "sales_kpi.winloss_inv(sales_kpi.winloss, boolean)", "b"},
	{FT_WINLOSS, "sales_kpi.winloss_amount_trans(sales_kpi.winloss, boolean, numeric)", "bn"},
	{FT_WINLOSS, "sales_kpi.winloss_amount_inv(sales_kpi.winloss, boolean, numeric)", "bn"},
	{FT_DURATION, "sales_kpi.duration_agg_trans(sales_kpi.duration_summary, interval)", "i"},
	{FT_SURVIVAL, "sales_kpi.survival_agg_trans(sales_kpi.survival, interval, text)", "io"},
	{FT_SURVIVAL, "sales_kpi.survival_agg_inv(sales_kpi.survival, interval, text)", "io"},
	{FT_LIFT, "sales_kpi.lift_trans(sales_kpi.lift, boolean, boolean)", "bb"},
	{FT_LIFT, "sales_kpi.lift_inv(sales_kpi.lift, boolean, boolean)", "bb"},
	{FT_FUNNEL, "sales_kpi.funnel_trans(sales_kpi.funnel, integer)", "k"},
	{FT_FUNNEL, "sales_kpi.funnel_inv(sales_kpi.funnel, integer)", "k"},
	{FT_FUNNEL, "sales_kpi.funnel_trans(sales_kpi.funnel, integer, boolean)", "kb"},
	{FT_FUNNEL, "sales_kpi.funnel_inv(sales_kpi.funnel, integer, boolean)", "kb"},
};

#define NTRANS ((int) lengthof(trans_fns))

/* the aggregates' initial states */
static const char *const empty_text[FT_NTYPES] = {
	"{\"v\":1,\"n\":0,\"sum\":\"0\"}",
	"{\"v\":1,\"won\":0,\"lost\":0,\"won_with_amount\":0,\"won_amount\":\"0\"}",
	"{\"v\":1,\"n\":0,\"sum_us\":\"0\",\"min_us\":0,\"max_us\":0,\"buckets\":[]}",
	"{\"v\":1,\"n\":0,\"days\":[]}",
	"{\"v\":1,\"with_true\":0,\"with_false\":0,\"without_true\":0,\"without_false\":0}",
	"{\"v\":1,\"positions\":[]}",
};

void
build_init(void)
{
	for (int i = 0; i < NTRANS; i++)
		fn_lookup(&trans_fns[i].fn, trans_fns[i].signature);
}

static const char *const amounts[] = {
	"0", "1", "0.5", "12000", "12000.00", "-1", "-0.01", "NaN", "Infinity", "-Infinity",
	"1e-38", "1e-39", "0.00000000000000000000000000000000000001",
	"99999999999999999999999999999999999999", "999999999999999999999999999999999999999",
	"9999999999999999999.9999999999999999999", "1e30", "1e37", "123.456", "0.000001",
	"170141183460469231731687303715884105727", "1e1000",
};

static const char *const probabilities[] = {
	"0", "1", "0.5", "0.25", "1.0", "1.0000000000000000000000000000000000001", "-0", "-0.1",
	"0.99999999999999999999999999999999999999", "0.00000000000000000000000000000000000001",
	"1e-39", "NaN", "Infinity", "2", "0.1",
};

static Datum
numeric_from_text(const char *s)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

static Datum
random_numeric(FuzzRng *r, bool probability)
{
	if (rng_chance(r, 60))
		return numeric_from_text(probability ? probabilities[rng_below(r, lengthof(probabilities))]
								 : amounts[rng_below(r, lengthof(amounts))]);
	if (probability)
		return numeric_from_text(psprintf("0.%0*llu", (int) (1 + rng_below(r, 18)),
										  (unsigned long long) rng_below(r, UINT64CONST(1000000000000000000))));
	{
		StringInfoData buf;

		initStringInfo(&buf);
		random_number_text(r, &buf);
		/* what numeric_in refuses is no argument: fall back to a plain one */
		if (strspn(buf.data, "-0123456789.") != (size_t) buf.len || buf.len == 0 ||
			buf.data[buf.len - 1] == '.' || buf.data[buf.len - 1] == '-' ||
			strstr(buf.data, "--") || strchr(buf.data + 1, '-') ||
			strchr(buf.data, '.') != strrchr(buf.data, '.') || buf.data[0] == '.')
			return numeric_from_text(amounts[rng_below(r, lengthof(amounts))]);
		return numeric_from_text(buf.data);
	}
}

static Datum
random_interval(FuzzRng *r)
{
	Interval   *iv = palloc0(sizeof(Interval));

	switch (rng_below(r, 8))
	{
		case 0:
			iv->month = (int32) interesting_int64(r);
			break;
		case 1:
			iv->day = (int32) interesting_int64(r);
			break;
		case 2:
			iv->time = interesting_int64(r);
			break;
		case 3:
			iv->month = (int32) rng_next(r);
			iv->day = (int32) rng_next(r);
			iv->time = (int64) rng_next(r);
			break;
		case 4:
			iv->time = (int64) rng_below(r, USECS_PER_DAY * 10);
			break;
		default:
			iv->day = (int32) rng_below(r, 4000);
			iv->time = (int64) rng_below(r, USECS_PER_DAY);
	}
	return IntervalPGetDatum(iv);
}

static Datum
random_arg(FuzzRng *r, char kind, bool *isnull)
{
	*isnull = rng_chance(r, 5);
	switch (kind)
	{
		case 'n':
			return random_numeric(r, false);
		case 'p':
			return random_numeric(r, true);
		case 'b':
			return BoolGetDatum(rng_chance(r, 50));
		case 'i':
			return random_interval(r);
		case 'o':
			{
				static const char *const o[] = {"won", "lost", "open", "Won", "", "won ", "opened", "lo"};

				return CStringGetTextDatum(rng_chance(r, 90) ? o[rng_below(r, 3)] : o[rng_below(r, lengthof(o))]);
			}
		default:
			return Int32GetDatum(rng_chance(r, 90) ? (int32) (1 + rng_below(r, 64)) : (int32) interesting_int64(r));
	}
}

static Datum empty_values[FT_NTYPES];

/* an argument as SQL text, for the trace */
static char *
arg_sql(char kind, Datum v, bool isnull)
{
	static const char *const types[] = {"numeric", "numeric", "boolean", "interval", "text", "integer"};
	int			k = strchr("npbiok", kind) - "npbiok";

	if (isnull)
		return psprintf("NULL::%s", types[k]);
	switch (kind)
	{
		case 'n':
		case 'p':
			return psprintf("'%s'::numeric", DatumGetCString(DirectFunctionCall1(numeric_out, v)));
		case 'b':
			return pstrdup(DatumGetBool(v) ? "true" : "false");
		case 'i':
			return psprintf("'%s'::interval", DatumGetCString(DirectFunctionCall1(interval_out, v)));
		case 'o':
			return quote_literal_cstr(TextDatumGetCString(v));
		default:
			return psprintf("%d", DatumGetInt32(v));
	}
}

bool
build_value(FuzzChecker *c, FuzzType t, Datum start, Datum *result, StringInfo trace)
{
	char	   *expr;
	FuzzRng    *r = c->rng;
	Datum		state = start;
	bool		state_null = false;
	int			nsteps = 1 + rng_below(r, 20);
	int			candidates[8];
	int			ncand = 0;

	if (empty_values[t] == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		CallResult	e = call_input(type_io(t), empty_text[t]);

		MemoryContextSwitchTo(old);
		if (!e.ok)
			elog(ERROR, "the initial state of %s is refused: %s", fuzz_type_names[t], e.message);
		empty_values[t] = e.value;
	}
	if (state == (Datum) 0)
		state = empty_values[t];
	{
		CallResult	out = call_output(type_io(t), state);

		expr = psprintf("%s::sales_kpi.%s",
						out.ok ? quote_literal_cstr(DatumGetCString(out.value)) : "(unprintable)",
						fuzz_type_names[t]);
	}
	for (int i = 0; i < NTRANS; i++)
		if (trans_fns[i].type == t)
			candidates[ncand++] = i;

	for (int step = 0; step < nsteps; step++)
	{
		TransFn    *tf = &trans_fns[candidates[rng_below(r, ncand)]];
		Datum		args[4];
		bool		nulls[4];
		int			nargs = 1 + strlen(tf->args);
		CallResult	res;

		/* a NULL state now and then, for the functions that are not strict */
		args[0] = state;
		nulls[0] = state_null || (!tf->fn.flinfo.fn_strict && rng_chance(r, 5));
		for (int a = 1; a < nargs; a++)
			args[a] = random_arg(r, tf->args[a - 1], &nulls[a]);
		if (tf->fn.flinfo.fn_strict)
		{
			bool		any_null = false;

			for (int a = 0; a < nargs; a++)
				any_null |= nulls[a];
			/* an aggregate skips the row, keeping its state */
			if (any_null)
				continue;
		}
		res = fn_call_nulls(&tf->fn, nargs, args, nulls);
		c->count(c->arg, "transition", res.ok ? (res.isnull ? "null" : "ok")
				 : psprintf("refused %s", sqlstate_text(res.sqlerrcode)));
		if (!res.ok)
		{
			if (ERRCODE_TO_CATEGORY(res.sqlerrcode) != ERRCODE_DATA_EXCEPTION)
				c->violation(c->arg, "transition failed",
							 psprintf("%s raised %s: %s", tf->signature, sqlstate_text(res.sqlerrcode), res.message));
			continue;
		}
		state = res.value;
		state_null = res.isnull;
		{
			StringInfoData call;

			initStringInfo(&call);
			appendBinaryStringInfo(&call, tf->signature, strchr(tf->signature, '(') - tf->signature);
			appendStringInfo(&call, "(%s", nulls[0] ? psprintf("NULL::sales_kpi.%s", fuzz_type_names[t]) : expr);
			for (int a = 1; a < nargs; a++)
				appendStringInfo(&call, ", %s", arg_sql(tf->args[a - 1], args[a], nulls[a]));
			appendStringInfoChar(&call, ')');
			expr = call.data;
		}
	}
	appendStringInfo(trace, "SELECT %s", expr);
	if (state_null)
		return false;
	*result = state;
	return true;
}
