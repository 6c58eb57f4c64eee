/*-------------------------------------------------------------------------
 *
 * funnel.c
 *	  funnel_agg(reached_position [, won]) -> funnel: stage conversion.
 *
 * Each deal contributes the highest open-stage position it reached (a
 * skipped stage counts as passed, so reaching k means passing 1..k; give a
 * won deal the last open position) and, optionally, whether it was won.
 * The summary keeps, per position k, the deals whose highest position is
 * exactly k and how many of those were won; "reached k" is then the count
 * at k or beyond.  Accessors: reached(f, k), conversion(f, from, to),
 * win_rate_from(f, k) and the set-returning stages(f).
 *
 * Positions run from 1 to FUNNEL_MAX_POSITIONS.  A NULL position skips the
 * row; a NULL won counts the deal as reached but not won (it is still open),
 * which is what stage-to-win rates divide by.  The transition functions are
 * not strict: given a NULL summary they start an empty one, and the inverse
 * gives NULL (it cannot undo what it never saw).  A count beyond 2^63 - 1
 * is an error (22003), in the accessors' sums too, and so is removing a
 * deal the summary does not hold (22023).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "summary.h"

#define FUNNEL_MAX_POSITIONS 64

typedef struct Funnel
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	int64		at[FUNNEL_MAX_POSITIONS];	/* highest position exactly k+1 */
	int64		won_at[FUNNEL_MAX_POSITIONS];	/* of those, won */
} Funnel;

#define TYPNAME "funnel"

static Funnel *
funnel_new(void)
{
	Funnel	   *s = palloc0(sizeof(Funnel));

	SET_VARSIZE(s, sizeof(Funnel));
	s->version = SUMMARY_VERSION;
	return s;
}

static inline Funnel *
funnel_arg(FunctionCallInfo fcinfo, int n)
{
	return (Funnel *) summary_arg(PG_GETARG_DATUM(n), sizeof(Funnel), TYPNAME);
}

/*
 * The state to update (see summary_state); a NULL one starts empty when
 * start_empty, else stays NULL.
 */
static Funnel *
funnel_state(FunctionCallInfo fcinfo, bool start_empty)
{
	Funnel	   *s = summary_state(fcinfo, sizeof(Funnel), TYPNAME);

	if (s == NULL && start_empty)
	{
		s = summary_alloc_state(fcinfo, sizeof(Funnel));
		SET_VARSIZE(s, sizeof(Funnel));
		s->version = SUMMARY_VERSION;
	}
	return s;
}

static void
funnel_check(const Funnel *s, bool binary)
{
	for (int k = 0; k < FUNNEL_MAX_POSITIONS; k++)
		if (s->at[k] < 0 || s->won_at[k] < 0 || s->won_at[k] > s->at[k])
			summary_invalid(TYPNAME, binary, "Counts must be >= 0, with no more won than reached at a position.");
}

/* a position argument of the aggregate or an accessor, 1-based */
static int
position_arg(int32 position, const char *name)
{
	if (position < 1 || position > FUNNEL_MAX_POSITIONS)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s must be between 1 and %d, got %d", name, FUNNEL_MAX_POSITIONS, position)));
	return position - 1;
}

/* a + b, or an error when the count would pass 2^63 - 1 */
static inline int64
count_add(int64 a, int64 b)
{
	int64		sum;

	if (pg_add_s64_overflow(a, b, &sum))
		summary_count_overflow(TYPNAME);
	return sum;
}

/* deals whose highest position is k or beyond (0-based k), and of those won */
static void
funnel_from(const Funnel *s, int k, int64 *reached, int64 *won)
{
	*reached = 0;
	*won = 0;
	for (int j = k; j < FUNNEL_MAX_POSITIONS; j++)
	{
		*reached = count_add(*reached, s->at[j]);
		*won = count_add(*won, s->won_at[j]);
	}
}

PG_FUNCTION_INFO_V1(funnel_in);
Datum
funnel_in(PG_FUNCTION_ARGS)
{
	SummaryReader r;
	Funnel	   *s = funnel_new();

	summary_read_begin(&r, TYPNAME, PG_GETARG_CSTRING(0));
	summary_read_key(&r, "positions");
	summary_read_char(&r, '[');
	if (!summary_read_char_if(&r, ']'))
	{
		do
		{
			int64		pos,
						at,
						won;

			summary_read_char(&r, '[');
			pos = summary_read_int64(&r);
			summary_read_char(&r, ',');
			at = summary_read_int64(&r);
			summary_read_char(&r, ',');
			won = summary_read_int64(&r);
			summary_read_char(&r, ']');
			if (pos < 1 || pos > FUNNEL_MAX_POSITIONS || s->at[pos - 1] != 0 || at <= 0)
				summary_syntax_error(&r, "Invalid or repeated position");
			s->at[pos - 1] = at;
			s->won_at[pos - 1] = won;
		} while (summary_read_char_if(&r, ','));
		summary_read_char(&r, ']');
	}
	summary_read_end(&r);
	funnel_check(s, false);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(funnel_out);
Datum
funnel_out(PG_FUNCTION_ARGS)
{
	Funnel	   *s = funnel_arg(fcinfo, 0);
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	summary_write_begin(&buf);
	appendStringInfoString(&buf, ",\"positions\":[");
	for (int k = 0; k < FUNNEL_MAX_POSITIONS; k++)
	{
		if (s->at[k] == 0)
			continue;
		appendStringInfo(&buf, "%s[%d," INT64_FORMAT "," INT64_FORMAT "]",
						 first ? "" : ",", k + 1, s->at[k], s->won_at[k]);
		first = false;
	}
	appendStringInfoChar(&buf, ']');
	summary_write_end(&buf);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(funnel_send);
Datum
funnel_send(PG_FUNCTION_ARGS)
{
	Funnel	   *s = funnel_arg(fcinfo, 0);
	StringInfoData buf;
	int32		n = 0;

	for (int k = 0; k < FUNNEL_MAX_POSITIONS; k++)
		n += (s->at[k] != 0);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SUMMARY_VERSION);
	pq_sendint32(&buf, n);
	for (int k = 0; k < FUNNEL_MAX_POSITIONS; k++)
	{
		if (s->at[k] == 0)
			continue;
		pq_sendint32(&buf, k + 1);
		pq_sendint64(&buf, s->at[k]);
		pq_sendint64(&buf, s->won_at[k]);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(funnel_recv);
Datum
funnel_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	Funnel	   *s = funnel_new();
	int32		n;

	summary_recv_version(msg, TYPNAME);
	n = summary_recv_int32(msg, TYPNAME);
	if (n < 0 || n > FUNNEL_MAX_POSITIONS)
		summary_binary_error(TYPNAME, "The position count is out of range.");
	for (int32 i = 0; i < n; i++)
	{
		int32		pos = summary_recv_int32(msg, TYPNAME);
		int64		at = summary_recv_int64(msg, TYPNAME);
		int64		won = summary_recv_int64(msg, TYPNAME);

		if (pos < 1 || pos > FUNNEL_MAX_POSITIONS || s->at[pos - 1] != 0 || at <= 0)
			summary_binary_error(TYPNAME, "A position is invalid or repeated.");
		s->at[pos - 1] = at;
		s->won_at[pos - 1] = won;
	}
	summary_recv_end(msg, TYPNAME);
	funnel_check(s, true);
	PG_RETURN_POINTER(s);
}

/*
 * Adds (sign 1) or removes (sign -1) a deal; won may be NULL (not won).
 * Not strict: a NULL summary starts empty when adding and stays NULL when
 * removing; a NULL position leaves the summary as it is.
 */
static Datum
funnel_apply(FunctionCallInfo fcinfo, int sign)
{
	Funnel	   *s;
	int			k;
	bool		won;

	if (PG_ARGISNULL(1) || (sign < 0 && PG_ARGISNULL(0)))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(funnel_state(fcinfo, false));
	}
	k = position_arg(PG_GETARG_INT32(1), "reached_position");
	won = PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	s = funnel_state(fcinfo, true);
	if (sign > 0)
	{
		s->at[k] = count_add(s->at[k], 1);
		if (won)
			s->won_at[k]++;		/* won_at <= at */
	}
	else
	{
		if (won ? s->won_at[k] == 0 : s->at[k] == s->won_at[k])
			summary_remove_error(TYPNAME, won ? "a won deal" : "a deal");
		s->at[k]--;
		if (won)
			s->won_at[k]--;
	}
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(funnel_trans);
Datum
funnel_trans(PG_FUNCTION_ARGS)
{
	return funnel_apply(fcinfo, 1);
}

PG_FUNCTION_INFO_V1(funnel_inv);
Datum
funnel_inv(PG_FUNCTION_ARGS)
{
	return funnel_apply(fcinfo, -1);
}

PG_FUNCTION_INFO_V1(funnel_combine);
Datum
funnel_combine(PG_FUNCTION_ARGS)
{
	Funnel	   *s = funnel_state(fcinfo, false);
	Funnel	   *o = funnel_arg(fcinfo, 1);
	int64		at[FUNNEL_MAX_POSITIONS];

	/* check every position before changing any */
	for (int k = 0; k < FUNNEL_MAX_POSITIONS; k++)
		at[k] = count_add(s->at[k], o->at[k]);
	for (int k = 0; k < FUNNEL_MAX_POSITIONS; k++)
	{
		s->at[k] = at[k];
		s->won_at[k] += o->won_at[k];	/* won_at <= at on both sides */
	}
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(funnel_reached);
Datum
funnel_reached(PG_FUNCTION_ARGS)
{
	Funnel	   *s = funnel_arg(fcinfo, 0);
	int64		reached,
				won;

	funnel_from(s, position_arg(PG_GETARG_INT32(1), "position"), &reached, &won);
	PG_RETURN_INT64(reached);
}

PG_FUNCTION_INFO_V1(funnel_conversion);
Datum
funnel_conversion(PG_FUNCTION_ARGS)
{
	Funnel	   *s = funnel_arg(fcinfo, 0);
	int			from = position_arg(PG_GETARG_INT32(1), "from_position");
	int			to = position_arg(PG_GETARG_INT32(2), "to_position");
	int64		r_from,
				r_to,
				won;

	if (from > to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_position must not exceed to_position, got %d and %d",
						from + 1, to + 1)));
	funnel_from(s, from, &r_from, &won);
	funnel_from(s, to, &r_to, &won);
	if (r_from == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) r_to / (double) r_from);
}

PG_FUNCTION_INFO_V1(funnel_win_rate_from);
Datum
funnel_win_rate_from(PG_FUNCTION_ARGS)
{
	Funnel	   *s = funnel_arg(fcinfo, 0);
	int64		reached,
				won;

	funnel_from(s, position_arg(PG_GETARG_INT32(1), "position"), &reached, &won);
	if (reached == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) won / (double) reached);
}

/*
 * stages(f): one row per position from 1 to the highest position reached:
 * (position, reached, conversion_to_next, win_rate_from).
 */
PG_FUNCTION_INFO_V1(funnel_stages);
Datum
funnel_stages(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Funnel	   *s = funnel_arg(fcinfo, 0);
	int			last = -1;
	int64		reached[FUNNEL_MAX_POSITIONS + 1];
	int64		won[FUNNEL_MAX_POSITIONS + 1];

	InitMaterializedSRF(fcinfo, 0);

	/* suffix sums, once */
	reached[FUNNEL_MAX_POSITIONS] = 0;
	won[FUNNEL_MAX_POSITIONS] = 0;
	for (int k = FUNNEL_MAX_POSITIONS - 1; k >= 0; k--)
	{
		reached[k] = count_add(reached[k + 1], s->at[k]);
		won[k] = count_add(won[k + 1], s->won_at[k]);
		if (last < 0 && s->at[k] != 0)
			last = k;
	}
	for (int k = 0; k <= last; k++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(k + 1);
		values[1] = Int64GetDatum(reached[k]);
		if (k == last || reached[k] == 0)
			nulls[2] = true;
		else
			values[2] = Float8GetDatum((double) reached[k + 1] / (double) reached[k]);
		if (reached[k] == 0)
			nulls[3] = true;
		else
			values[3] = Float8GetDatum((double) won[k] / (double) reached[k]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
