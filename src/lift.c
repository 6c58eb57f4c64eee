/*-------------------------------------------------------------------------
 *
 * lift.c
 *	  lift_agg(outcome, factor) -> lift: how much a behaviour goes with an
 *	  outcome (for example a demo held and the deal won).
 *
 * The summary is the 2x2 table of counts.  Accessors: rate_with,
 * rate_without, lift (rate_with / rate_without), odds_ratio and its Woolf
 * confidence interval (odds_ratio_lower/upper), with 0.5 added to every
 * cell when one is zero.  Rows with a NULL argument are skipped; a rate
 * without data is NULL, and so is a ratio whose denominator is zero.  A
 * count beyond 2^63 - 1 is an error (22003), and so is removing a row the
 * summary does not hold (22023).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "stats_math.h"
#include "summary.h"

typedef struct Lift
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	int64		with_true;		/* factor present, outcome true */
	int64		with_false;
	int64		without_true;	/* factor absent, outcome true */
	int64		without_false;
} Lift;

#define TYPNAME "lift"

static Lift *
lift_new(void)
{
	Lift	   *s = palloc0(sizeof(Lift));

	SET_VARSIZE(s, sizeof(Lift));
	s->version = SUMMARY_VERSION;
	return s;
}

static inline Lift *
lift_arg(FunctionCallInfo fcinfo, int n)
{
	return (Lift *) summary_arg(PG_GETARG_DATUM(n), sizeof(Lift), TYPNAME);
}

/* every function here is strict: the state is never NULL */
static inline Lift *
lift_state(FunctionCallInfo fcinfo)
{
	return (Lift *) summary_state(fcinfo, sizeof(Lift), TYPNAME);
}

static void
lift_check(const Lift *s, bool binary)
{
	if (s->with_true < 0 || s->with_false < 0 || s->without_true < 0 || s->without_false < 0)
		summary_invalid(TYPNAME, binary, "A count is negative.");
}

PG_FUNCTION_INFO_V1(lift_in);
Datum
lift_in(PG_FUNCTION_ARGS)
{
	SummaryReader r;
	Lift	   *s = lift_new();

	summary_read_begin(&r, TYPNAME, PG_GETARG_CSTRING(0));
	summary_read_key(&r, "with_true");
	s->with_true = summary_read_int64(&r);
	summary_read_key(&r, "with_false");
	s->with_false = summary_read_int64(&r);
	summary_read_key(&r, "without_true");
	s->without_true = summary_read_int64(&r);
	summary_read_key(&r, "without_false");
	s->without_false = summary_read_int64(&r);
	summary_read_end(&r);
	lift_check(s, false);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(lift_out);
Datum
lift_out(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_arg(fcinfo, 0);
	StringInfoData buf;

	initStringInfo(&buf);
	summary_write_begin(&buf);
	summary_write_int64(&buf, "with_true", s->with_true);
	summary_write_int64(&buf, "with_false", s->with_false);
	summary_write_int64(&buf, "without_true", s->without_true);
	summary_write_int64(&buf, "without_false", s->without_false);
	summary_write_end(&buf);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(lift_send);
Datum
lift_send(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_arg(fcinfo, 0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SUMMARY_VERSION);
	pq_sendint64(&buf, s->with_true);
	pq_sendint64(&buf, s->with_false);
	pq_sendint64(&buf, s->without_true);
	pq_sendint64(&buf, s->without_false);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(lift_recv);
Datum
lift_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	Lift	   *s = lift_new();

	summary_recv_version(msg, TYPNAME);
	s->with_true = summary_recv_int64(msg, TYPNAME);
	s->with_false = summary_recv_int64(msg, TYPNAME);
	s->without_true = summary_recv_int64(msg, TYPNAME);
	s->without_false = summary_recv_int64(msg, TYPNAME);
	summary_recv_end(msg, TYPNAME);
	lift_check(s, true);
	PG_RETURN_POINTER(s);
}

static inline int64 *
lift_cell(Lift *s, bool outcome, bool factor)
{
	if (factor)
		return outcome ? &s->with_true : &s->with_false;
	return outcome ? &s->without_true : &s->without_false;
}

PG_FUNCTION_INFO_V1(lift_trans);
Datum
lift_trans(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_state(fcinfo);
	int64	   *cell = lift_cell(s, PG_GETARG_BOOL(1), PG_GETARG_BOOL(2));

	if (*cell == PG_INT64_MAX)
		summary_count_overflow(TYPNAME);
	(*cell)++;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(lift_inv);
Datum
lift_inv(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_state(fcinfo);
	int64	   *cell = lift_cell(s, PG_GETARG_BOOL(1), PG_GETARG_BOOL(2));

	if (*cell == 0)
		summary_remove_error(TYPNAME, "a row");
	(*cell)--;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(lift_combine);
Datum
lift_combine(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_state(fcinfo);
	Lift	   *o = lift_arg(fcinfo, 1);
	Lift		sum = *s;

	if (pg_add_s64_overflow(s->with_true, o->with_true, &sum.with_true) ||
		pg_add_s64_overflow(s->with_false, o->with_false, &sum.with_false) ||
		pg_add_s64_overflow(s->without_true, o->without_true, &sum.without_true) ||
		pg_add_s64_overflow(s->without_false, o->without_false, &sum.without_false))
		summary_count_overflow(TYPNAME);
	*s = sum;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(lift_rate_with);
Datum
lift_rate_with(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_arg(fcinfo, 0);

	if (s->with_true == 0 && s->with_false == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) s->with_true / ((double) s->with_true + (double) s->with_false));
}

PG_FUNCTION_INFO_V1(lift_rate_without);
Datum
lift_rate_without(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_arg(fcinfo, 0);

	if (s->without_true == 0 && s->without_false == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) s->without_true / ((double) s->without_true + (double) s->without_false));
}

/* rate_with / rate_without; NULL when either rate is undefined or zero below */
PG_FUNCTION_INFO_V1(lift_lift);
Datum
lift_lift(PG_FUNCTION_ARGS)
{
	Lift	   *s = lift_arg(fcinfo, 0);
	double		n_with = (double) s->with_true + (double) s->with_false;
	double		n_without = (double) s->without_true + (double) s->without_false;

	if (n_with == 0 || n_without == 0 || s->without_true == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(((double) s->with_true / n_with) /
					 ((double) s->without_true / n_without));
}

/* 0: odds ratio, 1: lower bound, 2: upper bound */
static Datum
odds_ratio_part(FunctionCallInfo fcinfo, int part, double confidence)
{
	Lift	   *s = lift_arg(fcinfo, 0);
	double		v[3];

	if (!(confidence > 0 && confidence < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("confidence must be between 0 and 1 (exclusive), got %g", confidence)));
	/* no data on one side: there is nothing to compare */
	if ((s->with_true == 0 && s->with_false == 0) ||
		(s->without_true == 0 && s->without_false == 0))
		PG_RETURN_NULL();
	odds_ratio_interval((double) s->with_true, (double) s->with_false,
						(double) s->without_true, (double) s->without_false,
						confidence, &v[0], &v[1], &v[2]);
	PG_RETURN_FLOAT8(v[part]);
}

PG_FUNCTION_INFO_V1(lift_odds_ratio);
Datum
lift_odds_ratio(PG_FUNCTION_ARGS)
{
	return odds_ratio_part(fcinfo, 0, 0.95);
}

PG_FUNCTION_INFO_V1(lift_odds_ratio_lower);
Datum
lift_odds_ratio_lower(PG_FUNCTION_ARGS)
{
	return odds_ratio_part(fcinfo, 1, PG_GETARG_FLOAT8(1));
}

PG_FUNCTION_INFO_V1(lift_odds_ratio_upper);
Datum
lift_odds_ratio_upper(PG_FUNCTION_ARGS)
{
	return odds_ratio_part(fcinfo, 2, PG_GETARG_FLOAT8(1));
}
