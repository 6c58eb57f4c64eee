/*-------------------------------------------------------------------------
 *
 * survival.c
 *	  survival_agg(age interval, outcome text) -> survival: cohort win rate.
 *
 * Each deal of a cohort contributes its age (creation to close, or to the
 * as-of instant for a deal still open) and its outcome 'won', 'lost' or
 * 'open' (open = right-censored at that age).  Accessors:
 *	 cumulative_win_rate(s, horizon): Aalen-Johansen cumulative incidence of
 *		winning by the horizon, losing being the competing event;
 *	 naive_win_rate(s, horizon): won within the horizon / all deals;
 *	 median_time_to_close(s): Kaplan-Meier median with open deals censored.
 * Ages are whole days (floored; a month counts as 30 days), exact for the
 * first year and binned beyond it (survival_math.h has the resolution).
 * Rows with a NULL age or outcome are skipped; an empty summary gives NULL
 * accessors.  Removing a deal is exact, so moving windows get an inverse.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "summary.h"
#include "survival_math.h"

typedef struct Survival
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	SurvivalSummary sum;
} Survival;

#define TYPNAME "survival"

static Survival *
survival_new(void)
{
	Survival   *s = palloc0(sizeof(Survival));

	SET_VARSIZE(s, sizeof(Survival));
	s->version = SUMMARY_VERSION;
	survival_init(&s->sum);
	return s;
}

static inline Survival *
survival_arg(FunctionCallInfo fcinfo, int n)
{
	return (Survival *) summary_arg(PG_GETARG_DATUM(n), sizeof(Survival), TYPNAME);
}

/* every function here is strict: the state is never NULL */
static inline Survival *
survival_state(FunctionCallInfo fcinfo)
{
	return (Survival *) summary_state(fcinfo, sizeof(Survival), TYPNAME);
}

/* whole days of an interval (floored), months counted as 30 days */
static int32
interval_days(const Interval *iv, const char *what)
{
	int64		days = (int64) iv->month * DAYS_PER_MONTH + iv->day;

	/* floor the time part: -1 hour is day -1 */
	days += iv->time / USECS_PER_DAY - (iv->time % USECS_PER_DAY < 0 ? 1 : 0);
	if (days < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s must not be negative, got %s", what,
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv))))));
	if (days > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s is out of range", what)));
	return (int32) days;
}

static SurvivalOutcome
outcome_arg(FunctionCallInfo fcinfo, int n)
{
	struct varlena *t = pg_detoast_datum_packed((struct varlena *) PG_GETARG_POINTER(n));
	SurvivalOutcome outcome;

	if (!survival_parse_outcome(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &outcome))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("outcome must be won, lost or open, got \"%s\"",
						text_to_cstring((text *) t))));
	return outcome;
}

/* a bin's counter would pass 2^32 - 1 */
static void
survival_count_overflow(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("survival count is out of range"),
			 errdetail("A survival summary counts at most 4294967295 deals of one outcome in one age bin.")));
}

static void
survival_check(const Survival *s, bool binary)
{
	if (!survival_validate(&s->sum, sizeof(SurvivalSummary)))
		summary_invalid(TYPNAME, binary, "The counts do not add up to the totals.");
}

PG_FUNCTION_INFO_V1(survival_in);
Datum
survival_in(PG_FUNCTION_ARGS)
{
	SummaryReader r;
	Survival   *s = survival_new();
	int64		n;

	summary_read_begin(&r, TYPNAME, PG_GETARG_CSTRING(0));
	summary_read_key(&r, "n");
	n = summary_read_int64(&r);
	summary_read_key(&r, "days");
	summary_read_char(&r, '[');
	if (!summary_read_char_if(&r, ']'))
	{
		do
		{
			int64		v[4];

			summary_read_char(&r, '[');
			for (int k = 0; k < 4; k++)
			{
				if (k > 0)
					summary_read_char(&r, ',');
				v[k] = summary_read_int64(&r);
			}
			summary_read_char(&r, ']');
			if (v[0] < 0 || v[0] > PG_INT32_MAX ||
				v[1] < 0 || v[1] > PG_UINT32_MAX || v[2] < 0 || v[2] > PG_UINT32_MAX ||
				v[3] < 0 || v[3] > PG_UINT32_MAX ||
				!survival_add_counts(&s->sum, (int32) v[0], (uint32) v[1], (uint32) v[2], (uint32) v[3]))
				summary_syntax_error(&r, "Invalid day or counts");
		} while (summary_read_char_if(&r, ','));
		summary_read_char(&r, ']');
	}
	summary_read_end(&r);
	if (n < 0 || (uint64) n != s->sum.n)
		summary_invalid(TYPNAME, false, "The count does not match the days.");
	survival_check(s, false);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(survival_out);
Datum
survival_out(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_arg(fcinfo, 0);
	StringInfoData buf;
	SurvivalBinCounts b;
	int			cursor = 0;
	bool		first = true;

	initStringInfo(&buf);
	summary_write_begin(&buf);
	summary_write_int64(&buf, "n", (int64) s->sum.n);
	appendStringInfoString(&buf, ",\"days\":[");
	while (survival_next_bin(&s->sum, &cursor, &b))
	{
		appendStringInfo(&buf, "%s[%d,%u,%u,%u]", first ? "" : ",",
						 b.first_day, b.won, b.lost, b.open);
		first = false;
	}
	appendStringInfoChar(&buf, ']');
	summary_write_end(&buf);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(survival_send);
Datum
survival_send(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_arg(fcinfo, 0);
	StringInfoData buf;
	SurvivalBinCounts b;
	int			cursor = 0;
	int32		nbins = 0;

	while (survival_next_bin(&s->sum, &cursor, &b))
		nbins++;
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SUMMARY_VERSION);
	pq_sendint64(&buf, (int64) s->sum.n);
	pq_sendint32(&buf, nbins);
	cursor = 0;
	while (survival_next_bin(&s->sum, &cursor, &b))
	{
		pq_sendint32(&buf, b.first_day);
		pq_sendint64(&buf, b.won);
		pq_sendint64(&buf, b.lost);
		pq_sendint64(&buf, b.open);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(survival_recv);
Datum
survival_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	Survival   *s = survival_new();
	int64		n;
	int32		nbins;

	summary_recv_version(msg, TYPNAME);
	n = summary_recv_int64(msg, TYPNAME);
	nbins = summary_recv_int32(msg, TYPNAME);
	if (nbins < 0 || nbins > SURVIVAL_NBINS)
		summary_binary_error(TYPNAME, "The bin count is out of range.");
	for (int32 k = 0; k < nbins; k++)
	{
		int32		day = summary_recv_int32(msg, TYPNAME);
		int64		won = summary_recv_int64(msg, TYPNAME);
		int64		lost = summary_recv_int64(msg, TYPNAME);
		int64		open = summary_recv_int64(msg, TYPNAME);

		if (day < 0 || won < 0 || won > PG_UINT32_MAX || lost < 0 || lost > PG_UINT32_MAX ||
			open < 0 || open > PG_UINT32_MAX ||
			!survival_add_counts(&s->sum, day, (uint32) won, (uint32) lost, (uint32) open))
			summary_binary_error(TYPNAME, "A day or its counts are invalid.");
	}
	summary_recv_end(msg, TYPNAME);
	if (n < 0 || (uint64) n != s->sum.n)
		summary_binary_error(TYPNAME, "The count does not match the days.");
	survival_check(s, true);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(survival_agg_trans);
Datum
survival_agg_trans(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_state(fcinfo);
	int32		days = interval_days(PG_GETARG_INTERVAL_P(1), "age");

	if (!survival_add(&s->sum, days, outcome_arg(fcinfo, 2)))
		survival_count_overflow();
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(survival_agg_inv);
Datum
survival_agg_inv(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_state(fcinfo);
	int32		days = interval_days(PG_GETARG_INTERVAL_P(1), "age");

	SurvivalOutcome outcome = outcome_arg(fcinfo, 2);

	if (!survival_remove(&s->sum, days, outcome))
		summary_remove_error(TYPNAME, psprintf("a %s deal of that age", survival_outcome_name(outcome)));
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(survival_combine);
Datum
survival_combine(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_state(fcinfo);
	Survival   *o = survival_arg(fcinfo, 1);

	if (!survival_merge(&s->sum, &o->sum))
		survival_count_overflow();
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(survival_count);
Datum
survival_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) survival_arg(fcinfo, 0)->sum.n);
}

PG_FUNCTION_INFO_V1(survival_cumulative_win_rate);
Datum
survival_cumulative_win_rate(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_arg(fcinfo, 0);
	int32		h = interval_days(PG_GETARG_INTERVAL_P(1), "horizon");

	if (s->sum.n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(survival_cumulative_incidence_won(&s->sum, h));
}

PG_FUNCTION_INFO_V1(survival_naive_win_rate_fn);
Datum
survival_naive_win_rate_fn(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_arg(fcinfo, 0);
	int32		h = interval_days(PG_GETARG_INTERVAL_P(1), "horizon");
	double		rate;

	if (!survival_naive_win_rate(&s->sum, h, &rate))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(rate);
}

PG_FUNCTION_INFO_V1(survival_median_time_to_close);
Datum
survival_median_time_to_close(PG_FUNCTION_ARGS)
{
	Survival   *s = survival_arg(fcinfo, 0);
	int32		days;
	Interval   *iv;

	if (!survival_km_median(&s->sum, &days))
		PG_RETURN_NULL();
	iv = palloc0(sizeof(Interval));
	iv->day = days;
	PG_RETURN_INTERVAL_P(iv);
}
