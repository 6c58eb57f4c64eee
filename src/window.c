/*-------------------------------------------------------------------------
 *
 * window.c
 *	  Window functions that label rows of a history by what happened.
 *
 * stage_transition(position, kind) OVER (PARTITION BY opportunity_id
 * ORDER BY entered_at): each stage event is 'created' (a deal's first
 * event), 'advanced' (to the next open position), 'skipped' (forward by
 * more than one), 'regressed' (back, or into the same position again),
 * 'won', 'lost' or 'reopened' (an open stage after won or lost).
 *
 * mrr_movement(mrr [, month]) OVER (PARTITION BY account_id ORDER BY month):
 * each month is 'new' (revenue after none ever), 'expansion', 'contraction',
 * 'churn' (down to zero), 'reactivation' (revenue again after churn) or
 * 'flat'.  A NULL mrr counts as zero.  With the month argument, a month
 * missing from the series counts as zero too (so revenue after a gap is a
 * reactivation); without it, rows are taken as consecutive months.
 *
 * Both read only the current and the previous row, so they let older rows
 * go (WinSetMarkPosition) and run in constant memory per partition.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "windowapi.h"

/* argument argno of the row at offset from the current row */
static Datum
arg_at(WindowObject winobj, int argno, int offset, bool *isnull, bool *isout)
{
	return WinGetFuncArgInPartition(winobj, argno, offset, WINDOW_SEEK_CURRENT,
									false, isnull, isout);
}

typedef enum StageKind
{
	KIND_OPEN,
	KIND_WON,
	KIND_LOST
} StageKind;

static StageKind
stage_kind(Datum kind)
{
	struct varlena *t = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(kind));
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len == 4 && memcmp(s, "open", 4) == 0)
		return KIND_OPEN;
	if (len == 3 && memcmp(s, "won", 3) == 0)
		return KIND_WON;
	if (len == 4 && memcmp(s, "lost", 4) == 0)
		return KIND_LOST;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("kind must be open, won or lost, got \"%s\"", text_to_cstring((text *) t))));
	return KIND_OPEN;			/* keep the compiler quiet */
}

static int32
open_position(Datum pos, bool isnull)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("position must not be null for an open stage")));
	return DatumGetInt32(pos);
}

PG_FUNCTION_INFO_V1(stage_transition);
Datum
stage_transition(PG_FUNCTION_ARGS)
{
	WindowObject winobj = PG_WINDOW_OBJECT();
	int64		cur = WinGetCurrentPosition(winobj);
	bool		pos_null,
				kind_null,
				prev_pos_null,
				prev_kind_null,
				isout;
	Datum		pos,
				kind,
				prev_kind;
	StageKind	k;
	const char *label;

	pos = arg_at(winobj, 0, 0, &pos_null, &isout);
	kind = arg_at(winobj, 1, 0, &kind_null, &isout);
	if (kind_null)
		PG_RETURN_NULL();
	k = stage_kind(kind);
	if (k == KIND_OPEN)
		(void) open_position(pos, pos_null);

	prev_kind = arg_at(winobj, 1, -1, &prev_kind_null, &isout);
	if (isout || prev_kind_null)
		label = "created";
	else if (k == KIND_WON)
		label = "won";
	else if (k == KIND_LOST)
		label = "lost";
	else if (stage_kind(prev_kind) != KIND_OPEN)
		label = "reopened";
	else
	{
		int32		p = DatumGetInt32(pos);
		Datum		prev_pos = arg_at(winobj, 0, -1, &prev_pos_null, &isout);
		int32		pp = open_position(prev_pos, prev_pos_null);

		if (p == pp + 1)
			label = "advanced";
		else if (p > pp + 1)
			label = "skipped";
		else
			label = "regressed";
	}
	/* only the previous row is needed from now on */
	if (cur > 0)
		WinSetMarkPosition(winobj, cur - 1);
	PG_RETURN_TEXT_P(cstring_to_text(label));
}

/* calendar month number of a date (year * 12 + month) */
static int
month_index(DateADT d)
{
	int			year,
				month,
				day;

	j2date(d + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	return year * 12 + month;
}

/* per-partition state of mrr_movement */
typedef struct MrrState
{
	bool		had_revenue;	/* some earlier row had mrr > 0 */
	int64		next_row;		/* the row the state is up to date for */
} MrrState;

/* numeric zero, made once per backend rather than once per row */
static Datum
numeric_zero(void)
{
	static Datum zero = (Datum) 0;

	if (zero == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
		MemoryContextSwitchTo(old);
	}
	return zero;
}

/* sign of an mrr value (NULL counts as zero); negative values are errors */
static int
mrr_sign(Datum mrr, bool isnull)
{
	Numeric		n;
	int			c;

	if (isnull)
		return 0;
	n = DatumGetNumeric(mrr);
	if (numeric_is_nan(n) || numeric_is_inf(n))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("mrr must be a finite number, got %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, mrr)))));
	c = DatumGetInt32(DirectFunctionCall2(numeric_cmp, mrr, numeric_zero()));
	if (c < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("mrr must not be negative, got %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, mrr)))));
	return c;
}

PG_FUNCTION_INFO_V1(mrr_movement);
Datum
mrr_movement(PG_FUNCTION_ARGS)
{
	WindowObject winobj = PG_WINDOW_OBJECT();
	int64		cur = WinGetCurrentPosition(winobj);
	MrrState   *st = (MrrState *) WinGetPartitionLocalMemory(winobj, sizeof(MrrState));
	bool		isnull,
				prev_null,
				isout;
	Datum		mrr,
				prev;
	int			c_sign,
				p_sign = 0,
				cmp = 0;
	bool		had_revenue;
	const char *label;

	/* rows come in order; catch up if any were skipped */
	while (st->next_row < cur)
	{
		Datum		v = WinGetFuncArgInPartition(winobj, 0, st->next_row, WINDOW_SEEK_HEAD,
												 false, &isnull, &isout);

		if (mrr_sign(v, isnull) > 0)
			st->had_revenue = true;
		st->next_row++;
	}
	had_revenue = st->had_revenue;

	/*
	 * A value fetched from a row points into that row's tuple, which fetching
	 * another row may free: the current value is copied (into the memory of
	 * the current row, which the window node resets) before the previous row
	 * is fetched, and compared with the previous value before the months are.
	 */
	mrr = arg_at(winobj, 0, 0, &isnull, &isout);
	c_sign = mrr_sign(mrr, isnull);
	if (c_sign > 0)
		mrr = datumCopy(mrr, false, -1);
	prev = arg_at(winobj, 0, -1, &prev_null, &isout);
	if (!isout)
	{
		p_sign = mrr_sign(prev, prev_null);
		if (c_sign > 0 && p_sign > 0)
			cmp = DatumGetInt32(DirectFunctionCall2(numeric_cmp, mrr, prev));
		if (PG_NARGS() > 1)
		{
			bool		m_null,
						pm_null,
						pm_out;
			Datum		m = arg_at(winobj, 1, 0, &m_null, &isout);
			Datum		pm = arg_at(winobj, 1, -1, &pm_null, &pm_out);

			/* a month missing between the two rows had no revenue */
			if (!m_null && !pm_null &&
				month_index(DatumGetDateADT(m)) - month_index(DatumGetDateADT(pm)) > 1)
				p_sign = 0;
		}
	}
	if (cur > 0)
		WinSetMarkPosition(winobj, cur - 1);

	if (c_sign > 0 && p_sign == 0)
		label = had_revenue ? "reactivation" : "new";
	else if (c_sign == 0)
		label = p_sign > 0 ? "churn" : "flat";
	else
		label = cmp > 0 ? "expansion" : cmp < 0 ? "contraction" : "flat";

	if (c_sign > 0)
		st->had_revenue = true;
	st->next_row = cur + 1;
	PG_RETURN_TEXT_P(cstring_to_text(label));
}
