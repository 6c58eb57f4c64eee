/*-------------------------------------------------------------------------
 *
 * fuzz_check.c
 *	  What every accepted value must satisfy: its text and binary forms
 *	  read back to the same value, combining it with itself or another value
 *	  succeeds with a value that reads back or fails with 22003, and its
 *	  accessors, given random arguments (valid or not), give rates in [0,1]
 *	  or NULL, counts >= 0, lower <= estimate <= upper, min <= percentile
 *	  <= max, or refuse a bad argument with its documented SQLSTATE.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include <math.h>

#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/tuplestore.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "fuzz_values.h"

const char *const fuzz_type_names[FT_NTYPES] = {
	"weighted_sum", "winloss", "duration_summary", "survival", "lift", "funnel"
};

static TypeIO type_ios[FT_NTYPES];
static FuzzFn combine_fns[FT_NTYPES];

enum
{
	F_WS_FINAL,
	F_WL_WIN_RATE, F_WL_LOWER, F_WL_UPPER, F_WL_WON, F_WL_LOST, F_WL_AMOUNT, F_WL_AVG,
	F_DU_COUNT, F_DU_MEAN, F_DU_MIN, F_DU_MAX, F_DU_PERCENTILE, F_DU_MEDIAN,
	F_SV_COUNT, F_SV_CUMULATIVE, F_SV_NAIVE, F_SV_MEDIAN,
	F_LI_WITH, F_LI_WITHOUT, F_LI_LIFT, F_LI_OR, F_LI_LOWER, F_LI_UPPER,
	F_FU_REACHED, F_FU_CONVERSION, F_FU_WIN_RATE_FROM, F_FU_STAGES,
	F_NFNS
};

static const char *const fn_signatures[F_NFNS] = {
	"sales_kpi.weighted_pipeline_final(sales_kpi.weighted_sum)",
	"sales_kpi.win_rate(sales_kpi.winloss)",
	"sales_kpi.wilson_lower(sales_kpi.winloss, double precision)",
	"sales_kpi.wilson_upper(sales_kpi.winloss, double precision)",
	"sales_kpi.won_count(sales_kpi.winloss)",
	"sales_kpi.lost_count(sales_kpi.winloss)",
	"sales_kpi.won_amount(sales_kpi.winloss)",
	"sales_kpi.avg_won_amount(sales_kpi.winloss)",
	"sales_kpi.duration_count(sales_kpi.duration_summary)",
	"sales_kpi.mean(sales_kpi.duration_summary)",
	"sales_kpi.min_duration(sales_kpi.duration_summary)",
	"sales_kpi.max_duration(sales_kpi.duration_summary)",
	"sales_kpi.percentile(sales_kpi.duration_summary, double precision)",
	"sales_kpi.median(sales_kpi.duration_summary)",
	"sales_kpi.survival_count(sales_kpi.survival)",
	"sales_kpi.cumulative_win_rate(sales_kpi.survival, interval)",
	"sales_kpi.naive_win_rate(sales_kpi.survival, interval)",
	"sales_kpi.median_time_to_close(sales_kpi.survival)",
	"sales_kpi.rate_with(sales_kpi.lift)",
	"sales_kpi.rate_without(sales_kpi.lift)",
	"sales_kpi.lift(sales_kpi.lift)",
	"sales_kpi.odds_ratio(sales_kpi.lift)",
	"sales_kpi.odds_ratio_lower(sales_kpi.lift, double precision)",
	"sales_kpi.odds_ratio_upper(sales_kpi.lift, double precision)",
	"sales_kpi.reached(sales_kpi.funnel, integer)",
	"sales_kpi.conversion(sales_kpi.funnel, integer, integer)",
	"sales_kpi.win_rate_from(sales_kpi.funnel, integer)",
	"sales_kpi.stages(sales_kpi.funnel)",
};

static FuzzFn fns[F_NFNS];

static const char *const combine_signatures[FT_NTYPES] = {
	"sales_kpi.weighted_sum_combine(sales_kpi.weighted_sum, sales_kpi.weighted_sum)",
	"sales_kpi.winloss_combine(sales_kpi.winloss, sales_kpi.winloss)",
	"sales_kpi.duration_summary_combine(sales_kpi.duration_summary, sales_kpi.duration_summary)",
	"sales_kpi.survival_combine(sales_kpi.survival, sales_kpi.survival)",
	"sales_kpi.lift_combine(sales_kpi.lift, sales_kpi.lift)",
	"sales_kpi.funnel_combine(sales_kpi.funnel, sales_kpi.funnel)",
};

static Datum zero_numeric;
static Interval zero_interval;

void
checks_init(void)
{
	for (int t = 0; t < FT_NTYPES; t++)
	{
		typeio_lookup(&type_ios[t], psprintf("sales_kpi.%s", fuzz_type_names[t]));
		fn_lookup(&combine_fns[t], combine_signatures[t]);
	}
	for (int f = 0; f < F_NFNS; f++)
		fn_lookup(&fns[f], fn_signatures[f]);
	zero_numeric = DirectFunctionCall1(int8_numeric, Int64GetDatum(0));
	memset(&zero_interval, 0, sizeof(zero_interval));
}

TypeIO *
type_io(FuzzType t)
{
	return &type_ios[t];
}

/* ---- calling accessors ---- */

static FuzzChecker *cur;		/* the checker of the value being checked */

static void
violation(const char *check, const char *fmt,...) pg_attribute_printf(2, 3);

static void
violation(const char *check, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	cur->violation(cur->arg, check, buf.data);
}

/*
 * Calls accessor f.  With arg_valid, it must succeed, except with one of
 * the SQLSTATEs in also_ok (a NUL-separated list, may be NULL); without,
 * it must fail with want_state.  Returns the result; ok is false when the
 * call failed (as expected or not), and the caller then checks nothing more.
 */
static CallResult
accessor(int f, int nargs, const Datum *args, bool arg_valid,
		 const char *want_state, const char *also_ok, const char *argdesc)
{
	CallResult	res = fn_call(&fns[f], nargs, args);
	const char *state = res.ok ? NULL : sqlstate_text(res.sqlerrcode);

	cur->count(cur->arg, "accessor", res.ok ? (res.isnull ? "null" : "ok")
			   : psprintf("refused %s", state));
	if (res.ok && !arg_valid)
		violation("bad argument accepted", "%s with %s returned a value instead of SQLSTATE %s",
				  fns[f].signature, argdesc, want_state);
	else if (!res.ok && !arg_valid && strcmp(state, want_state) != 0)
		violation("bad argument: wrong SQLSTATE", "%s with %s raised %s (%s), expected %s",
				  fns[f].signature, argdesc, state, res.message, want_state);
	else if (!res.ok && arg_valid && !(also_ok && strcmp(state, also_ok) == 0))
		violation("accessor refused a value", "%s with %s raised %s: %s",
				  fns[f].signature, argdesc, state, res.message);
	if (!res.ok)
		res.isnull = true;
	return res;
}

/* a float8 result that must be in [0, 1] (or NULL) */
static double
rate_result(int f, CallResult res, const char *argdesc)
{
	double		x;

	if (!res.ok || res.isnull)
		return NAN;
	x = DatumGetFloat8(res.value);
	if (!(x >= 0.0 && x <= 1.0))
		violation("rate outside [0,1]", "%s with %s returned %.17g", fns[f].signature, argdesc, x);
	return x;
}

static int64
count_result(int f, CallResult res)
{
	int64		n;

	if (!res.ok)
		return -1;
	if (res.isnull)
	{
		violation("NULL count", "%s returned NULL", fns[f].signature);
		return -1;
	}
	n = DatumGetInt64(res.value);
	if (n < 0)
		violation("negative count", "%s returned " INT64_FORMAT, fns[f].signature, n);
	return n;
}

/* a confidence level: valid in (0, 1) exclusive */
static double
random_confidence(FuzzRng *r, bool *valid)
{
	static const double v[] = {0.95, 0.5, 0.99, 0.8, 1e-300, 5e-324, 0.9999999999999999,
		0.999999999999, 1e-12, 0.0, 1.0, -0.0, 1.0000000000000002, -0.5, 2.0};
	double		c;

	switch (rng_below(r, 5))
	{
		case 0:
			c = rng_unit(r);
			break;
		case 1:
			{
				uint64		bits = rng_next(r);

				memcpy(&c, &bits, sizeof(c));
			}
			break;
		case 2:
			c = rng_below(r, 3) == 0 ? NAN : rng_chance(r, 50) ? INFINITY : -INFINITY;
			break;
		default:
			c = v[rng_below(r, lengthof(v))];
	}
	*valid = c > 0 && c < 1;
	return c;
}

/* a quantile: valid in [0, 1] */
static double
random_quantile(FuzzRng *r, bool *valid)
{
	static const double v[] = {0.0, 1.0, 0.5, 0.25, 0.75, 0.9, 0.99, 5e-324, 1e-300,
		0.9999999999999999, -0.0, 1.0000000000000002, -1e-300, 2.0, -1.0};
	double		q;

	switch (rng_below(r, 5))
	{
		case 0:
		case 1:
			q = rng_unit(r);
			break;
		case 2:
			q = rng_below(r, 3) == 0 ? NAN : rng_chance(r, 50) ? INFINITY : -INFINITY;
			break;
		default:
			q = v[rng_below(r, lengthof(v))];
	}
	*valid = q >= 0 && q <= 1;
	return q;
}

/* a horizon: valid when its whole days (floored, a month as 30) are in [0, 2^31 - 1] */
static Interval *
random_horizon(FuzzRng *r, bool *valid, int64 *days_out)
{
	Interval   *iv = palloc0(sizeof(Interval));
	int64		days;

	switch (rng_below(r, 6))
	{
		case 0:
			iv->month = (int32) interesting_int64(r);
			iv->day = (int32) rng_below(r, 31);
			break;
		case 1:
			iv->day = (int32) interesting_int64(r);
			iv->time = (int64) rng_below(r, USECS_PER_DAY) - (rng_chance(r, 20) ? USECS_PER_DAY : 0);
			break;
		case 2:
			iv->time = interesting_int64(r);
			break;
		case 3:
			iv->month = (int32) rng_next(r);
			iv->day = (int32) rng_next(r);
			iv->time = (int64) rng_next(r);
			break;
		default:
			iv->day = (int32) rng_below(r, 4000);
			if (rng_chance(r, 30))
				iv->time = (int64) rng_below(r, USECS_PER_DAY);
	}
	days = (int64) iv->month * DAYS_PER_MONTH + iv->day;
	days += iv->time / USECS_PER_DAY - (iv->time % USECS_PER_DAY < 0 ? 1 : 0);
	*valid = days >= 0 && days <= PG_INT32_MAX;
	*days_out = days;
	return iv;
}

static int32
random_position(FuzzRng *r, bool *valid)
{
	int32		p = rng_chance(r, 85) ? (int32) (1 + rng_below(r, 64)) : (int32) interesting_int64(r);

	*valid = p >= 1 && p <= 64;
	return p;
}

static const char *
interval_text(Interval *iv)
{
	return psprintf("interval '%d months %d days " INT64_FORMAT " us'", iv->month, iv->day, iv->time);
}

static int
interval_compare(Datum a, Datum b)
{
	return DatumGetInt32(DirectFunctionCall2(interval_cmp, a, b));
}

static int
numeric_compare(Datum a, Datum b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, a, b));
}

static const char *
numeric_text(Datum n)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out, n));
}

static const char *
interval_out_text(Datum iv)
{
	return DatumGetCString(DirectFunctionCall1(interval_out, iv));
}

/* a <= b, allowing a relative rounding error of 1e-12 */
static bool
le_tol(double a, double b)
{
	return a <= b || a - b <= 1e-12 * Max(fabs(a), fabs(b));
}

/* ---- per type ---- */

static void
check_weighted_sum(Datum v)
{
	CallResult	res = accessor(F_WS_FINAL, 1, &v, true, NULL, NULL, "no argument");

	if (res.ok && !res.isnull && numeric_compare(res.value, zero_numeric) < 0)
		violation("negative sum", "weighted_pipeline_final returned %s", numeric_text(res.value));
}

static void
check_winloss(FuzzRng *r, Datum v)
{
	int64		won = count_result(F_WL_WON, accessor(F_WL_WON, 1, &v, true, NULL, NULL, "no argument"));
	int64		lost = count_result(F_WL_LOST, accessor(F_WL_LOST, 1, &v, true, NULL, NULL, "no argument"));
	CallResult	res = accessor(F_WL_WIN_RATE, 1, &v, true, NULL, NULL, "no argument");
	double		rate = rate_result(F_WL_WIN_RATE, res, "no argument");
	bool		valid;
	double		conf = random_confidence(r, &valid);
	Datum		args[2] = {v, Float8GetDatum(conf)};
	const char *desc = psprintf("confidence %.17g", conf);
	CallResult	lo = accessor(F_WL_LOWER, 2, args, valid, "22023", NULL, desc);
	CallResult	up = accessor(F_WL_UPPER, 2, args, valid, "22023", NULL, desc);
	double		l = rate_result(F_WL_LOWER, lo, desc);
	double		u = rate_result(F_WL_UPPER, up, desc);
	CallResult	amount,
				avg;

	if (won >= 0 && lost >= 0 && res.ok && res.isnull != (won == 0 && lost == 0))
		violation("win_rate NULL mismatch", "win_rate is %s with won " INT64_FORMAT ", lost " INT64_FORMAT,
				  res.isnull ? "NULL" : "not NULL", won, lost);
	if (valid && lo.ok && up.ok && res.ok)
	{
		if (lo.isnull != res.isnull || up.isnull != res.isnull)
			violation("Wilson NULL mismatch", "win_rate %s, wilson_lower %s, wilson_upper %s at %s",
					  res.isnull ? "NULL" : "set", lo.isnull ? "NULL" : "set",
					  up.isnull ? "NULL" : "set", desc);
		/* exactly: the interval is around the rate, and the rate is 0 or 1 at the ends */
		else if (!res.isnull && !(l <= rate && rate <= u))
			violation("Wilson interval excludes the rate", "lower %.17g, rate %.17g, upper %.17g at %s",
					  l, rate, u, desc);
	}
	amount = accessor(F_WL_AMOUNT, 1, &v, true, NULL, NULL, "no argument");
	avg = accessor(F_WL_AVG, 1, &v, true, NULL, NULL, "no argument");
	if (amount.ok && avg.ok)
	{
		if (amount.isnull != avg.isnull)
			violation("amount NULL mismatch", "won_amount %s but avg_won_amount %s",
					  amount.isnull ? "NULL" : "set", avg.isnull ? "NULL" : "set");
		else if (!amount.isnull &&
				 (numeric_compare(amount.value, zero_numeric) < 0 ||
				  numeric_compare(avg.value, zero_numeric) < 0 ||
				  numeric_compare(avg.value, amount.value) > 0))
			violation("amounts out of order", "won_amount %s, avg_won_amount %s",
					  numeric_text(amount.value), numeric_text(avg.value));
	}
}

static void
check_duration(FuzzRng *r, Datum v)
{
	int64		n = count_result(F_DU_COUNT, accessor(F_DU_COUNT, 1, &v, true, NULL, NULL, "no argument"));
	CallResult	mn = accessor(F_DU_MIN, 1, &v, true, NULL, NULL, "no argument");
	CallResult	mx = accessor(F_DU_MAX, 1, &v, true, NULL, NULL, "no argument");
	CallResult	mean = accessor(F_DU_MEAN, 1, &v, true, NULL, NULL, "no argument");
	CallResult	median = accessor(F_DU_MEDIAN, 1, &v, true, NULL, NULL, "no argument");
	CallResult	p[2];
	double		q[2];
	bool		valid[2];
	bool		have_bounds;

	if (!mn.ok || !mx.ok || n < 0)
		return;
	if (mn.isnull != (n == 0) || mx.isnull != (n == 0) ||
		(mean.ok && mean.isnull != (n == 0)) || (median.ok && median.isnull != (n == 0)))
		violation("duration NULL mismatch", "count " INT64_FORMAT " but min %s, max %s, mean %s, median %s", n,
				  mn.isnull ? "NULL" : "set", mx.isnull ? "NULL" : "set",
				  mean.isnull ? "NULL" : "set", median.isnull ? "NULL" : "set");
	have_bounds = !mn.isnull && !mx.isnull;
	if (have_bounds)
	{
		if (interval_compare(mn.value, IntervalPGetDatum(&zero_interval)) < 0 ||
			interval_compare(mn.value, mx.value) > 0)
			violation("min and max out of order", "min %s, max %s",
					  interval_out_text(mn.value), interval_out_text(mx.value));
		if (mean.ok && !mean.isnull &&
			(interval_compare(mean.value, mn.value) < 0 || interval_compare(mean.value, mx.value) > 0))
			violation("mean outside [min, max]", "min %s, mean %s, max %s", interval_out_text(mn.value),
					  interval_out_text(mean.value), interval_out_text(mx.value));
		if (median.ok && !median.isnull &&
			(interval_compare(median.value, mn.value) < 0 || interval_compare(median.value, mx.value) > 0))
			violation("median outside [min, max]", "min %s, median %s, max %s", interval_out_text(mn.value),
					  interval_out_text(median.value), interval_out_text(mx.value));
	}
	for (int i = 0; i < 2; i++)
	{
		Datum		args[2];
		const char *desc;

		q[i] = random_quantile(r, &valid[i]);
		desc = psprintf("q %.17g", q[i]);
		args[0] = v;
		args[1] = Float8GetDatum(q[i]);
		p[i] = accessor(F_DU_PERCENTILE, 2, args, valid[i], "22003", NULL, desc);
		if (!valid[i] || !p[i].ok)
			continue;
		if (p[i].isnull != (n == 0))
			violation("percentile NULL mismatch", "count " INT64_FORMAT ", percentile at %s is %s", n,
					  desc, p[i].isnull ? "NULL" : "set");
		if (!have_bounds || p[i].isnull)
			continue;
		if (interval_compare(p[i].value, mn.value) < 0 || interval_compare(p[i].value, mx.value) > 0)
			violation("percentile outside [min, max]", "min %s, percentile %s at %s, max %s",
					  interval_out_text(mn.value), interval_out_text(p[i].value), desc,
					  interval_out_text(mx.value));
		if ((q[i] == 0 && interval_compare(p[i].value, mn.value) != 0) ||
			(q[i] == 1 && interval_compare(p[i].value, mx.value) != 0))
			violation("percentile 0 or 1 not exact", "percentile %s at %s, min %s, max %s",
					  interval_out_text(p[i].value), desc, interval_out_text(mn.value),
					  interval_out_text(mx.value));
	}
	if (valid[0] && valid[1] && p[0].ok && p[1].ok && !p[0].isnull && !p[1].isnull &&
		(q[0] < q[1]) != (q[0] > q[1]))
	{
		int			lo = q[0] < q[1] ? 0 : 1;

		if (interval_compare(p[lo].value, p[1 - lo].value) > 0)
			violation("percentile not monotone", "percentile(%.17g) = %s > percentile(%.17g) = %s",
					  q[lo], interval_out_text(p[lo].value), q[1 - lo], interval_out_text(p[1 - lo].value));
	}
}

static void
check_survival(FuzzRng *r, Datum v)
{
	int64		n = count_result(F_SV_COUNT, accessor(F_SV_COUNT, 1, &v, true, NULL, NULL, "no argument"));
	CallResult	median = accessor(F_SV_MEDIAN, 1, &v, true, NULL, NULL, "no argument");
	double		cw[2],
				nv[2];
	int64		days[2];
	bool		valid[2],
				ok[2];

	if (median.ok && !median.isnull)
	{
		Interval   *iv = DatumGetIntervalP(median.value);

		if (iv->month != 0 || iv->time != 0 || iv->day < 0 || iv->day > 3699 || n == 0)
			violation("median time to close out of range", "median %s with count " INT64_FORMAT,
					  interval_out_text(median.value), n);
	}
	for (int i = 0; i < 2; i++)
	{
		Interval   *h = random_horizon(r, &valid[i], &days[i]);
		Datum		args[2] = {v, IntervalPGetDatum(h)};
		const char *desc = interval_text(h);
		CallResult	c = accessor(F_SV_CUMULATIVE, 2, args, valid[i], "22003", NULL, desc);
		CallResult	nr = accessor(F_SV_NAIVE, 2, args, valid[i], "22003", NULL, desc);

		cw[i] = rate_result(F_SV_CUMULATIVE, c, desc);
		nv[i] = rate_result(F_SV_NAIVE, nr, desc);
		ok[i] = valid[i] && c.ok && nr.ok && !c.isnull && !nr.isnull;
		if (valid[i] && c.ok && nr.ok && n >= 0 &&
			(c.isnull != (n == 0) || nr.isnull != (n == 0)))
			violation("survival NULL mismatch", "count " INT64_FORMAT ", cumulative %s, naive %s at %s", n,
					  c.isnull ? "NULL" : "set", nr.isnull ? "NULL" : "set", desc);
		/* censored deals only raise the Aalen-Johansen estimate above the naive share */
		if (ok[i] && !le_tol(nv[i], cw[i]))
			violation("cumulative win rate below the naive one", "naive %.17g > cumulative %.17g at %s",
					  nv[i], cw[i], desc);
	}
	if (ok[0] && ok[1] && days[0] != days[1])
	{
		int			lo = days[0] < days[1] ? 0 : 1;

		/* a longer horizon only adds terms >= 0 to the same sums */
		if (!(cw[lo] <= cw[1 - lo]) || !(nv[lo] <= nv[1 - lo]))
			violation("win rate falls with the horizon",
					  "at " INT64_FORMAT " days cumulative %.17g naive %.17g; at " INT64_FORMAT " days %.17g, %.17g",
					  days[lo], cw[lo], nv[lo], days[1 - lo], cw[1 - lo], nv[1 - lo]);
	}
}

static void
check_lift(FuzzRng *r, Datum v)
{
	CallResult	w = accessor(F_LI_WITH, 1, &v, true, NULL, NULL, "no argument");
	CallResult	wo = accessor(F_LI_WITHOUT, 1, &v, true, NULL, NULL, "no argument");
	CallResult	lift = accessor(F_LI_LIFT, 1, &v, true, NULL, NULL, "no argument");
	CallResult	orr = accessor(F_LI_OR, 1, &v, true, NULL, NULL, "no argument");
	double		rw = rate_result(F_LI_WITH, w, "no argument");
	double		rwo = rate_result(F_LI_WITHOUT, wo, "no argument");
	bool		valid;
	double		conf = random_confidence(r, &valid);
	Datum		args[2] = {v, Float8GetDatum(conf)};
	const char *desc = psprintf("confidence %.17g", conf);
	CallResult	lo = accessor(F_LI_LOWER, 2, args, valid, "22023", NULL, desc);
	CallResult	up = accessor(F_LI_UPPER, 2, args, valid, "22023", NULL, desc);

	if (lift.ok && !lift.isnull)
	{
		double		x = DatumGetFloat8(lift.value);

		if (!(x >= 0) || isinf(x))
			violation("lift out of range", "lift %.17g", x);
		else if (w.ok && wo.ok && !w.isnull && !wo.isnull && rwo > 0 &&
				 fabs(x - rw / rwo) > 1e-9 * Max(x, 1e-300))
			violation("lift is not rate_with / rate_without", "lift %.17g, rate_with %.17g, rate_without %.17g",
					  x, rw, rwo);
	}
	if (!(orr.ok && w.ok && wo.ok))
		return;
	if (orr.isnull != (w.isnull || wo.isnull))
		violation("odds ratio NULL mismatch", "odds_ratio %s, rate_with %s, rate_without %s",
				  orr.isnull ? "NULL" : "set", w.isnull ? "NULL" : "set", wo.isnull ? "NULL" : "set");
	if (!orr.isnull && !(DatumGetFloat8(orr.value) >= 0))
		violation("odds ratio out of range", "odds_ratio %.17g", DatumGetFloat8(orr.value));
	if (!valid || !lo.ok || !up.ok)
		return;
	if (lo.isnull != orr.isnull || up.isnull != orr.isnull)
		violation("odds ratio interval NULL mismatch", "odds_ratio %s, lower %s, upper %s at %s",
				  orr.isnull ? "NULL" : "set", lo.isnull ? "NULL" : "set", up.isnull ? "NULL" : "set", desc);
	else if (!orr.isnull)
	{
		double		l = DatumGetFloat8(lo.value);
		double		u = DatumGetFloat8(up.value);
		double		o = DatumGetFloat8(orr.value);

		/* the point estimate does not depend on the confidence: any interval holds it */
		if (!(l >= 0) || isnan(u) || !(l <= o && o <= u))
			violation("odds ratio interval out of order", "lower %.17g, odds_ratio %.17g, upper %.17g at %s",
					  l, o, u, desc);
	}
}

/* reached(f, k) for a valid k; -1 when it failed (22003 for a count sum beyond 2^63 - 1) */
static int64
funnel_reached(Datum v, int32 k)
{
	Datum		args[2] = {v, Int32GetDatum(k)};

	return count_result(F_FU_REACHED, accessor(F_FU_REACHED, 2, args, true, NULL, "22003",
											   psprintf("position %d", k)));
}

typedef struct StagesCall
{
	Datum		v;
	int			nrows;
	int32		pos[64];
	int64		reached[64];
	double		conv[64];		/* NAN for NULL */
	double		win[64];
} StagesCall;

/* calls stages(f) as the executor would, in materialize mode */
static void
stages_body(void *arg, CallResult *res)
{
	StagesCall *sc = arg;
	ExprContext *econtext = CreateStandaloneExprContext();
	ReturnSetInfo rsinfo;
	TupleTableSlot *slot;

	LOCAL_FCINFO(fcinfo, 1);

	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = econtext;
	rsinfo.allowedModes = (int) (SFRM_ValuePerCall | SFRM_Materialize);
	rsinfo.returnMode = SFRM_ValuePerCall;
	InitFunctionCallInfoData(*fcinfo, &fns[F_FU_STAGES].flinfo, 1, InvalidOid, NULL, (Node *) &rsinfo);
	fcinfo->args[0].value = sc->v;
	fcinfo->args[0].isnull = false;
	(void) FunctionCallInvoke(fcinfo);
	if (rsinfo.returnMode != SFRM_Materialize || rsinfo.setResult == NULL)
		elog(ERROR, "stages did not materialize its result");
	slot = MakeSingleTupleTableSlot(rsinfo.setDesc, &TTSOpsMinimalTuple);
	sc->nrows = 0;
	while (tuplestore_gettupleslot(rsinfo.setResult, true, false, slot))
	{
		bool		isnull;
		int			i = sc->nrows;

		if (i >= 64)
			elog(ERROR, "stages returned more than 64 rows");
		slot_getallattrs(slot);
		sc->pos[i] = DatumGetInt32(slot_getattr(slot, 1, &isnull));
		if (isnull)
			elog(ERROR, "stages returned a NULL position");
		sc->reached[i] = DatumGetInt64(slot_getattr(slot, 2, &isnull));
		if (isnull)
			elog(ERROR, "stages returned a NULL reached");
		sc->conv[i] = DatumGetFloat8(slot_getattr(slot, 3, &isnull));
		if (isnull)
			sc->conv[i] = NAN;
		sc->win[i] = DatumGetFloat8(slot_getattr(slot, 4, &isnull));
		if (isnull)
			sc->win[i] = NAN;
		sc->nrows++;
	}
	ExecDropSingleTupleTableSlot(slot);
	FreeExprContext(econtext, true);
}

static void
check_stages(FuzzRng *r, Datum v)
{
	StagesCall	sc;
	CallResult	res;

	sc.v = v;
	run_protected(stages_body, &sc, &res);
	cur->count(cur->arg, "accessor", res.ok ? "ok" : psprintf("refused %s", sqlstate_text(res.sqlerrcode)));
	if (!res.ok)
	{
		if (res.sqlerrcode != ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE)
			violation("accessor refused a value", "stages(funnel) raised %s: %s",
					  sqlstate_text(res.sqlerrcode), res.message);
		return;
	}
	for (int i = 0; i < sc.nrows; i++)
	{
		bool		last = i == sc.nrows - 1;

		if (sc.pos[i] != i + 1 || sc.reached[i] < 0 ||
			(i > 0 && sc.reached[i] > sc.reached[i - 1]) ||
			(last ? !isnan(sc.conv[i]) : !(isnan(sc.conv[i]) ? sc.reached[i] == 0
										  : sc.conv[i] >= 0 && sc.conv[i] <= 1)) ||
			(isnan(sc.win[i]) ? sc.reached[i] != 0 : !(sc.win[i] >= 0 && sc.win[i] <= 1)) ||
			(last && sc.reached[i] == 0))
		{
			violation("stages row out of range", "row %d: position %d, reached " INT64_FORMAT
					  ", conversion_to_next %.17g, win_rate_from %.17g", i + 1, sc.pos[i],
					  sc.reached[i], sc.conv[i], sc.win[i]);
			break;
		}
	}
	/* one row against reached() */
	if (sc.nrows > 0)
	{
		int			i = rng_below(r, sc.nrows);
		int64		reached = funnel_reached(v, i + 1);

		if (reached >= 0 && reached != sc.reached[i])
			violation("stages disagrees with reached", "stages says " INT64_FORMAT " at %d, reached() " INT64_FORMAT,
					  sc.reached[i], i + 1, reached);
	}
}

static void
check_funnel(FuzzRng *r, Datum v)
{
	bool		valid,
				valid2;
	int32		k = random_position(r, &valid);
	int32		k2 = random_position(r, &valid2);
	Datum		args[3] = {v, Int32GetDatum(k), Int32GetDatum(k2)};
	const char *desc = psprintf("position %d", k);
	CallResult	reached = accessor(F_FU_REACHED, 2, args, valid, "22003", "22003", desc);
	CallResult	win = accessor(F_FU_WIN_RATE_FROM, 2, args, valid, "22003", "22003", desc);
	CallResult	conv;
	double		c;

	count_result(F_FU_REACHED, reached);
	rate_result(F_FU_WIN_RATE_FROM, win, desc);
	if (valid && reached.ok && win.ok && win.isnull != (DatumGetInt64(reached.value) == 0))
		violation("win_rate_from NULL mismatch", "reached " INT64_FORMAT " but win_rate_from %s at %s",
				  DatumGetInt64(reached.value), win.isnull ? "NULL" : "set", desc);

	/* conversion: both positions valid and in order, or its SQLSTATE */
	desc = psprintf("positions %d and %d", k, k2);
	conv = accessor(F_FU_CONVERSION, 3, args, valid && valid2 && k <= k2,
					(valid && valid2) ? "22023" : "22003", "22003", desc);
	c = rate_result(F_FU_CONVERSION, conv, desc);
	if (valid && valid2 && k <= k2 && conv.ok)
	{
		int64		from = funnel_reached(v, k);
		int64		to = funnel_reached(v, k2);

		if (from >= 0 && to >= 0)
		{
			if (to > from)
				violation("reached rises with the position", "reached(%d) = " INT64_FORMAT " < reached(%d) = " INT64_FORMAT,
						  k, from, k2, to);
			if (conv.isnull != (from == 0) ||
				(!conv.isnull && fabs(c - (double) to / (double) from) > 1e-15))
				violation("conversion is not reached(to) / reached(from)", "conversion %.17g, reached " INT64_FORMAT " and " INT64_FORMAT " at %s",
						  c, from, to, desc);
		}
	}
	check_stages(r, v);
}

static void
check_accessors(FuzzType t, Datum v)
{
	FuzzRng    *r = cur->rng;

	switch (t)
	{
		case FT_WEIGHTED_SUM:
			check_weighted_sum(v);
			break;
		case FT_WINLOSS:
			check_winloss(r, v);
			break;
		case FT_DURATION:
			check_duration(r, v);
			break;
		case FT_SURVIVAL:
			check_survival(r, v);
			break;
		case FT_LIFT:
			check_lift(r, v);
			break;
		case FT_FUNNEL:
			check_funnel(r, v);
			break;
		default:
			break;
	}
}

/*
 * out -> in -> out gives the same text, send -> recv -> send the same
 * bytes, and the value received from its binary form prints as the text.
 * Returns the text form, or NULL when one of these failed.
 */
static char *
check_round_trips(FuzzType t, Datum v, const char *what)
{
	TypeIO	   *io = type_io(t);
	CallResult	out = call_output(io, v);
	CallResult	in,
				out2,
				send,
				recv,
				send2,
				out3;
	bytea	   *b,
			   *b2;

	if (!out.ok)
	{
		violation("output failed", "%s: %s_out raised %s: %s", what, fuzz_type_names[t],
				  sqlstate_text(out.sqlerrcode), out.message);
		return NULL;
	}
	in = call_input(io, DatumGetCString(out.value));
	if (!in.ok)
	{
		violation("text form not re-readable", "%s: %s_in refused its own output %s with %s: %s",
				  what, fuzz_type_names[t], DatumGetCString(out.value), sqlstate_text(in.sqlerrcode), in.message);
		return NULL;
	}
	out2 = call_output(io, in.value);
	if (!out2.ok || strcmp(DatumGetCString(out.value), DatumGetCString(out2.value)) != 0)
		violation("text round trip unstable", "%s: %s became %s", what,
				  DatumGetCString(out.value), out2.ok ? DatumGetCString(out2.value) : out2.message);
	send = call_send(io, v);
	if (!send.ok)
	{
		violation("send failed", "%s: %s_send raised %s: %s on %s", what, fuzz_type_names[t],
				  sqlstate_text(send.sqlerrcode), send.message, DatumGetCString(out.value));
		return NULL;
	}
	b = DatumGetByteaPP(send.value);
	recv = call_receive(io, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	if (!recv.ok)
	{
		violation("binary form not re-readable", "%s: %s_recv refused the send form of %s with %s: %s",
				  what, fuzz_type_names[t], DatumGetCString(out.value), sqlstate_text(recv.sqlerrcode), recv.message);
		return NULL;
	}
	send2 = call_send(io, recv.value);
	b2 = send2.ok ? DatumGetByteaPP(send2.value) : NULL;
	if (b2 == NULL || VARSIZE_ANY_EXHDR(b) != VARSIZE_ANY_EXHDR(b2) ||
		memcmp(VARDATA_ANY(b), VARDATA_ANY(b2), VARSIZE_ANY_EXHDR(b)) != 0)
		violation("binary round trip unstable", "%s: the send form of %s changed through recv", what,
				  DatumGetCString(out.value));
	out3 = call_output(io, recv.value);
	if (!out3.ok || strcmp(DatumGetCString(out.value), DatumGetCString(out3.value)) != 0)
		violation("binary and text forms differ", "%s: %s read back from binary as %s", what,
				  DatumGetCString(out.value), out3.ok ? DatumGetCString(out3.value) : out3.message);
	return DatumGetCString(out.value);
}

/* combine(a, b) succeeds with a good value or fails with 22003, and leaves a and b alone */
static void
check_combine(FuzzType t, Datum a, Datum b, const char *what)
{
	TypeIO	   *io = type_io(t);
	CallResult	before_a = call_output(io, a);
	CallResult	before_b = call_output(io, b);
	Datum		args[2] = {a, b};
	CallResult	res = fn_call(&combine_fns[t], 2, args);
	CallResult	after_a = call_output(io, a);
	CallResult	after_b = call_output(io, b);

	cur->count(cur->arg, "combine", res.ok ? "ok" : psprintf("refused %s", sqlstate_text(res.sqlerrcode)));
	if (before_a.ok && after_a.ok && before_b.ok && after_b.ok &&
		(strcmp(DatumGetCString(before_a.value), DatumGetCString(after_a.value)) != 0 ||
		 strcmp(DatumGetCString(before_b.value), DatumGetCString(after_b.value)) != 0))
		violation("combine changed its argument", "%s: %s was %s and %s, now %s and %s", what,
				  combine_fns[t].signature, DatumGetCString(before_a.value), DatumGetCString(before_b.value),
				  DatumGetCString(after_a.value), DatumGetCString(after_b.value));
	if (!res.ok)
	{
		if (res.sqlerrcode != ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE)
			violation("combine failed", "%s: %s raised %s: %s", what, combine_fns[t].signature,
					  sqlstate_text(res.sqlerrcode), res.message);
		return;
	}
	if (res.isnull)
	{
		violation("combine returned NULL", "%s: %s", what, combine_fns[t].signature);
		return;
	}
	if (check_round_trips(t, res.value, psprintf("%s, combined", what)) != NULL)
		check_accessors(t, res.value);
}

bool
check_value(FuzzChecker *c, FuzzType t, Datum value, Datum other)
{
	FuzzChecker *saved = cur;
	bool		readable;

	cur = c;
	readable = check_round_trips(t, value, "accepted value") != NULL;
	if (readable)
	{
		check_accessors(t, value);
		check_combine(t, value, value, "value with itself");
		if (other != (Datum) 0)
			check_combine(t, value, other, "value with an earlier one");
	}
	cur = saved;
	return readable;
}
