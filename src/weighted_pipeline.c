/*-------------------------------------------------------------------------
 *
 * weighted_pipeline.c
 *	  weighted_pipeline(amount, probability): exact sum of amount x p.
 *
 * The state type weighted_sum is a real type (so partial states can move
 * between processes and nodes through its I/O) holding a row count and the
 * sum as a 128-bit mantissa at the largest scale seen.  The result equals
 * the SQL expression sum(amount * probability) to the last digit.
 *
 * NULL amount or probability: the row is skipped (as sum() skips a NULL
 * product); no rows give NULL.  The sum has at most 38 digits and the row
 * count at most 2^63 - 1: a row or a merge beyond them is an error (22003),
 * and so is an inverse removing more than the state holds (22023).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "exact_sum.h"
#include "summary.h"

typedef struct WeightedSum
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	int32		scale;			/* decimal scale of sum */
	int64		count;			/* rows included */
	int128		sum;			/* sum of amount x probability, at scale */
} WeightedSum;

#define TYPNAME "weighted_sum"

static WeightedSum *
weighted_sum_new(void)
{
	WeightedSum *s = palloc0(sizeof(WeightedSum));

	SET_VARSIZE(s, sizeof(WeightedSum));
	s->version = SUMMARY_VERSION;
	return s;
}

static void
weighted_sum_check(const WeightedSum *s, bool binary)
{
	if (s->count < 0)
		summary_invalid(TYPNAME, binary, "The row count is negative.");
	if (s->scale < 0 || s->scale > EXACT_MAX_SCALE)
		summary_invalid(TYPNAME, binary, "The scale is out of range.");
	if (!exact_in_range(s->sum))
		summary_invalid(TYPNAME, binary, "The sum has more than 38 digits.");
	if (s->count == 0 && s->sum != 0)
		summary_invalid(TYPNAME, binary, "An empty sum is not zero.");
	if (s->sum < 0)
		summary_invalid(TYPNAME, binary, "The sum is negative.");
}

static inline WeightedSum *
weighted_sum_arg(FunctionCallInfo fcinfo, int n)
{
	return (WeightedSum *) summary_arg(PG_GETARG_DATUM(n), sizeof(WeightedSum), TYPNAME);
}

/* every function here is strict: the state is never NULL */
static inline WeightedSum *
weighted_sum_state(FunctionCallInfo fcinfo)
{
	return (WeightedSum *) summary_state(fcinfo, sizeof(WeightedSum), TYPNAME);
}

PG_FUNCTION_INFO_V1(weighted_sum_in);
Datum
weighted_sum_in(PG_FUNCTION_ARGS)
{
	SummaryReader r;
	WeightedSum *s = weighted_sum_new();

	summary_read_begin(&r, TYPNAME, PG_GETARG_CSTRING(0));
	summary_read_key(&r, "n");
	s->count = summary_read_int64(&r);
	summary_read_key(&r, "sum");
	summary_read_decimal(&r, &s->sum, &s->scale);
	summary_read_end(&r);
	weighted_sum_check(s, false);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(weighted_sum_out);
Datum
weighted_sum_out(PG_FUNCTION_ARGS)
{
	WeightedSum *s = weighted_sum_arg(fcinfo, 0);
	StringInfoData buf;

	initStringInfo(&buf);
	summary_write_begin(&buf);
	summary_write_int64(&buf, "n", s->count);
	summary_write_decimal(&buf, "sum", s->sum, s->scale);
	summary_write_end(&buf);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(weighted_sum_send);
Datum
weighted_sum_send(PG_FUNCTION_ARGS)
{
	WeightedSum *s = weighted_sum_arg(fcinfo, 0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SUMMARY_VERSION);
	pq_sendint64(&buf, s->count);
	pq_sendint32(&buf, s->scale);
	pq_sendint64(&buf, (int64) (s->sum >> 64));
	pq_sendint64(&buf, (int64) (uint64) s->sum);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(weighted_sum_recv);
Datum
weighted_sum_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	WeightedSum *s = weighted_sum_new();
	int64		hi;
	uint64		lo;

	summary_recv_version(msg, TYPNAME);
	s->count = summary_recv_int64(msg, TYPNAME);
	s->scale = summary_recv_int32(msg, TYPNAME);
	hi = summary_recv_int64(msg, TYPNAME);
	lo = (uint64) summary_recv_int64(msg, TYPNAME);
	summary_recv_end(msg, TYPNAME);
	s->sum = (int128) (((uint128) (uint64) hi << 64) | lo);
	weighted_sum_check(s, true);
	PG_RETURN_POINTER(s);
}

/* 0 <= m / 10^scale <= 1 */
static bool
in_unit_interval(int128 m, int32 scale)
{
	int128		one = 1;
	int32		one_scale = 0;

	return m >= 0 && exact_rescale(&one, &one_scale, scale) && m <= one;
}

/* amount x probability of one row, after checking both arguments */
static void
weighted_term(Datum amount, Datum probability, int128 *term, int32 *scale)
{
	int128		a,
				p;
	int32		a_scale,
				p_scale;
	ExactStatus st;

	st = exact_from_numeric(amount, &a, &a_scale);
	if (st == EXACT_NOT_FINITE)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("amount must be a finite number, got %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, amount)))));
	if (st == EXACT_OVERFLOW)
		exact_overflow_error("amount");
	if (a < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("amount must not be negative, got %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, amount)))));

	st = exact_from_numeric(probability, &p, &p_scale);
	if (st == EXACT_OVERFLOW)
		exact_overflow_error("probability");
	if (st == EXACT_NOT_FINITE || !in_unit_interval(p, p_scale))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("probability must be between 0 and 1, got %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, probability)))));

	if (!exact_mul(a, a_scale, p, p_scale, term, scale))
		exact_overflow_error("amount x probability");
}

PG_FUNCTION_INFO_V1(weighted_pipeline_trans);
Datum
weighted_pipeline_trans(PG_FUNCTION_ARGS)
{
	WeightedSum *s = weighted_sum_state(fcinfo);
	int128		term;
	int32		scale;

	weighted_term(PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), &term, &scale);
	if (s->count == PG_INT64_MAX)
		summary_count_overflow(TYPNAME);
	if (!exact_add(&s->sum, &s->scale, term, scale))
		exact_overflow_error("weighted pipeline");
	s->count++;
	PG_RETURN_POINTER(s);
}

/* inverse transition: a row leaves a moving window */
PG_FUNCTION_INFO_V1(weighted_pipeline_inv);
Datum
weighted_pipeline_inv(PG_FUNCTION_ARGS)
{
	WeightedSum *s = weighted_sum_state(fcinfo);
	int128		term;
	int32		scale;

	int128		sum;
	int32		sum_scale;

	weighted_term(PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), &term, &scale);
	sum = s->sum;
	sum_scale = s->scale;
	if (!exact_add(&sum, &sum_scale, -term, scale))
		exact_overflow_error("weighted pipeline");
	if (s->count == 0 || sum < 0 || (s->count == 1 && sum != 0))
		summary_remove_error(TYPNAME, "a row");
	s->sum = sum;
	s->scale = sum_scale;
	s->count--;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(weighted_sum_combine);
Datum
weighted_sum_combine(PG_FUNCTION_ARGS)
{
	WeightedSum *s = weighted_sum_state(fcinfo);
	WeightedSum *other = weighted_sum_arg(fcinfo, 1);
	int64		count;

	if (pg_add_s64_overflow(s->count, other->count, &count))
		summary_count_overflow(TYPNAME);
	if (!exact_add(&s->sum, &s->scale, other->sum, other->scale))
		exact_overflow_error("weighted pipeline");
	s->count = count;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(weighted_pipeline_final);
Datum
weighted_pipeline_final(PG_FUNCTION_ARGS)
{
	WeightedSum *s = weighted_sum_arg(fcinfo, 0);

	if (s->count == 0)
		PG_RETURN_NULL();
	PG_RETURN_NUMERIC(exact_to_numeric(s->sum, s->scale));
}
