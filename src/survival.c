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
 * compact(s) keeps only the non-empty bins (see SurvivalCompact).
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

/*
 * The compact form: only the non-empty bins, each with its index.  compact()
 * makes it, for finished summaries that are passed on or kept (partials,
 * stored rollups: a few hundred bytes instead of 6 kB); every function reads
 * both forms, and transition and combine functions update the full one.  The
 * magic number sits where the full form has SURVIVAL_MAGIC, which tells the
 * forms apart.  Past 390 non-empty bins the list is not smaller, and
 * compact() keeps the full form.
 */
#define SURVIVAL_COMPACT_MAGIC	0x53525643	/* "SRVC" */

typedef struct SurvivalCompactBin
{
	uint32		bin;			/* index of the bin, ascending */
	uint32		count[SURVIVAL_NOUTCOMES];
} SurvivalCompactBin;

typedef struct SurvivalCompact
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	uint32		magic;			/* SURVIVAL_COMPACT_MAGIC */
	uint32		nbins;			/* number of bins that follow */
	SurvivalCompactBin bins[FLEXIBLE_ARRAY_MEMBER];
} SurvivalCompact;

StaticAssertDecl(offsetof(SurvivalCompact, magic) ==
				 offsetof(Survival, sum) + offsetof(SurvivalSummary, magic),
				 "the forms of a survival value must keep their magic numbers at one offset");

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

/*
 * The compact value a detoasted survival value is, after checking all of
 * it; NULL for the full form.  A bin out of range or out of order, or an
 * empty one, is corruption: compact() never writes them.
 */
static const SurvivalCompact *
survival_compact_form(const SummaryHeader *h)
{
	const SurvivalCompact *c = (const SurvivalCompact *) h;
	Size		size = VARSIZE(h);

	if (size < offsetof(SurvivalCompact, bins) || c->magic != SURVIVAL_COMPACT_MAGIC)
		return NULL;
	/* the size check of summary_arg() is done here; it checks the version */
	summary_arg(PointerGetDatum(h), size, TYPNAME);
	if (c->nbins > SURVIVAL_NBINS ||
		size != offsetof(SurvivalCompact, bins) + c->nbins * sizeof(SurvivalCompactBin))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s value is corrupt", TYPNAME),
				 errdetail("It has %zu bytes for %u bins.", size, c->nbins)));
	for (uint32 k = 0; k < c->nbins; k++)
	{
		const uint32 *count = c->bins[k].count;

		if (c->bins[k].bin >= SURVIVAL_NBINS || (k > 0 && c->bins[k].bin <= c->bins[k - 1].bin) ||
			(count[SURVIVAL_WON] | count[SURVIVAL_LOST] | count[SURVIVAL_OPEN]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("%s value is corrupt", TYPNAME),
					 errdetail("Its bin %u is out of range, out of order or empty.", k)));
	}
	return c;
}

/* add the bins of a compact value to a full summary; false on overflow */
static bool
survival_merge_compact(SurvivalSummary *dst, const SurvivalCompact *src)
{
	for (uint32 k = 0; k < src->nbins; k++)
	{
		const uint32 *count = src->bins[k].count;

		if (!survival_add_counts(dst, survival_bin_first_day((int) src->bins[k].bin),
								 count[SURVIVAL_WON], count[SURVIVAL_LOST], count[SURVIVAL_OPEN]))
			return false;
	}
	return true;
}

/* a new full value holding a compact one */
static Survival *
survival_expand(const SurvivalCompact *c)
{
	Survival   *s = survival_new();

	/* counts of distinct bins of a fresh summary cannot overflow */
	if (!survival_merge_compact(&s->sum, c))
		elog(ERROR, "could not expand a compact survival value");
	return s;
}

/*
 * A full value (already through summary_arg() or summary_state()), after
 * checking its magic number and bin count; with 'all', every count too (the
 * accessors and outputs, which read every bin anyway; not the state of a
 * transition, once per row).
 */
static Survival *
survival_full_form(Survival *s, bool all)
{
	if (all ? !survival_validate(&s->sum, sizeof(SurvivalSummary))
		: (s->sum.magic != SURVIVAL_MAGIC || s->sum.nbins != SURVIVAL_NBINS))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s value is corrupt", TYPNAME),
				 errdetail("Its layout or its counts are not those of a survival summary.")));
	return s;
}

/* a detoasted value that is not compact, as a full one */
static inline Survival *
survival_full_arg(SummaryHeader *h)
{
	return survival_full_form((Survival *) summary_arg(PointerGetDatum(h), sizeof(Survival), TYPNAME), true);
}

/* a survival argument in its full form (a compact one is expanded) */
static Survival *
survival_arg(FunctionCallInfo fcinfo, int n)
{
	SummaryHeader *h = (SummaryHeader *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n));
	const SurvivalCompact *c = survival_compact_form(h);

	if (c != NULL)
		return survival_expand(c);
	return survival_full_arg(h);
}

/*
 * The state to update.  Every function here is strict: the state is never
 * NULL.  A compact state (the first value of a rollup, or a direct call) is
 * replaced by a new full one, which the aggregate then keeps.
 */
static Survival *
survival_state(FunctionCallInfo fcinfo)
{
	const SurvivalCompact *c;

	c = survival_compact_form((SummaryHeader *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0)));
	if (c != NULL)
		return survival_expand(c);
	return survival_full_form((Survival *) summary_state(fcinfo, sizeof(Survival), TYPNAME), false);
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
	SummaryHeader *h = (SummaryHeader *) PG_DETOAST_DATUM(PG_GETARG_DATUM(1));
	const SurvivalCompact *c = survival_compact_form(h);
	bool		ok;

	/* a compact value is added bin by bin, without expanding it */
	if (c != NULL)
		ok = survival_merge_compact(&s->sum, c);
	else
		ok = survival_merge(&s->sum, &survival_full_arg(h)->sum);
	if (!ok)
		survival_count_overflow();
	PG_RETURN_POINTER(s);
}

/*
 * compact(survival): the same summary with only its non-empty bins (or the
 * full form itself when that is not larger).  Every function reads both
 * forms and gives the same results; the text and binary forms do not
 * change.
 */
PG_FUNCTION_INFO_V1(survival_compact);
Datum
survival_compact(PG_FUNCTION_ARGS)
{
	SummaryHeader *h = (SummaryHeader *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	const Survival *s;
	SurvivalCompact *c;
	uint32		nbins = 0;

	if (survival_compact_form(h) != NULL)
		PG_RETURN_POINTER(h);
	s = survival_full_arg(h);
	for (int b = 0; b < SURVIVAL_NBINS; b++)
	{
		const uint32 *count = s->sum.bins[b].count;

		if ((count[SURVIVAL_WON] | count[SURVIVAL_LOST] | count[SURVIVAL_OPEN]) != 0)
			nbins++;
	}
	/* past 390 bins the list is not smaller: the full form stays */
	if (offsetof(SurvivalCompact, bins) + nbins * sizeof(SurvivalCompactBin) >= sizeof(Survival))
		PG_RETURN_POINTER(h);
	c = palloc0(offsetof(SurvivalCompact, bins) + nbins * sizeof(SurvivalCompactBin));
	SET_VARSIZE(c, offsetof(SurvivalCompact, bins) + nbins * sizeof(SurvivalCompactBin));
	c->version = SUMMARY_VERSION;
	c->magic = SURVIVAL_COMPACT_MAGIC;
	c->nbins = nbins;
	nbins = 0;
	for (int b = 0; b < SURVIVAL_NBINS; b++)
	{
		const uint32 *count = s->sum.bins[b].count;

		if ((count[SURVIVAL_WON] | count[SURVIVAL_LOST] | count[SURVIVAL_OPEN]) == 0)
			continue;
		c->bins[nbins].bin = (uint32) b;
		memcpy(c->bins[nbins].count, count, sizeof(c->bins[nbins].count));
		nbins++;
	}
	PG_RETURN_POINTER(c);
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
