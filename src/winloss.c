/*-------------------------------------------------------------------------
 *
 * winloss.c
 *	  winloss_agg(won [, amount]) -> winloss, and its accessors.
 *
 * The summary counts won and lost deals and sums the amounts of won deals
 * exactly.  Accessors: win_rate, wilson_lower/upper (Wilson score
 * interval), won_count, lost_count, won_amount, avg_won_amount.
 *
 * NULL handling: a row whose won is NULL is skipped entirely; a row whose
 * amount is NULL counts as won or lost but adds nothing to the amounts (so
 * avg_won_amount averages the won deals that have an amount).  Amounts of
 * lost deals are checked but not kept.  The transition functions that are
 * not strict start from an empty summary when given a NULL one; their
 * inverse gives NULL for a NULL summary (it cannot undo what it never saw).
 *
 * Limits: won + lost is at most 2^63 - 1 and the won amount has at most 38
 * digits.  A row or a merge beyond them is an error (22003), and so is
 * removing a row the summary does not hold (22023), so every value these
 * functions produce reads back through both input functions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "exact_sum.h"
#include "stats_math.h"
#include "summary.h"

typedef struct WinLoss
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	int32		amount_scale;	/* decimal scale of won_amount */
	int64		won;
	int64		lost;
	int64		won_with_amount;	/* won deals whose amount was not NULL */
	int128		won_amount;		/* at amount_scale */
} WinLoss;

#define TYPNAME "winloss"

static WinLoss *
winloss_new(void)
{
	WinLoss    *s = palloc0(sizeof(WinLoss));

	SET_VARSIZE(s, sizeof(WinLoss));
	s->version = SUMMARY_VERSION;
	return s;
}

static void
winloss_check(const WinLoss *s, bool binary)
{
	if (s->won < 0 || s->lost < 0 || s->won_with_amount < 0)
		summary_invalid(TYPNAME, binary, "A count is negative.");
	if (s->won > PG_INT64_MAX - s->lost)
		summary_invalid(TYPNAME, binary, "won + lost is beyond 2^63 - 1.");
	if (s->won_with_amount > s->won)
		summary_invalid(TYPNAME, binary, "More won deals with an amount than won deals.");
	if (s->amount_scale < 0 || s->amount_scale > EXACT_MAX_SCALE)
		summary_invalid(TYPNAME, binary, "The amount scale is out of range.");
	if (!exact_in_range(s->won_amount))
		summary_invalid(TYPNAME, binary, "The won amount has more than 38 digits.");
	if (s->won_amount < 0 || (s->won_with_amount == 0 && s->won_amount != 0))
		summary_invalid(TYPNAME, binary, "The won amount does not match the counts.");
}

static inline WinLoss *
winloss_arg(FunctionCallInfo fcinfo, int n)
{
	return (WinLoss *) summary_arg(PG_GETARG_DATUM(n), sizeof(WinLoss), TYPNAME);
}

/*
 * The state to update (see summary_state); a NULL one starts empty when
 * start_empty, else stays NULL.
 */
static WinLoss *
winloss_state(FunctionCallInfo fcinfo, bool start_empty)
{
	WinLoss    *s = summary_state(fcinfo, sizeof(WinLoss), TYPNAME);

	if (s == NULL && start_empty)
	{
		s = summary_alloc_state(fcinfo, sizeof(WinLoss));
		SET_VARSIZE(s, sizeof(WinLoss));
		s->version = SUMMARY_VERSION;
	}
	return s;
}

PG_FUNCTION_INFO_V1(winloss_in);
Datum
winloss_in(PG_FUNCTION_ARGS)
{
	SummaryReader r;
	WinLoss    *s = winloss_new();

	summary_read_begin(&r, TYPNAME, PG_GETARG_CSTRING(0));
	summary_read_key(&r, "won");
	s->won = summary_read_int64(&r);
	summary_read_key(&r, "lost");
	s->lost = summary_read_int64(&r);
	summary_read_key(&r, "won_with_amount");
	s->won_with_amount = summary_read_int64(&r);
	summary_read_key(&r, "won_amount");
	summary_read_decimal(&r, &s->won_amount, &s->amount_scale);
	summary_read_end(&r);
	winloss_check(s, false);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(winloss_out);
Datum
winloss_out(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_arg(fcinfo, 0);
	StringInfoData buf;

	initStringInfo(&buf);
	summary_write_begin(&buf);
	summary_write_int64(&buf, "won", s->won);
	summary_write_int64(&buf, "lost", s->lost);
	summary_write_int64(&buf, "won_with_amount", s->won_with_amount);
	summary_write_decimal(&buf, "won_amount", s->won_amount, s->amount_scale);
	summary_write_end(&buf);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(winloss_send);
Datum
winloss_send(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_arg(fcinfo, 0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SUMMARY_VERSION);
	pq_sendint64(&buf, s->won);
	pq_sendint64(&buf, s->lost);
	pq_sendint64(&buf, s->won_with_amount);
	pq_sendint32(&buf, s->amount_scale);
	pq_sendint64(&buf, (int64) (s->won_amount >> 64));
	pq_sendint64(&buf, (int64) (uint64) s->won_amount);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(winloss_recv);
Datum
winloss_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	WinLoss    *s = winloss_new();
	int64		hi;
	uint64		lo;

	summary_recv_version(msg, TYPNAME);
	s->won = summary_recv_int64(msg, TYPNAME);
	s->lost = summary_recv_int64(msg, TYPNAME);
	s->won_with_amount = summary_recv_int64(msg, TYPNAME);
	s->amount_scale = summary_recv_int32(msg, TYPNAME);
	hi = summary_recv_int64(msg, TYPNAME);
	lo = (uint64) summary_recv_int64(msg, TYPNAME);
	summary_recv_end(msg, TYPNAME);
	s->won_amount = (int128) (((uint128) (uint64) hi << 64) | lo);
	winloss_check(s, true);
	PG_RETURN_POINTER(s);
}

/*
 * Adds (sign +1) or removes (sign -1) one row.  Everything is checked
 * before anything changes, so an error leaves the summary as it was.
 */
static void
winloss_apply(WinLoss *s, bool won, bool has_amount, Datum amount, int sign)
{
	int128		m = 0;
	int32		scale = 0;

	if (has_amount)
	{
		ExactStatus st = exact_from_numeric(amount, &m, &scale);

		if (st == EXACT_OVERFLOW)
			exact_overflow_error("amount");
		if (st == EXACT_NOT_FINITE || m < 0)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("amount must be a finite number >= 0, got %s",
							DatumGetCString(DirectFunctionCall1(numeric_out, amount)))));
	}
	if (sign > 0)
	{
		if (s->won == PG_INT64_MAX - s->lost)
			summary_count_overflow(TYPNAME);
	}
	else if (won ? (s->won == 0 || (has_amount && s->won_with_amount == 0) ||
					(!has_amount && s->won == s->won_with_amount))
			 : s->lost == 0)
		summary_remove_error(TYPNAME, won ? "a won deal" : "a lost deal");

	if (won && has_amount)
	{
		int128		amt = s->won_amount;
		int32		amt_scale = s->amount_scale;

		if (!exact_add(&amt, &amt_scale, sign * m, scale))
			exact_overflow_error("won amount");
		if (amt < 0 || (s->won_with_amount + sign == 0 && amt != 0))
			summary_remove_error(TYPNAME, "a won amount");
		s->won_amount = amt;
		s->amount_scale = amt_scale;
		s->won_with_amount += sign;
	}
	if (won)
		s->won += sign;
	else
		s->lost += sign;
}

PG_FUNCTION_INFO_V1(winloss_trans);
Datum
winloss_trans(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_state(fcinfo, true);

	winloss_apply(s, PG_GETARG_BOOL(1), false, (Datum) 0, 1);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(winloss_inv);
Datum
winloss_inv(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_state(fcinfo, false);

	winloss_apply(s, PG_GETARG_BOOL(1), false, (Datum) 0, -1);
	PG_RETURN_POINTER(s);
}

/* not strict: a NULL amount still counts the outcome */
PG_FUNCTION_INFO_V1(winloss_amount_trans);
Datum
winloss_amount_trans(PG_FUNCTION_ARGS)
{
	WinLoss    *s;

	if (PG_ARGISNULL(1) && PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = winloss_state(fcinfo, true);
	if (!PG_ARGISNULL(1))
		winloss_apply(s, PG_GETARG_BOOL(1), !PG_ARGISNULL(2),
					  PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2), 1);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(winloss_amount_inv);
Datum
winloss_amount_inv(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_state(fcinfo, false);

	if (s == NULL)
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1))
		winloss_apply(s, PG_GETARG_BOOL(1), !PG_ARGISNULL(2),
					  PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2), -1);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(winloss_combine);
Datum
winloss_combine(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_state(fcinfo, false);
	WinLoss    *o = winloss_arg(fcinfo, 1);
	int128		amt = s->won_amount;
	int32		amt_scale = s->amount_scale;
	int64		won,
				lost,
				with_amount;

	if (pg_add_s64_overflow(s->won, o->won, &won) ||
		pg_add_s64_overflow(s->lost, o->lost, &lost) ||
		won > PG_INT64_MAX - lost ||
		pg_add_s64_overflow(s->won_with_amount, o->won_with_amount, &with_amount))
		summary_count_overflow(TYPNAME);
	if (!exact_add(&amt, &amt_scale, o->won_amount, o->amount_scale))
		exact_overflow_error("won amount");
	s->won = won;
	s->lost = lost;
	s->won_with_amount = with_amount;
	s->won_amount = amt;
	s->amount_scale = amt_scale;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(winloss_win_rate);
Datum
winloss_win_rate(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_arg(fcinfo, 0);

	/* in double: a count read from a table is not trusted to sum in int64 */
	if (s->won == 0 && s->lost == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) s->won / ((double) s->won + (double) s->lost));
}

/* one bound of the Wilson interval at the confidence in argument 1 */
static Datum
wilson_bound(FunctionCallInfo fcinfo, bool upper)
{
	WinLoss    *s = winloss_arg(fcinfo, 0);
	double		confidence = PG_GETARG_FLOAT8(1);
	double		lower_bound,
				upper_bound;

	if (!(confidence > 0 && confidence < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("confidence must be between 0 and 1 (exclusive), got %g", confidence)));
	if (s->won == 0 && s->lost == 0)
		PG_RETURN_NULL();
	wilson_interval((double) s->won, (double) s->won + (double) s->lost, confidence,
					&lower_bound, &upper_bound);
	PG_RETURN_FLOAT8(upper ? upper_bound : lower_bound);
}

PG_FUNCTION_INFO_V1(winloss_wilson_lower);
Datum
winloss_wilson_lower(PG_FUNCTION_ARGS)
{
	return wilson_bound(fcinfo, false);
}

PG_FUNCTION_INFO_V1(winloss_wilson_upper);
Datum
winloss_wilson_upper(PG_FUNCTION_ARGS)
{
	return wilson_bound(fcinfo, true);
}

PG_FUNCTION_INFO_V1(winloss_won_count);
Datum
winloss_won_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(winloss_arg(fcinfo, 0)->won);
}

PG_FUNCTION_INFO_V1(winloss_lost_count);
Datum
winloss_lost_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(winloss_arg(fcinfo, 0)->lost);
}

PG_FUNCTION_INFO_V1(winloss_won_amount);
Datum
winloss_won_amount(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_arg(fcinfo, 0);

	if (s->won_with_amount == 0)
		PG_RETURN_NULL();
	PG_RETURN_NUMERIC(exact_to_numeric(s->won_amount, s->amount_scale));
}

/* won_amount / won_with_amount, with numeric division's own result scale */
PG_FUNCTION_INFO_V1(winloss_avg_won_amount);
Datum
winloss_avg_won_amount(PG_FUNCTION_ARGS)
{
	WinLoss    *s = winloss_arg(fcinfo, 0);
	Datum		n;

	if (s->won_with_amount == 0)
		PG_RETURN_NULL();
	n = DirectFunctionCall1(int8_numeric, Int64GetDatum(s->won_with_amount));
	PG_RETURN_DATUM(DirectFunctionCall2(numeric_div,
										NumericGetDatum(exact_to_numeric(s->won_amount, s->amount_scale)),
										n));
}
