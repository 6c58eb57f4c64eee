/*-------------------------------------------------------------------------
 *
 * duration.c
 *	  duration_agg(interval) -> duration_summary, and its accessors.
 *
 * For cycle length, stage durations and time between touches: exact count,
 * mean (from an exact 128-bit sum of microseconds), min and max, and
 * percentiles from a mergeable quantile sketch (qsketch.c) with at most 1%
 * relative error from one second to ten years, in under 8 KB whatever the
 * row count.
 *
 * Intervals are read as microseconds with a month counted as 30 days, as
 * interval comparison does.  NULL rows are skipped; no rows gives NULL
 * accessors (and a count of 0).  The count is at most 2^63 - 1: a row or a
 * merge beyond it is an error (22003).  There is no inverse transition: the
 * sketch could drop values, but min and max would then no longer be exact,
 * so moving windows recompute their frame instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "exact_sum.h"
#include "qsketch.h"
#include "summary.h"

typedef struct DurationSummary
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	int128		sum_us;			/* exact sum of all values, microseconds */
	QSketch		sketch;			/* count, exact min and max, quantiles */
} DurationSummary;

#define TYPNAME "duration_summary"

static DurationSummary *
duration_new(void)
{
	DurationSummary *s = palloc0(sizeof(DurationSummary));

	SET_VARSIZE(s, sizeof(DurationSummary));
	s->version = SUMMARY_VERSION;
	qsketch_init(&s->sketch);
	return s;
}

static inline DurationSummary *
duration_arg(FunctionCallInfo fcinfo, int n)
{
	return (DurationSummary *) summary_arg(PG_GETARG_DATUM(n), sizeof(DurationSummary), TYPNAME);
}

/* every function here is strict: the state is never NULL */
static inline DurationSummary *
duration_state(FunctionCallInfo fcinfo)
{
	return (DurationSummary *) summary_state(fcinfo, sizeof(DurationSummary), TYPNAME);
}

static void
duration_check(const DurationSummary *s, bool binary)
{
	/* the count prints and reads back as a bigint */
	if (s->sketch.count > (uint64) PG_INT64_MAX)
		summary_invalid(TYPNAME, binary, "The count is beyond 2^63 - 1.");
	if (!qsketch_validate(&s->sketch))
		summary_invalid(TYPNAME, binary, "The buckets do not match the count, min and max.");
	if (s->sketch.flags != 0)
		summary_invalid(TYPNAME, binary, "The min and max must be exact.");
	if (s->sketch.count == 0 ? s->sum_us != 0
		: (s->sum_us < (int128) s->sketch.min * (int128) s->sketch.count ||
		   s->sum_us > (int128) s->sketch.max * (int128) s->sketch.count))
		summary_invalid(TYPNAME, binary, "The sum is not between count x min and count x max.");
}

/* an interval as microseconds, months counted as 30 days */
static int64
interval_to_us(const Interval *iv)
{
	int64		days = (int64) iv->month * DAYS_PER_MONTH + iv->day;
	int64		us;

	if (pg_mul_s64_overflow(days, USECS_PER_DAY, &us) ||
		pg_add_s64_overflow(us, iv->time, &us))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("duration is out of range")));
	return us;
}

/* microseconds as an interval of days and time, as timestamp - timestamp gives */
static Interval *
us_to_interval(int64 us)
{
	Interval   *iv = palloc(sizeof(Interval));

	iv->month = 0;
	iv->day = (int32) (us / USECS_PER_DAY);
	iv->time = us % USECS_PER_DAY;
	return iv;
}

PG_FUNCTION_INFO_V1(duration_summary_in);
Datum
duration_summary_in(PG_FUNCTION_ARGS)
{
	SummaryReader r;
	DurationSummary *s = duration_new();
	int32		scale;
	int64		count;

	summary_read_begin(&r, TYPNAME, PG_GETARG_CSTRING(0));
	summary_read_key(&r, "n");
	count = summary_read_int64(&r);
	summary_read_key(&r, "sum_us");
	summary_read_decimal(&r, &s->sum_us, &scale);
	if (scale != 0)
		summary_syntax_error(&r, "The sum must be a whole number of microseconds");
	summary_read_key(&r, "min_us");
	s->sketch.min = summary_read_int64(&r);
	summary_read_key(&r, "max_us");
	s->sketch.max = summary_read_int64(&r);
	summary_read_key(&r, "buckets");
	summary_read_char(&r, '[');
	if (!summary_read_char_if(&r, ']'))
	{
		do
		{
			int64		index;
			int64		c;

			summary_read_char(&r, '[');
			index = summary_read_int64(&r);
			summary_read_char(&r, ',');
			c = summary_read_int64(&r);
			summary_read_char(&r, ']');
			if (index < 0 || index >= QSKETCH_NBUCKETS || c <= 0 ||
				s->sketch.buckets[index] != 0 ||
				!qsketch_set_bucket(&s->sketch, (int) index, (uint64) c))
				summary_syntax_error(&r, "Invalid or repeated bucket");
		} while (summary_read_char_if(&r, ','));
		summary_read_char(&r, ']');
	}
	summary_read_end(&r);
	if (count < 0)
		summary_invalid(TYPNAME, false, "The count is negative.");
	s->sketch.count = (uint64) count;
	duration_check(s, false);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(duration_summary_out);
Datum
duration_summary_out(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_arg(fcinfo, 0);
	StringInfoData buf;
	uint64		c;
	bool		first = true;

	initStringInfo(&buf);
	summary_write_begin(&buf);
	summary_write_int64(&buf, "n", (int64) s->sketch.count);
	summary_write_decimal(&buf, "sum_us", s->sum_us, 0);
	summary_write_int64(&buf, "min_us", s->sketch.min);
	summary_write_int64(&buf, "max_us", s->sketch.max);
	appendStringInfoString(&buf, ",\"buckets\":[");
	for (int i = qsketch_next_bucket(&s->sketch, 0, &c); i >= 0;
		 i = qsketch_next_bucket(&s->sketch, i + 1, &c))
	{
		appendStringInfo(&buf, "%s[%d," UINT64_FORMAT "]", first ? "" : ",", i, c);
		first = false;
	}
	appendStringInfoChar(&buf, ']');
	summary_write_end(&buf);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(duration_summary_send);
Datum
duration_summary_send(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_arg(fcinfo, 0);
	StringInfoData buf;
	uint64		c;
	int32		n = 0;

	for (int i = qsketch_next_bucket(&s->sketch, 0, &c); i >= 0;
		 i = qsketch_next_bucket(&s->sketch, i + 1, &c))
		n++;
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SUMMARY_VERSION);
	pq_sendint64(&buf, (int64) s->sketch.count);
	pq_sendint64(&buf, (int64) (s->sum_us >> 64));
	pq_sendint64(&buf, (int64) (uint64) s->sum_us);
	pq_sendint64(&buf, s->sketch.min);
	pq_sendint64(&buf, s->sketch.max);
	pq_sendint32(&buf, n);
	for (int i = qsketch_next_bucket(&s->sketch, 0, &c); i >= 0;
		 i = qsketch_next_bucket(&s->sketch, i + 1, &c))
	{
		pq_sendint32(&buf, i);
		pq_sendint64(&buf, (int64) c);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(duration_summary_recv);
Datum
duration_summary_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	DurationSummary *s = duration_new();
	int64		count;
	int64		hi;
	uint64		lo;
	int32		n;

	summary_recv_version(msg, TYPNAME);
	count = summary_recv_int64(msg, TYPNAME);
	hi = summary_recv_int64(msg, TYPNAME);
	lo = (uint64) summary_recv_int64(msg, TYPNAME);
	s->sum_us = (int128) (((uint128) (uint64) hi << 64) | lo);
	s->sketch.min = summary_recv_int64(msg, TYPNAME);
	s->sketch.max = summary_recv_int64(msg, TYPNAME);
	n = summary_recv_int32(msg, TYPNAME);
	if (n < 0 || n > QSKETCH_NBUCKETS)
		summary_binary_error(TYPNAME, "The bucket count is out of range.");
	for (int32 k = 0; k < n; k++)
	{
		int32		index = summary_recv_int32(msg, TYPNAME);
		int64		c = summary_recv_int64(msg, TYPNAME);

		if (index < 0 || index >= QSKETCH_NBUCKETS || c <= 0 ||
			s->sketch.buckets[index] != 0 ||
			!qsketch_set_bucket(&s->sketch, index, (uint64) c))
			summary_binary_error(TYPNAME, "A bucket is invalid or repeated.");
	}
	summary_recv_end(msg, TYPNAME);
	if (count < 0)
		summary_binary_error(TYPNAME, "The count is negative.");
	s->sketch.count = (uint64) count;
	duration_check(s, true);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(duration_agg_trans);
Datum
duration_agg_trans(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_state(fcinfo);
	Interval   *iv = PG_GETARG_INTERVAL_P(1);
	int64		us = interval_to_us(iv);

	if (us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("duration must not be negative, got %s",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv))))));
	if (s->sketch.count == (uint64) PG_INT64_MAX || !qsketch_add(&s->sketch, us))
		summary_count_overflow(TYPNAME);
	s->sum_us += us;			/* 2^63 rows of 2^63 us: below 10^38 */
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(duration_summary_combine);
Datum
duration_summary_combine(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_state(fcinfo);
	DurationSummary *o = duration_arg(fcinfo, 1);

	if (o->sketch.count > (uint64) PG_INT64_MAX - s->sketch.count ||
		!qsketch_merge(&s->sketch, &o->sketch))
		summary_count_overflow(TYPNAME);
	s->sum_us += o->sum_us;		/* at most count x max: below 10^38 */
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(duration_count);
Datum
duration_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) duration_arg(fcinfo, 0)->sketch.count);
}

/* exact mean, rounded to the microsecond */
PG_FUNCTION_INFO_V1(duration_mean);
Datum
duration_mean(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_arg(fcinfo, 0);
	int128		n;
	int128		q;

	if (s->sketch.count == 0)
		PG_RETURN_NULL();
	n = (int128) s->sketch.count;
	q = (s->sum_us + n / 2) / n;	/* sums are never negative */
	PG_RETURN_INTERVAL_P(us_to_interval((int64) q));
}

PG_FUNCTION_INFO_V1(duration_min);
Datum
duration_min(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_arg(fcinfo, 0);

	if (s->sketch.count == 0)
		PG_RETURN_NULL();
	PG_RETURN_INTERVAL_P(us_to_interval(s->sketch.min));
}

PG_FUNCTION_INFO_V1(duration_max);
Datum
duration_max(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_arg(fcinfo, 0);

	if (s->sketch.count == 0)
		PG_RETURN_NULL();
	PG_RETURN_INTERVAL_P(us_to_interval(s->sketch.max));
}

/*
 * percentile(summary, q): the value of rank floor(q * (n - 1)) in sorted
 * order (the lower quantile), within 1% when it lies in [1 s, 10 years];
 * q = 0 and q = 1 give the exact min and max.
 */
PG_FUNCTION_INFO_V1(duration_percentile);
Datum
duration_percentile(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_arg(fcinfo, 0);
	double		q = PG_GETARG_FLOAT8(1);

	if (!(q >= 0 && q <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("percentile must be between 0 and 1, got %g", q)));
	if (s->sketch.count == 0)
		PG_RETURN_NULL();
	PG_RETURN_INTERVAL_P(us_to_interval(qsketch_quantile(&s->sketch, q)));
}

PG_FUNCTION_INFO_V1(duration_median);
Datum
duration_median(PG_FUNCTION_ARGS)
{
	DurationSummary *s = duration_arg(fcinfo, 0);

	if (s->sketch.count == 0)
		PG_RETURN_NULL();
	PG_RETURN_INTERVAL_P(us_to_interval(qsketch_quantile(&s->sketch, 0.5)));
}
